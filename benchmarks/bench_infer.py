"""main/infer.py on real motion: throughput per input format, the COCO mapping's accuracy cost,
and ONNX Runtime vs PyTorch.

    python benchmarks/bench_infer.py --mocap DIR [--frames 10000] [--cfg asset/yaml/Martinez_synthetic.yml]

DIR holds CMU subject folders (``03/03.asf``, ``03/03_01.amc``, ...). A model is trained on the
synthetic default with the YAML's schedule unless ``--weights`` names one. CMU subject 03
is seen through a real Human3.6M camera and written as (a) H36M-17 ``.npy``, (b) COCO-17 results
JSON, (c) an OpenPose BODY_25 folder; each is lifted end to end and compared with the clip's
3D joints. Then ``infer.py --video`` renders the first ``--video-frames`` frames (frames/s of
drawing and encoding the MP4). Figures go to stdout and, with --json, to a file.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cmu_joints(mocap: Path, frames: int) -> np.ndarray:
    """World H36M-17 joints (mm) of CMU subject 03's clips, tiled to ``frames``."""
    from lib.data.mocap.to_h36m import ImportOptions, import_clips
    asf = mocap / "03" / "03.asf"
    amcs = sorted((mocap / "03").glob("03_*.amc"))
    corpus = import_clips(asf, amcs, subject=103, actions=["Walking"] * len(amcs),
                          options=ImportOptions(camera_subject=9))
    world = np.concatenate([s.joints_world for s in corpus.sequences]).astype(np.float64)
    reps = -(-frames // len(world))
    return np.concatenate([world] * reps)[:frames]


def write_inputs(kp17: np.ndarray, tmp: Path) -> dict:
    from lib.infer.layouts import COCO17_NAMES, OPENPOSE_BODY25_NAMES, coco17_from_h36m17
    coco = coco17_from_h36m17(kp17)
    ones = np.ones(coco.shape[:2] + (1,))
    paths = {"npy": tmp / "h36m17.npy", "coco": tmp / "results.json", "openpose": tmp / "op"}
    np.save(paths["npy"], kp17)
    cc = np.concatenate([coco, ones], 2)
    paths["coco"].write_text(json.dumps([{"image_id": t, "category_id": 1, "score": 1.0,
                                          "keypoints": cc[t].ravel().round(2).tolist()}
                                         for t in range(len(cc))]))
    paths["openpose"].mkdir()
    idx = {n: i for i, n in enumerate(COCO17_NAMES)}
    for t in range(len(cc)):
        kp = np.zeros((25, 3))
        for i, n in enumerate(OPENPOSE_BODY25_NAMES):
            if n in idx:
                kp[i] = cc[t, idx[n]]
        (paths["openpose"] / f"f_{t:012d}_keypoints.json").write_text(json.dumps(
            {"version": 1.3, "people": [{"pose_keypoints_2d": kp.ravel().round(2).tolist()}]}))
    return paths


def train_model(cfg_path: str, steps: int, out: Path) -> str:
    """The YAML's own schedule (steps 0), or one epoch capped at ``steps``."""
    from lib.engine.run import train_main
    opts = ["output_dir", str(out)]
    if steps:
        opts += ["TRAIN.epochs", "1", "TRAIN.max_steps_per_epoch", str(steps)]
    train_main(["--cfg", cfg_path, "--opts", *opts])
    return str(next(out.glob("exp_*/checkpoint/final.pth.tar")))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mocap", required=True)
    p.add_argument("--frames", type=int, default=10000)
    p.add_argument("--cfg", default="asset/yaml/Martinez_synthetic.yml")
    p.add_argument("--weights", default=None)
    p.add_argument("--steps", type=int, default=0,
                   help="cap training at one epoch of this many steps (0: the YAML's schedule)")
    p.add_argument("--video-frames", type=int, default=500,
                   help="frames of the --video measurement (0: skip it)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    from lib.engine.export_run import export_main, onnx_session
    from lib.engine.infer_run import infer_main
    from lib.geometry.camera import h36m_camera, project_to_pixels
    from lib.geometry.metrics import mpjpe_per_sample
    results = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        weights = args.weights or train_model(args.cfg, args.steps, tmp / "experiment")
        cam = h36m_camera(9, 2)
        x_cam = cam.world_to_camera(cmu_joints(Path(args.mocap), args.frames))
        kp17 = project_to_pixels(x_cam, cam.f, cam.c)
        gt = x_cam - x_cam[:, :1]
        paths = write_inputs(kp17, tmp)
        size = ["--image-size", str(cam.width), str(cam.height)]
        for fmt, path in paths.items():
            extra = ["--layout", "h36m17"] if fmt == "npy" else []
            t0 = time.perf_counter()
            res = infer_main(["--cfg", args.cfg, "--weights", weights, "--input", str(path),
                              "--out", str(tmp / f"out_{fmt}"), *size, *extra])
            wall = time.perf_counter() - t0
            err = float(mpjpe_per_sample(res["poses_3d"].astype(np.float64), gt).mean())
            results[fmt] = {"frames_per_s": len(gt) / wall, "mpjpe_mm": err}
            print(f"{fmt:9s} {len(gt) / wall:9.0f} frames/s end to end   MPJPE {err:7.2f} mm")
        if args.video_frames:
            clip = tmp / "video_input.npy"
            np.save(clip, kp17[:args.video_frames])
            res = infer_main(["--cfg", args.cfg, "--weights", weights, "--input", str(clip),
                              "--out", str(tmp / "out_video"), "--layout", "h36m17", *size,
                              "--video", "--fps", "50"])
            results["video"] = {"frames": min(args.video_frames, len(kp17)),
                                "frames_per_s": res["video_frames_per_s"],
                                "file": Path(res["video"]).suffix[1:]}
            print(f"--video   {res['video_frames_per_s']:9.0f} frames/s rendered and encoded "
                  f"({results['video']['file']}, {results['video']['frames']} frames)")
        mean = np.broadcast_to(gt.mean(0), gt.shape)
        results["clip_mean_pose_mpjpe_mm"] = float(mpjpe_per_sample(mean, gt).mean())
        results["coco_cost_mm"] = results["coco"]["mpjpe_mm"] - results["npy"]["mpjpe_mm"]
        print(f"COCO-17 mapping cost: {results['coco_cost_mm']:+.2f} mm "
              f"(clip's own mean pose: {results['clip_mean_pose_mpjpe_mm']:.1f} mm)")
        onnx_file = tmp / "m.onnx"
        export_main(["--cfg", args.cfg, "--weights", weights, "--format", "onnx", "--out",
                     str(onnx_file)])
        from lib.engine.run import load_trained_model
        from lib.config import load_config
        cfg = load_config(args.cfg)
        model, _, _ = load_trained_model(cfg, weights)
        j = cfg.DATASET.num_joints
        for batch in (1, 1024):
            x = torch.rand(batch, j, 2) * 2 - 1
            reps = 2000 if batch == 1 else 30
            with torch.no_grad():
                model(x)
                t0 = time.perf_counter()
                for _ in range(reps):
                    model(x)
                pt = reps * batch / (time.perf_counter() - t0)
            sess = onnx_session(onnx_file, threads=2)
            feed = {"input_2d": x.numpy()}
            sess.run(None, feed)
            t0 = time.perf_counter()
            for _ in range(reps):
                sess.run(None, feed)
            ox = reps * batch / (time.perf_counter() - t0)
            results[f"batch{batch}"] = {"pytorch_poses_per_s": pt, "onnxruntime_poses_per_s": ox}
            print(f"batch {batch:5d}: PyTorch {pt:10.0f} poses/s, ONNX Runtime {ox:10.0f} "
                  f"poses/s ({ox / pt:.2f}x)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
