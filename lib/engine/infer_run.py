"""What main/infer.py does: a trained model on anyone's 2D keypoints (see lib/infer/)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from lib.config import load_config
from lib.engine.devices import cleanup, setup_runtime, wrap_model
from lib.engine.run import load_trained_model, trained_model_parser
from lib.experiment import create_run_dir, setup_logging
from lib.fileio import atomic_write_text
from lib.infer.layouts import LAYOUTS, KeypointInputError
from lib.infer.pipeline import lift, prepare, row_image_sizes, write_outputs
from lib.infer.readers import INPUT_FORMATS, input_format_names, read_keypoints
from lib.infer.video import DEFAULT_FPS, check_fps, track_rows
from lib.progress import progress


def infer_parser():
    p = trained_model_parser("Lift 2D keypoints (COCO, OpenPose, numpy, Human3.6M files) to 3D "
                             "with a trained model.", weights_required=False)
    p.add_argument("--input", default=None,
                   help="keypoint file, folder of OpenPose JSON, or dataset root (h36m); "
                        "--input-format h36m without it reads the YAML's DATASET")
    p.add_argument("--input-format", default="auto", choices=input_format_names(),
                   help="default: detected from the content; "
                        + "; ".join(f"{f.name}: {f.summary}" for f in INPUT_FORMATS.values()))
    p.add_argument("--layout", default=None, choices=sorted(LAYOUTS),
                   help="joint layout of a .npy/.npz input (needed for 17 joints)")
    p.add_argument("--split", default=None, choices=("train", "val", "test"),
                   help="h36m input: the split to run on, as training splits the YAML's "
                        "DATASET (default: test)")
    p.add_argument("--subjects", type=int, nargs="+", default=None,
                   help="h36m input: these subjects instead of the split's own")
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
                   help="PNG pictures (2D input beside the 3D pose) of sampled rows in DIR/vis/; "
                        "a mesh model (HGN) also writes their coarse meshes to DIR/mesh/")
    p.add_argument("--vis-frames", type=int, default=8, help="how many rows --vis draws")
    p.add_argument("--video", action="store_true",
                   help="DIR/video.mp4 (DIR/video.gif without ffmpeg) of one whole track")
    p.add_argument("--video-track", type=int, default=None,
                   help="the person id (h36m: sequence and camera) --video follows (default 0)")
    p.add_argument("--fps", type=float, default=None,
                   help=f"frame rate of --video, for inputs whose format has none (default "
                        f"{DEFAULT_FPS:g}; h36m: the dataset's rate over the frame stride)")
    p.add_argument("--gpu", default=None, help="GPU ids, e.g. 0 (default: CPU)")
    return p


def _check_flags(args, track):
    """Flags that this input or run does not use are errors, not silently ignored."""
    fmt = track.input_format
    unused = []
    if fmt != "h36m":
        unused += [(f, "applies to --input-format h36m only") for f, v in
                   (("--split", args.split), ("--subjects", args.subjects)) if v is not None]
    if fmt != "npy" and args.layout is not None:
        unused.append(("--layout", "applies to .npy/.npz input only (the other formats say "
                                   "their layout)"))
    if not args.video:
        unused += [(f, "applies with --video only") for f, v in
                   (("--fps", args.fps), ("--video-track", args.video_track)) if v is not None]
    if unused:
        flag, why = unused[0]
        raise KeypointInputError(f"{track.source}: {flag} {why}. Drop {flag}, or pass what it "
                                 f"applies to.")
    if args.video:
        if args.fps is not None:
            check_fps(args.fps)
        track_rows(track, args.video_track or 0)


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


def _evaluate(track, poses, valid, out_dir, log) -> dict:
    """MPJPE of a dataset input against its GT 3D, as test.py reports it (printed and in
    DIR/metrics.json)."""
    from lib.data.lifting import LiftingDataset
    from lib.engine.evaluate import compute_metrics, report
    ds = track.dataset
    if not valid.all():
        log.warning("MPJPE over the %d of %d rows that were lifted", int(valid.sum()),
                    len(valid))
        ds = LiftingDataset({k: v.numpy()[valid] for k, v in ds.tensors.items()}, ds.name,
                            ds.info, ds.cameras)
    pred_m = torch.from_numpy(poses[valid].astype(np.float64) / 1000.0)
    metrics = compute_metrics(pred_m, ds)
    print(report(metrics))
    print(track.protocol)
    log.info("MPJPE %.2f mm, PA-MPJPE %.2f mm against the GT 3D of %s", metrics["mpjpe"],
             metrics["pa_mpjpe"], track.source)
    result = {"mpjpe": metrics["mpjpe"], "pa_mpjpe": metrics["pa_mpjpe"],
              "table": metrics["table"], "per_joint": metrics["per_joint"],
              "protocol": track.protocol}
    atomic_write_text(out_dir / "metrics.json", json.dumps(result, indent=1, default=str))
    return result


def _video(args, track, prepared, poses, sizes, out_dir, log):
    from lib.infer.video import render_frames, write_video
    person = args.video_track or 0
    rows = track_rows(track, person)
    fps = args.fps or track.fps or DEFAULT_FPS
    name = track.track_names.get(person, f"person {person}")
    t0 = time.perf_counter()
    frames = render_frames(track, prepared, poses, sizes, rows, args.min_score)
    path = write_video(out_dir, frames, fps)
    rate = len(rows) / max(time.perf_counter() - t0, 1e-9)
    log.info("wrote %s: %s, %d frames at %g fps (%s; rendered %.0f frames/s)", path, name,
             len(rows), fps, "MP4, H.264" if path.suffix == ".mp4" else
             "animated GIF, no ffmpeg found", rate)
    return path, rate


def infer_main(argv=None) -> dict:
    args = infer_parser().parse_args(argv)
    cfg = load_config(args.cfg)
    track = read_keypoints(args.input, args.input_format, args.layout, cfg=cfg,
                           split=args.split, subjects=args.subjects)
    _check_flags(args, track)
    sizes = row_image_sizes(track, args.image_size)
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
        uniq = np.unique(sizes, axis=0)
        log.info("input %s (%s): %d rows, layout %s, image size %s", track.source,
                 track.input_format, len(track.xy), track.layout,
                 ", ".join(f"{w:g}x{h:g}" for w, h in uniq))
        prepared = prepare(track, args.min_score, args.min_joints)
        if prepared.filled_per_joint:
            log.info("filled from neighbouring frames (joints below score %.2f): %s",
                     args.min_score, ", ".join(f"{k} {v}" for k, v in
                                               prepared.filled_per_joint.items()))
        if prepared.skipped:
            log.warning("skipped %d of %d rows with fewer than %d confident joints (valid=False "
                        "in the output)", prepared.skipped, len(track.xy), args.min_joints)
        t0 = time.perf_counter()
        bar = (lambda it, total: progress(it, total=total, desc="lifting", unit="batch",
                                          enable=total >= 4))
        poses, meshes = lift(model, prepared, sizes, cfg.DATASET.num_joints, rt.device,
                             batch_size=args.batch_size, progress=bar,
                             flip_test=cfg.TEST.flip_test)
        rate = len(poses) / max(time.perf_counter() - t0, 1e-9)
        written = write_outputs(out_dir, track, prepared, poses, cfg.DATASET.num_joints)
        log.info("wrote %s (%.0f rows/s)", ", ".join(map(str, written)), rate)
        result = {"out_dir": str(out_dir), "rows": len(poses), "skipped": prepared.skipped,
                  "filled_per_joint": prepared.filled_per_joint, "rows_per_s": rate,
                  "poses_3d": poses, "valid": prepared.valid}
        if track.dataset is not None:
            result.update(_evaluate(track, poses, prepared.valid, out_dir, log))
            written.append(out_dir / "metrics.json")
        if args.vis:
            written += _pictures(cfg, args, track, prepared, poses, meshes, sizes, out_dir, log)
        if args.video:
            path, result["video_frames_per_s"] = _video(args, track, prepared, poses, sizes,
                                                        out_dir, log)
            result["video"] = str(path)
            written.append(path)
        result["files"] = [str(w) for w in written]
        return result
    finally:
        cleanup(rt)


def _pictures(cfg, args, track, prepared, poses, meshes, sizes, out_dir, log) -> list:
    from lib.infer.pictures import sample_rows, write_meshes, write_pictures
    rows = sample_rows(prepared, args.vis_frames)
    pics = write_pictures(out_dir / "vis", track, prepared, poses, sizes, rows)
    log.info("wrote %d pictures to %s", len(pics), out_dir / "vis")
    if not meshes:
        return pics
    from lib.engine.visualize import mesh_faces
    from lib.registry import ModelContext
    objs = write_meshes(out_dir / "mesh", track, meshes, mesh_faces(ModelContext(cfg)), rows)
    log.info("wrote %d coarse meshes (%s, mm, the frame of poses_3d) to %s", len(objs),
             " and ".join(meshes), out_dir / "mesh")
    return pics + objs
