"""Data pipeline benchmark: synthetic generation, cache build, cached loading.

    python benchmarks/bench_data.py [--out /tmp/bench_synth] [--frames 100] [--threads 2]

Reports, in one run: the time to generate the synthetic Human3.6M; the time to build the HGN
training cache (projection, normalisation, SMPL forward + coarse pooling for every frame) and
the GraphSH one; cached loading throughput (samples/s through BatchLoader); and, as the
reference, the original code's per-sample ``__getitem__`` approach (smplpytorch SMPL forward,
projection and pooling for one sample at a time) on a few hundred samples.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def bench_generation(out, frames):
    from lib.data.synthetic.generate import generate_synthetic_h36m
    if out.exists():
        shutil.rmtree(out)
    summary, secs = timed(lambda: generate_synthetic_h36m(out_dir=out, frames_per_sequence=frames,
                                                          log=lambda *a: None))
    return summary, secs


def make_cfg(out, cache, fmt, model):
    from lib.config import load_config
    opts = ["DATASET.root", str(out), "DATASET.format", fmt, "cache_dir", str(cache),
            "smpl_dir", str(out / "smpl"), "MODEL.name", model]
    if model == "GraphSH":
        opts += ["DATASET.num_joints", "16", "DATASET.train_stride", "1",
                 "DATASET.require_smpl", "false"]
    else:
        opts += ["DATASET.train_stride", "1"]
    return load_config(None, opts)


def bench_cache(cfg):
    from lib.data.build import build_datasets
    from lib.registry import ModelContext, model_entry
    ctx = ModelContext(cfg)
    mesh = ctx.mesh_targets() if model_entry(cfg.MODEL.name).needs_mesh else None
    ds, build_s = timed(lambda: build_datasets(cfg, splits=("train",), mesh=mesh)["train"])
    _, load_s = timed(lambda: build_datasets(cfg, splits=("train",), mesh=mesh)["train"])
    return ds, build_s, load_s, ctx


def bench_loading(ds, batch_size, epochs=3):
    from lib.data.lifting import BatchLoader
    loader = BatchLoader(ds, batch_size, shuffle=True, seed=0)
    n = 0
    t0 = time.perf_counter()
    for e in range(epochs):
        loader.set_epoch(e)
        for batch in loader:
            n += len(batch["input_2d"])
    return n / (time.perf_counter() - t0)


def bench_per_sample_reference(ctx, out, samples=200):
    """The original's way: one smplpytorch forward + projection + pooling per __getitem__."""
    from smplpytorch.pytorch.smpl_layer import SMPL_Layer
    from lib.data.formats.h36m_json import read_h36m_json
    from lib.geometry.camera import normalize_screen_coordinates
    corpus = read_h36m_json(out, subjects=[1])
    layer = SMPL_Layer(gender="neutral", model_root=str(out / "smpl"))
    hierarchy, fine, mid = ctx.mesh_levels()
    pf = torch.from_numpy(hierarchy.full_to_level[fine.index].toarray().T).float()
    pm = torch.from_numpy(hierarchy.full_to_level[mid.index].toarray().T).float()
    from lib.body.smpl import matrix_to_axis_angle, rodrigues
    items = [(seq, f, c) for seq in corpus.sequences for f in range(seq.num_frames)
             for c in (1, 2, 3, 4)][:samples]
    t0 = time.perf_counter()
    for seq, f, c in items:
        cam = corpus.cameras[seq.subject][c]
        joints = seq.joints_world[f] @ cam.R.T + cam.t
        uv = joints[:, :2] / joints[:, 2:] * cam.f + cam.c
        normalize_screen_coordinates(uv, cam.width, cam.height)
        pose = torch.from_numpy(seq.smpl.pose[f:f + 1]).float().clone()
        Rc = torch.from_numpy(cam.R).float()
        pose[:, :3] = matrix_to_axis_angle(Rc @ rodrigues(pose[:, :3]))
        shape = torch.from_numpy(seq.smpl.shape[f:f + 1]).float()
        with torch.no_grad():
            verts, jtr = layer(pose, shape)
        trans = torch.from_numpy(seq.smpl.trans[f]).float()
        T = Rc @ trans + torch.from_numpy(cam.t).float() / 1000 - jtr[0, 0] + Rc @ jtr[0, 0]
        verts = (verts[0] + T) * 1000
        (pf @ verts, pm @ verts)
    return len(items) / (time.perf_counter() - t0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "bench_synth"))
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    cache = out.parent / (out.name + "_cache")
    if cache.exists():
        shutil.rmtree(cache)
    print(f"threads {args.threads}, load average {os.getloadavg()[0]:.2f}")
    summary, gen_s = bench_generation(out, args.frames)
    print(f"generate synthetic Human3.6M: {summary['num_frames']} frames "
          f"({summary['num_sequences']} sequences) in {gen_s:.1f} s "
          f"({summary['num_frames'] / gen_s:,.0f} frames/s)")
    stages = {k: v for k, v in summary.get("timings", {}).items() if k != "total_s"}
    if stages:
        print("  stages: " + ", ".join(f"{k.removesuffix('_s')} {v:.1f} s"
                                       for k, v in stages.items()))
    import logging
    logging.getLogger("pose").setLevel(logging.WARNING)
    rows = []
    for fmt, model in (("json", "HGN"), ("npz", "GraphSH")):
        cfg = make_cfg(out, cache, fmt, model)
        ds, build_s, load_s, ctx = bench_cache(cfg)
        rate64 = bench_loading(ds, 64)
        rate1k = bench_loading(ds, 1024)
        rows.append((model, len(ds), build_s, load_s, rate64, rate1k))
        print(f"{model:8s} train cache: {len(ds)} samples, build {build_s:.1f} s "
              f"({len(ds) / build_s:,.0f} samples/s), reload {load_s:.2f} s; cached loading "
              f"{rate64:,.0f} samples/s at batch 64, {rate1k:,.0f} at batch 1024")
        if model == "HGN":
            ref = bench_per_sample_reference(ctx, out)
            print(f"         original-style per-sample __getitem__ (SMPL per sample): "
                  f"{ref:,.0f} samples/s -> cache build is {len(ds) / build_s / ref:.0f}x "
                  f"faster, cached loading {rate64 / ref:,.0f}x")
    return rows


if __name__ == "__main__":
    main()
