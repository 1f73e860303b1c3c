"""Readers of 2D keypoint files as detectors write them, with format detection from content.

Every reader returns a :class:`KeypointTrack`: one row per (frame, person), pixel coordinates
in the file's own joint layout, a confidence per joint (1 where the file has none) and, where
the file says it, the image size. Several people in one image get person ids 0, 1, ... in
descending detection score, so person k of consecutive frames forms one track.

The input formats are plug-ins: :data:`INPUT_FORMATS` is the registry, and adding a format is
one reader function under ``@register_input(name, sniff)``, where ``sniff(probe)`` says from
the content whether a file is of this format (``--input-format auto`` asks the formats in
registration order and takes the first that says yes).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from lib.infer.layouts import LAYOUTS, KeypointInputError, layout_for_count


@dataclass
class KeypointTrack:
    xy: np.ndarray                    # (N, J, 2) pixels
    scores: np.ndarray                # (N, J) in [0, 1]; 0 = missing
    layout: str                       # key of lib.infer.layouts.LAYOUTS
    frame_ids: np.ndarray             # (N,) int: image id / frame number
    person_ids: np.ndarray            # (N,) int
    image_size: Optional[tuple] = None   # (width, height) in pixels, if the file has it
    source: str = ""
    image_sizes: Optional[np.ndarray] = None  # (N, 2) per row, where rows differ (datasets)
    fps: Optional[float] = None       # frame rate of frame_ids, if the format has one
    extras: dict = field(default_factory=dict)   # more (N, ...) columns for the outputs
    dataset: object = None            # the LiftingDataset of a dataset input (GT 3D, actions)
    track_names: dict = field(default_factory=dict)   # person id -> words, where they say more
    protocol: str = ""                # a dataset input: what is evaluated (test.py's card)
    input_format: str = ""            # the INPUT_FORMATS entry that read it

    def __post_init__(self):
        n = len(self.xy)
        if not (len(self.scores) == len(self.frame_ids) == len(self.person_ids) == n):
            raise KeypointInputError(f"{self.source}: inconsistent keypoint rows")


class Probe:
    """What the sniffing functions look at: the path, and its JSON content read once."""

    def __init__(self, path: Optional[Path], cfg=None):
        self.path = None if path is None else Path(path)
        self.cfg = cfg                 # the run's config (dataset inputs need it), or None
        self._json = None
        self.json_error: Optional[KeypointInputError] = None   # why the file is not JSON

    @property
    def json(self):
        """The file's JSON content, or None where it is a folder or not JSON (``json_error``
        then says why: an empty file, a syntax error)."""
        if self._json is None and self.json_error is None and self.path.is_file():
            try:
                self._json = _load_json(self.path)
            except KeypointInputError as exc:
                self.json_error = exc
        return self._json


@dataclass
class ReadOptions:
    """What a reader may need besides the file: the command line's choices."""
    layout: Optional[str] = None       # --layout of an array input
    cfg: object = None                 # the run's config (dataset inputs)
    split: Optional[str] = None        # --split of a dataset input
    subjects: Optional[tuple] = None   # --subjects of a dataset input


@dataclass(frozen=True)
class InputFormat:
    name: str
    sniff: Callable[[Probe], bool]
    read: Callable[[Probe, ReadOptions], KeypointTrack]
    summary: str
    needs_input: bool = True           # False: without --input it reads the config's files


INPUT_FORMATS: Dict[str, InputFormat] = {}


def register_input(name: str, sniff: Callable[[Probe], bool], needs_input: bool = True):
    """Decorator of a reader ``read(probe, options) -> KeypointTrack``: registers the input
    format ``name`` (an --input-format value) with its content test for ``auto``.
    ``needs_input`` False: the reader also runs without --input (``probe.path`` None)."""
    def decorate(read):
        if name in INPUT_FORMATS or name == "auto":
            raise ValueError(f"input format '{name}' is registered twice")
        summary = (read.__doc__ or name).strip().splitlines()[0]
        INPUT_FORMATS[name] = InputFormat(name, sniff, read, summary, needs_input)
        return read
    return decorate


def input_format_names() -> tuple:
    """The --input-format choices: 'auto' and every registered format."""
    return ("auto", *INPUT_FORMATS)


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


