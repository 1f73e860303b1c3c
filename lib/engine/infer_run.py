"""What main/infer.py does: a trained model on anyone's 2D keypoints (see lib/infer/)."""
from __future__ import annotations

import time
from pathlib import Path

from tqdm import tqdm

from lib.config import load_config
from lib.engine.devices import cleanup, setup_runtime, wrap_model
from lib.engine.run import load_trained_model, trained_model_parser
from lib.experiment import create_run_dir, setup_logging
from lib.infer.layouts import LAYOUTS, KeypointInputError
from lib.infer.pipeline import check_image_size, lift, prepare, write_outputs
from lib.infer.readers import INPUT_FORMATS, read_keypoints


def infer_parser():
    p = trained_model_parser("Lift 2D keypoints (COCO, OpenPose, numpy) to 3D with a trained "
                             "model.", weights_required=False)
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
    p.add_argument("--onnx", default=None,
                   help="run this exported ONNX model (main/export.py) on ONNX Runtime instead "
                        "of the checkpoint; --weights is then not read")
    p.add_argument("--vis", action="store_true",
                   help="PNG pictures (2D input beside the 3D pose) of sampled rows in DIR/vis/")
    p.add_argument("--vis-frames", type=int, default=8, help="how many rows --vis draws")
    p.add_argument("--gpu", default=None, help="GPU ids, e.g. 0 (default: CPU)")
    return p


def _load_lifter(cfg, args):
    """(model, source, description): the checkpoint's PyTorch model, or an ONNX Runtime one."""
    if args.onnx:
        from lib.engine.export_run import OnnxLifter
        if not Path(args.onnx).is_file():
            raise KeypointInputError(f"{args.onnx}: no such ONNX file. Export one with "
                                     f"python main/export.py --format onnx.")
        lifter = OnnxLifter(args.onnx)
        if lifter.num_joints != cfg.DATASET.num_joints:
            raise KeypointInputError(
                f"{args.onnx} takes {lifter.num_joints} joints but {args.cfg} has "
                f"DATASET.num_joints {cfg.DATASET.num_joints}: pass the YAML it was exported with")
        return lifter, args.onnx, "ONNX Runtime"
    return load_trained_model(cfg, args.weights)


def infer_main(argv=None) -> dict:
    args = infer_parser().parse_args(argv)
    cfg = load_config(args.cfg)
    track = read_keypoints(args.input, args.input_format, args.layout)
    size = check_image_size(track, args.image_size)
    if bool(args.weights) == bool(args.onnx):
        raise KeypointInputError("pass either --weights CKPT (PyTorch) or --onnx FILE (an "
                                 "exported model), not both or neither")
    model, weights, kind = _load_lifter(cfg, args)   # before any output exists
    out_dir = Path(args.out) if args.out else create_run_dir(cfg.output_dir)
    log = setup_logging(out_dir if not args.out else None)
    rt = setup_runtime(args.gpu)
    try:
        if not args.onnx:
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
        if args.vis:
            from lib.infer.pictures import write_pictures
            pics = write_pictures(out_dir / "vis", track, prepared, poses, size,
                                  args.vis_frames)
            log.info("wrote %d pictures to %s", len(pics), out_dir / "vis")
            written += pics
        return {"out_dir": str(out_dir), "files": [str(w) for w in written],
                "rows": len(poses), "skipped": prepared.skipped,
                "filled_per_joint": prepared.filled_per_joint, "rows_per_s": rate,
                "poses_3d": poses, "valid": prepared.valid}
    finally:
        cleanup(rt)
