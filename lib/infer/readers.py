"""Readers of 2D keypoint files as detectors write them, with format detection from content.

Every reader returns a :class:`KeypointTrack`: one row per (frame, person), pixel coordinates
in the file's own joint layout, a confidence per joint (1 where the file has none) and, where
the file says it, the image size. Several people in one image get person ids 0, 1, ... in
descending detection score, so person k of consecutive frames forms one track.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np

from lib.infer.layouts import LAYOUTS, KeypointInputError, layout_for_count

INPUT_FORMATS = ("auto", "coco", "openpose", "npy")


@dataclass
class KeypointTrack:
    xy: np.ndarray                    # (N, J, 2) pixels
    scores: np.ndarray                # (N, J) in [0, 1]; 0 = missing
    layout: str                       # key of lib.infer.layouts.LAYOUTS
    frame_ids: np.ndarray             # (N,) int: image id / frame number
    person_ids: np.ndarray            # (N,) int
    image_size: Optional[tuple] = None   # (width, height) in pixels, if the file has it
    source: str = ""

    def __post_init__(self):
        n = len(self.xy)
        if not (len(self.scores) == len(self.frame_ids) == len(self.person_ids) == n):
            raise KeypointInputError(f"{self.source}: inconsistent keypoint rows")


def _fail(path, problem, fix) -> KeypointInputError:
    return KeypointInputError(f"{path}: {problem}. {fix}")


def _flat_keypoints(values, path, where) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or len(arr) % 3 or len(arr) == 0:
        raise _fail(path, f"{where} has {arr.size} numbers, not a multiple of 3 (x, y, score)",
                    "Each keypoint must be written as x, y, score (or visibility).")
    return arr.reshape(-1, 3)


def _check_finite(xy, path):
    if not np.isfinite(xy).all():
        bad = int((~np.isfinite(xy)).any(-1).sum())
        raise _fail(path, f"{bad} keypoints are NaN or infinite",
                    "Write missing joints with score 0 (their coordinates are then ignored).")


def _assemble(rows, path, layout=None, image_size=None) -> KeypointTrack:
    """rows: (frame_id, score, (J, 3) array) -> a track, people ranked by score per frame."""
    if not rows:
        raise _fail(path, "no people with keypoints", "Check that the detector found anyone.")
    counts = {len(r[2]) for r in rows}
    if len(counts) != 1:
        raise _fail(path, f"people with different joint counts {sorted(counts)}",
                    "All detections must use one keypoint layout.")
    lay = LAYOUTS[layout] if layout else layout_for_count(counts.pop(), f"{path}: ")
    rows = sorted(rows, key=lambda r: (r[0], -r[1]))
    frame_ids = np.array([r[0] for r in rows], np.int64)
    person = np.zeros(len(rows), np.int64)
    for i in range(1, len(rows)):
        person[i] = person[i - 1] + 1 if frame_ids[i] == frame_ids[i - 1] else 0
    kp = np.stack([r[2] for r in rows])
    xy, scores = kp[..., :2], np.clip(kp[..., 2], 0.0, 1.0)
    xy = np.where(scores[..., None] > 0, xy, 0.0)     # coordinates of missing joints are unused
    _check_finite(xy, path)
    return KeypointTrack(xy, scores, lay.name, frame_ids, person, image_size, str(path))


def _load_json(path: Path):
    try:
        text = path.read_text()
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror})", "Check the path.") from None
    if not text.strip():
        raise _fail(path, "is empty", "Pass the detector's output file.")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(path, f"is not valid JSON ({exc.msg}, line {exc.lineno})",
                    "Pass a COCO or OpenPose keypoint JSON.") from None


def read_coco(path: Path, data=None) -> KeypointTrack:
    """COCO keypoint results (a list) or the annotation layout (``images`` + ``annotations``)."""
    data = _load_json(path) if data is None else data
    size = None
    if isinstance(data, dict):
        images = {im["id"]: im for im in data.get("images", [])}
        sizes = {(im.get("width"), im.get("height")) for im in images.values()}
        if len(sizes) == 1 and None not in next(iter(sizes)):
            size = next(iter(sizes))
        entries = data["annotations"]
    else:
        entries = data
    rows = []
    for k, e in enumerate(entries):
        if not isinstance(e, dict) or "keypoints" not in e or "image_id" not in e:
            raise _fail(path, f"entry {k} has no 'keypoints' / 'image_id'",
                        "COCO results are [{\"image_id\", \"keypoints\": [x, y, v] * 17, ...}].")
        if not any(e["keypoints"]):
            continue
        kp = _flat_keypoints(e["keypoints"], path, f"entry {k}")
        rows.append((int(e["image_id"]), float(e.get("score", kp[:, 2].mean())), kp))
    return _assemble(rows, path, image_size=size)


def read_openpose(path: Path) -> KeypointTrack:
    """One OpenPose ``*_keypoints.json`` or a folder of them (one sequence, in name order)."""
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise _fail(path, "holds no .json files", "Pass OpenPose's --write_json folder.")
    rows = []
    for frame, f in enumerate(files):
        data = _load_json(f)
        if not isinstance(data, dict) or "people" not in data:
            raise _fail(f, "has no 'people' list", "This is not an OpenPose keypoint JSON.")
        for p in data["people"]:
            kp = _flat_keypoints(p.get("pose_keypoints_2d", []), f, "pose_keypoints_2d")
            if kp[:, 2].any():
                rows.append((frame, float(kp[:, 2].mean()), kp))
    return _assemble(rows, path)


def read_array(path: Path, layout: Optional[str]) -> KeypointTrack:
    """(T, J, 2) or (T, J, 3) in a .npy, or the only / 'keypoints' array of a .npz."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise _fail(path, f"cannot be read as a numpy array ({exc})",
                    "Save the keypoints with numpy.save (no object arrays).") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            keys = loaded.files
            key = "keypoints" if "keypoints" in keys else (keys[0] if len(keys) == 1 else None)
            if key is None:
                raise _fail(path, f"holds arrays {keys} and none is called 'keypoints'",
                            "Name the (T, J, 2|3) array 'keypoints'.")
            arr = loaded[key]
    else:
        arr = loaded
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[-1] not in (2, 3) or len(arr) == 0:
        raise _fail(path, f"has shape {arr.shape}, expected (T, J, 2) or (T, J, 3)",
                    "One row per frame, one (x, y[, score]) per joint.")
    if layout is None:
        if arr.shape[1] == 17:
            raise _fail(path, "has 17 joints, which is COCO-17 or H36M-17",
                        "Pass --layout coco17 or --layout h36m17.")
        layout = layout_for_count(arr.shape[1], f"{path}: ").name
    if LAYOUTS[layout].num_joints != arr.shape[1]:
        raise _fail(path, f"has {arr.shape[1]} joints but --layout {layout} has "
                          f"{LAYOUTS[layout].num_joints}", "Pass the layout the file uses.")
    scores = arr[..., 2] if arr.shape[-1] == 3 else np.ones(arr.shape[:2])
    rows = [(t, 1.0, np.concatenate([arr[t, :, :2], scores[t, :, None]], 1))
            for t in range(len(arr))]
    return _assemble(rows, path, layout=layout)


