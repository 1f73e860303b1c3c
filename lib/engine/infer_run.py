"""What main/infer.py does: a trained model on anyone's 2D keypoints (see lib/infer/)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from tqdm import tqdm

from lib.config import load_config
from lib.engine.devices import cleanup, setup_runtime, wrap_model
from lib.experiment import create_run_dir, load_checkpoint, setup_logging
from lib.infer.layouts import LAYOUTS
from lib.infer.pipeline import check_image_size, lift, prepare, write_outputs
from lib.infer.readers import INPUT_FORMATS, read_keypoints
from lib.registry import ModelContext, build_model


def infer_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Lift 2D keypoints (COCO, OpenPose, numpy) to 3D "
                                            "with a trained model.")
    p.add_argument("--cfg", required=True, help="the YAML the model was trained with")
    p.add_argument("--weights", required=True,
                   help="checkpoint (.pth.tar) of that model, or 'latest' (newest finished run)")
    p.add_argument("--input", required=True, help="keypoint file, or a folder of OpenPose JSON")
    p.add_argument("--input-format", default="auto", choices=INPUT_FORMATS,
                   help="default: detected from the content")
    p.add_argument("--layout", default=None, choices=sorted(LAYOUTS),
                   help="joint layout of a .npy/.npz input (needed for 17 joints)")
    p.add_argument("--image-size", type=float, nargs=2, metavar=("W", "H"), default=None,
                   help="image size in pixels, when the input does not carry it")
    p.add_argument("--min-score", type=float, default=0.3,
                   help="joints below this confidence are filled from neighbouring frames")
    p.add_argument("--min-joints", type=int, default=12,
                   help="frames with fewer confident H36M-17 joints are skipped (counted)")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--out", default=None, help="output folder (default: experiment/exp_<time>)")
    p.add_argument("--gpu", default=None, help="GPU ids, e.g. 0 (default: CPU)")
    return p


def infer_main(argv=None) -> dict:
    args = infer_parser().parse_args(argv)
    cfg = load_config(args.cfg)
    track = read_keypoints(args.input, args.input_format, args.layout)
    size = check_image_size(track, args.image_size)
    from lib.engine.run import resolve_weight_path
    cfg.TEST.weight_path = args.weights
    weights = resolve_weight_path(cfg)               # 'latest': the newest run of this model
    ckpt = load_checkpoint(weights)                  # before any output exists
    out_dir = Path(args.out) if args.out else create_run_dir(cfg.output_dir)
    log = setup_logging(out_dir if not args.out else None)
    rt = setup_runtime(args.gpu)
    try:
        from lib.engine.run import _load_weights
        ctx = ModelContext(cfg)
        model = build_model(cfg, ctx)
        kind = _load_weights(model, ckpt, cfg)
        model = wrap_model(model.to(rt.device), rt)
        log.info("model %s from %s (%s)", cfg.MODEL.name, weights, kind)
        log.info("input %s: %d rows, layout %s, image size %gx%g", track.source,
                 len(track.xy), track.layout, *size)
        prepared = prepare(track, args.min_score, args.min_joints)
        if prepared.filled_per_joint:
            log.info("filled from neighbouring frames (joints below score %.2f): %s",
                     args.min_score, ", ".join(f"{k} {v}" for k, v in
                                               prepared.filled_per_joint.items()))
        if prepared.skipped:
            log.warning("skipped %d of %d rows with fewer than %d confident joints (valid=False "
                        "in the output)", prepared.skipped, len(track.xy), args.min_joints)
        t0 = time.perf_counter()
        bar = (lambda it, total: tqdm(it, total=total, desc="lifting", unit="batch",
                                      disable=total < 4))
        poses = lift(model, prepared, size, cfg.DATASET.num_joints, rt.device,
                     batch_size=args.batch_size, progress=bar)
        rate = len(poses) / max(time.perf_counter() - t0, 1e-9)
        written = write_outputs(out_dir, track, prepared, poses, cfg.DATASET.num_joints)
        log.info("wrote %s (%.0f rows/s)", ", ".join(map(str, written)), rate)
        return {"out_dir": str(out_dir), "files": [str(w) for w in written],
                "rows": len(poses), "skipped": prepared.skipped,
                "filled_per_joint": prepared.filled_per_joint, "rows_per_s": rate,
                "poses_3d": poses, "valid": prepared.valid}
    finally:
        cleanup(rt)
