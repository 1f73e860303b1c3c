"""Speed of HGN on CPU: training steps/s at batch 64, inference poses/s at batch 1024.

Measures the machine's float32 matmul rate first (2048 x 2048 GEMMs) and reports the model's
achieved GFLOP/s as a fraction of it. FLOPs are counted two ways:
  * counted: torch.utils.flop_counter on our forward (matmul-type ops only: mm/addmm/bmm/linear);
  * reference: the original formulation computed analytically (two channel GEMMs and two (N, N)
    GEMMs per graph conv, theta/phi/g, the 1x1 Conv2d over the (B, 128, N, N) concatenation, f.g
    and W per non-local block, the ChannelTrans GEMMs) -- the "about 144 MFLOP per pose" figure.
Achieved rates use the reference count (work done per pose, whatever the implementation) and the
counted one (what this implementation actually multiplies).

Usage: python benchmarks/bench_hgn.py [--quick] [--threads 2] [--profile]
Other jobs share the cores; the 1-minute load average is printed with the results.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lib.geometry.skeleton import H36M17  # noqa: E402
from lib.graphs.skeleton_graph import skeleton_adjacency  # noqa: E402
from lib.models.hgn import BRANCH_STAGES, FUSION_POINTS, HGN  # noqa: E402
from lib.models.official_hgn import official_size_graphs  # noqa: E402


def tune_glibc_malloc(mmap_threshold: int = 32 << 20, trim_threshold: int = 1 << 30) -> bool:
    """Keep freed activation buffers in the heap instead of unmapping them.

    With glibc's defaults every multi-MB activation is a fresh mmap, so each training step takes
    ~14k page faults (~25 ms of kernel time on this machine). Raising the mmap/trim thresholds
    lets malloc reuse them. Process-wide and harmless; the engine should do the same at start-up.
    Returns False where glibc's mallopt is unavailable.
    """
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, mmap_threshold)) and \
            bool(libc.mallopt(m_trim_threshold, trim_threshold))
    except (OSError, AttributeError):
        return False


def matmul_rate(size: int = 2048, seconds: float = 2.0) -> float:
    """Best float32 GEMM rate in GFLOP/s over repeated size x size products."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best, start = 0.0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * size ** 3 / (time.perf_counter() - t0) / 1e9)
    return best


def build_graphs():
    """Graphs of exactly the SMPL sizes (17/48/96 nodes, 49/241/487 non-zeros).

    The SMPL faces are licensed and absent here, so the mesh graphs are seeded stand-ins with
    the official sizes, fake-node positions and non-zero counts: the cost of HGN depends only on
    those (dense (N, N) products), not on which mesh vertices were merged.
    """
    adj17 = skeleton_adjacency(H36M17)
    _, adj48, adj96 = official_size_graphs()
    return adj17, adj48, adj96, "stand-in graphs with the official SMPL sizes"


def reference_forward_flops(model: HGN) -> int:
    """FLOPs per pose of the original formulation (matmul-type work only)."""
    c, inter = model.hid_dim, model.hid_dim // 2
    n = model.num_nodes

    def gconv(nodes, c_in, c_out):           # h0, h1 GEMMs + two (N, N) GEMMs
        return 2 * 2 * nodes * c_in * c_out + 2 * 2 * nodes * nodes * c_out

    def nonlocal_block(nodes):
        return (3 * 2 * nodes * c * inter      # g, theta, phi
                + 2 * 2 * inter * nodes * nodes  # 1x1 Conv2d on the (2 inter, N, N) concatenation
                + 2 * nodes * nodes * inter      # f . g
                + 2 * nodes * inter * c)         # W
    total = gconv(n[1], model.in_dim, c)
    for scale, stages in BRANCH_STAGES.items():
        total += len(stages) * (2 * gconv(n[scale], c, c) + nonlocal_block(n[scale]))
    for entries in FUSION_POINTS.values():
        for target, sources in entries:
            total += sum(2 * n[source] * n[target] * c for source in sources)
    total += sum(gconv(n[s], c, 3) for s in (1, 2, 3))
    return total