def detect_format(path: Path) -> str:
    """'coco', 'openpose' or 'npy' from the file's content (a folder: OpenPose frames)."""
    if path.is_dir():
        return "openpose"
    if path.suffix in (".npy", ".npz"):
        return "npy"
    data = _load_json(path)
    if isinstance(data, dict) and "people" in data:
        return "openpose"
    if (isinstance(data, dict) and "annotations" in data) or (
            isinstance(data, list) and data and isinstance(data[0], dict)
            and "keypoints" in data[0]):
        return "coco"
    raise _fail(path, "is neither COCO keypoints (a results list or images/annotations) nor "
                      "OpenPose output (people[].pose_keypoints_2d)",
                "Pass --input-format to say which it is, or convert it to a (T, J, 3) .npy.")


def read_keypoints(path, input_format: str = "auto", layout: Optional[str] = None
                   ) -> KeypointTrack:
    path = Path(path)
    if not path.exists():
        raise KeypointInputError(f"{path}: no such file or folder. Check --input.")
    fmt = detect_format(path) if input_format == "auto" else input_format
    if fmt == "coco":
        return read_coco(path)
    if fmt == "openpose":
        return read_openpose(path)
    if fmt == "npy":
        return read_array(path, layout)
    raise KeypointInputError(f"unknown --input-format '{input_format}' "
                             f"(one of {', '.join(INPUT_FORMATS)})")


__all__: List[str] = ["KeypointTrack", "KeypointInputError", "read_keypoints", "detect_format"]
