"""Speed of GraphSH per graph-convolution variant on CPU.

Reports training steps per second (Adam + MSE + grad-norm clip 1, as in the public recipe)
at one batch size, and the median eval latency of a single pose, for every ``--gcn``.
The targets for dc_preagg on 2 threads: >= 25 steps/s at batch 64, < 5 ms at batch 1.

    python benchmarks/bench_graphsh.py [--quick] [--variants dc_preagg semantic] [--threads 2]

Timings on a shared machine are noisy: the 1-minute load average is printed with the table.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lib.models.gconv import GCONV_VARIANTS, check_gconv_name  # noqa: E402
from lib.models.graph_sh import GraphSH  # noqa: E402
from lib.models.utils import count_parameters  # noqa: E402


def train_steps_per_second(model, batch_size, warmup, steps, blocks=5, lr=1e-4, max_norm=1.0,
                           adam_impl="default"):
    """(median, best) steps/s over ``blocks`` timed blocks of full optimisation steps.

    Fixed random data, so data loading is excluded. Blocks make the numbers robust to other
    jobs briefly taking the cores: the median is the typical rate, the best the machine's.
    """
    model.train()
    flags = {} if adam_impl == "default" else {adam_impl: True}
    opt = torch.optim.Adam(model.parameters(), lr=lr, **flags)
    x = torch.randn(batch_size, model.num_joints, model.in_features)
    y = torch.randn(batch_size, model.num_joints, 3)

    def step():
        loss = torch.nn.functional.mse_loss(model(x)["pose"], y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        opt.step()

    for _ in range(warmup):
        step()
    per_block = max(1, steps // blocks)
    rates = []
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(per_block):
            step()
        rates.append(per_block / (time.perf_counter() - start))
    return statistics.median(rates), max(rates)


@torch.inference_mode()
def eval_latency_ms(model, warmup, runs):
    """(median, fastest) wall time of one forward pass on a single pose, in milliseconds."""
    model.eval()
    x = torch.randn(1, model.num_joints, model.in_features)
    for _ in range(warmup):
        model(x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times), 1000 * min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(GCONV_VARIANTS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hid-dim", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100, help="timed training steps per variant")
    parser.add_argument("--runs", type=int, default=300, help="timed batch-1 forwards per variant")
    parser.add_argument("--adam", choices=("default", "foreach", "fused"), default="default",
                        help="torch.optim.Adam implementation (fused is much faster on CPU)")
    parser.add_argument("--quick", action="store_true", help="20 steps and 50 forwards per variant")
    args = parser.parse_args(argv)
    for name in args.variants:
        try:
            check_gconv_name(name)
        except ValueError as err:
            parser.error(str(err))
    steps, runs = (20, 50) if args.quick else (args.steps, args.runs)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    load_before = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, "
          f"{steps} train steps, {runs} batch-1 runs, load avg (1 min) {load_before:.2f}")
    print(f"Adam implementation: {args.adam}; steps/s and ms as median (best) over blocks")
    print(f"{'variant':<11} {'params':>11} {'train steps/s':>16} {'batch-1 ms':>15}")
    for name in args.variants:
        model = GraphSH(gcn=name, hid_dim=args.hid_dim)
        sps, sps_best = train_steps_per_second(model, args.batch_size, warmup=max(3, steps // 10),
                                               steps=steps, adam_impl=args.adam)
        ms, ms_best = eval_latency_ms(model, warmup=max(5, runs // 10), runs=runs)
        print(f"{name:<11} {count_parameters(model):>11,} {sps:>8.1f} ({sps_best:>5.1f}) "
              f"{ms:>7.2f} ({ms_best:>5.2f})", flush=True)
    print(f"load avg (1 min) after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