def _is_coco(probe: Probe) -> bool:
    data = probe.json
    return (isinstance(data, dict) and "annotations" in data) or (
        isinstance(data, list) and bool(data) and isinstance(data[0], dict)
        and "keypoints" in data[0])


def _is_openpose(probe: Probe) -> bool:
    if probe.path.is_dir():
        return True
    return isinstance(probe.json, dict) and "people" in probe.json


def _is_array(probe: Probe) -> bool:
    return probe.path.is_file() and probe.path.suffix in (".npy", ".npz")


def _is_dataset(probe: Probe) -> bool:
    from lib.infer.dataset_input import is_dataset_root
    return probe.path.is_dir() and probe.cfg is not None and is_dataset_root(probe.path,
                                                                             probe.cfg)


@register_input("npy", _is_array)
def read_npy(probe: Probe, opts: ReadOptions) -> KeypointTrack:
    """numpy (T, J, 2|3) arrays (.npy, or .npz with a 'keypoints' array) in --layout."""
    return read_array(probe.path, opts.layout)


@register_input("h36m", _is_dataset, needs_input=False)
def read_h36m(probe: Probe, opts: ReadOptions) -> KeypointTrack:
    """Human3.6M files themselves (the YAML's DATASET format), a split or subjects, with GT 3D."""
    from lib.infer.dataset_input import read_dataset
    return read_dataset(probe.path, opts.cfg, opts.split, opts.subjects)


@register_input("openpose", _is_openpose)
def read_openpose_input(probe: Probe, opts: ReadOptions) -> KeypointTrack:
    """OpenPose per-frame JSON (BODY_25 / COCO-18), a folder of them being one sequence."""
    return read_openpose(probe.path)


@register_input("coco", _is_coco)
def read_coco_input(probe: Probe, opts: ReadOptions) -> KeypointTrack:
    """COCO keypoint results (MMPose, Detectron2, ViTPose) or the annotation layout."""
    return read_coco(probe.path, probe.json)


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


def detect_format(path: Path, cfg=None) -> str:
    """The first registered format whose content test accepts ``path`` (a folder: a dataset
    root the YAML's DATASET format reads, else OpenPose frames)."""
    probe = Probe(path, cfg)
    return _detect(probe)


def _detect(probe: Probe) -> str:
    for fmt in INPUT_FORMATS.values():
        if fmt.sniff(probe):
            return fmt.name
    if probe.json_error is not None:       # empty, or not JSON: say that, not "neither"
        raise probe.json_error
    raise _fail(probe.path, "is neither COCO keypoints (a results list or images/annotations) "
                            "nor OpenPose output (people[].pose_keypoints_2d)",
                "Pass --input-format to say which it is, or convert it to a (T, J, 3) .npy.")


def read_keypoints(path, input_format: str = "auto", layout: Optional[str] = None,
                   cfg=None, split: Optional[str] = None, subjects=None) -> KeypointTrack:
    if input_format != "auto" and input_format not in INPUT_FORMATS:
        raise KeypointInputError(f"unknown --input-format '{input_format}' "
                                 f"(one of {', '.join(input_format_names())})")
    if path is None:
        if input_format == "auto" or INPUT_FORMATS[input_format].needs_input:
            takes = [f.name for f in INPUT_FORMATS.values() if not f.needs_input]
            raise KeypointInputError(
                f"no --input given: pass the keypoint file or folder with --input PATH (only "
                f"--input-format {' / '.join(takes)} reads the YAML's own DATASET without it)")
        track = INPUT_FORMATS[input_format].read(Probe(None, cfg),
                                                 ReadOptions(layout, cfg, split, subjects))
        track.input_format = input_format
        return track
    path = Path(path)
    if not path.exists():
        raise KeypointInputError(f"{path}: no such file or folder. Check --input.")
    probe = Probe(path, cfg)
    fmt = _detect(probe) if input_format == "auto" else input_format
    track = INPUT_FORMATS[fmt].read(probe, ReadOptions(layout, cfg, split, subjects))
    track.input_format = fmt
    return track


__all__: List[str] = ["KeypointTrack", "KeypointInputError", "INPUT_FORMATS", "register_input",
                      "read_keypoints", "detect_format"]