def _addmm_inplace_flop(self_shape, a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    return 2 * a_shape[0] * a_shape[1] * b_shape[1]


def counted_flops(fn) -> int:
    """GEMM-type FLOPs of ``fn`` (flop_counter has no formula for the in-place addmm_ we use)."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False, custom_mapping={torch.ops.aten.addmm_: _addmm_inplace_flop})
    with counter:
        fn()
    return counter.get_total_flops()


def hgn_loss(out, target):
    return (100 * F.mse_loss(out["pose"], target["pose"]) + F.mse_loss(out["mesh_mid"], target["mesh_mid"])
            + F.mse_loss(out["mesh_fine"], target["mesh_fine"]))


def make_batch(model: HGN, batch: int):
    n = model.num_nodes
    x = torch.randn(batch, n[1], 2)
    target = {"pose": torch.randn(batch, n[1], 3) * 0.3, "mesh_mid": torch.randn(batch, n[2], 3) * 0.3,
              "mesh_fine": torch.randn(batch, n[3], 3) * 0.3}
    return x, target


def train_step(model, optimizer, x, target, clip=1.0):
    optimizer.zero_grad(set_to_none=True)
    loss = hgn_loss(model(x), target)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    return loss


def time_it(fn, repeats: int, warmup: int = 2) -> float:
    """Median seconds per call (the median resists the other jobs on the machine)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about 15 s)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64, help="training batch")
    parser.add_argument("--infer-batch", type=int, default=1024)
    parser.add_argument("--profile", action="store_true", help="print a torch.profiler table of a train step")
    parser.add_argument("--no-malloc-tuning", action="store_true", help="keep glibc's malloc defaults")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    tuned = False if args.no_malloc_tuning else tune_glibc_malloc()
    torch.manual_seed(0)
    steps, infer_reps = (10, 3) if args.quick else (40, 10)

    load = os.getloadavg()
    peak = matmul_rate(seconds=1.0 if args.quick else 3.0)
    adj17, adj48, adj96, graph_source = build_graphs()
    model = HGN(adj17, adj48, adj96)
    print(f"torch {torch.__version__}, {args.threads} threads, malloc tuning {'on' if tuned else 'off'}; "
          f"{graph_source}; {model.describe()}")

    ref_fwd = reference_forward_flops(model)
    x1, _ = make_batch(model, 1)
    model.eval()
    with torch.no_grad():
        our_fwd = counted_flops(lambda: model(x1))
    model.train()
    x, target = make_batch(model, args.batch)
    our_step = counted_flops(lambda: hgn_loss(model(x), target).backward())
    ref_step = 3 * ref_fwd * args.batch      # forward + backward (twice the forward)
    print(f"matmul rate (2048^2 float32): {peak:.1f} GFLOP/s")
    print(f"forward FLOPs per pose: reference formulation {ref_fwd / 1e6:.1f} M, "
          f"counted in ours {our_fwd / 1e6:.1f} M")
    print(f"train step FLOPs at batch {args.batch}: reference {ref_step / 1e9:.2f} G, "
          f"counted in ours {our_step / 1e9:.2f} G")

    results = {}
    for label, fused in (("Adam", False), ("Adam(fused=True)", True)):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused or None)
        t_step = time_it(lambda: train_step(model, optimizer, x, target), steps)
        results[label] = sps = 1.0 / t_step
        print(f"training, {label}: {sps:.2f} steps/s at batch {args.batch} ({t_step * 1e3:.1f} ms/step); "
              f"{ref_step / t_step / 1e9:.1f} GFLOP/s reference-equivalent "
              f"({ref_step / t_step / 1e9 / peak:.0%} of matmul rate), "
              f"{our_step / t_step / 1e9:.1f} GFLOP/s counted ({our_step / t_step / 1e9 / peak:.0%})")
    sps = results["Adam"]

    model.eval()
    xi, _ = make_batch(model, args.infer_batch)

    def infer():
        with torch.inference_mode():
            model(xi)
    t_inf = time_it(infer, infer_reps, warmup=1)
    pps = args.infer_batch / t_inf
    print(f"inference: {pps:.0f} poses/s at batch {args.infer_batch} ({t_inf * 1e3:.0f} ms/batch); "
          f"{pps * ref_fwd / 1e9:.1f} GFLOP/s reference-equivalent ({pps * ref_fwd / 1e9 / peak:.0%}), "
          f"{pps * our_fwd / 1e9:.1f} GFLOP/s counted ({pps * our_fwd / 1e9 / peak:.0%})")
    print(f"load average before/after: {load[0]:.2f} / {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs; targets: >= 5 steps/s, >= 1000 poses/s -> "
          f"{'met' if sps >= 5 else 'MISSED'} / {'met' if pps >= 1000 else 'MISSED'}")

    if args.profile:
        from torch.profiler import ProfilerActivity, profile
        model.train()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                train_step(model, optimizer, x, target)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    return {"steps_per_s": sps, "steps_per_s_fused_adam": results["Adam(fused=True)"], "poses_per_s": pps, "matmul_gflops": peak}


if __name__ == "__main__":
    main()
