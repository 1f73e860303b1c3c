"""Human3.6M in the COCO-style JSON layout of Moon et al. (used by HGN, Pose2Mesh, I2L-MeshNet).

Files, per subject S, under ``<root>/Human36M/annotations/``:

* ``Human36M_subject{S}_data.json``: COCO dict; ``images[]`` carry subject, action_idx,
  subaction_idx, cam_idx, frame_idx, width, height; ``annotations[]`` carry bbox, keypoints_vis.
* ``Human36M_subject{S}_camera.json``: ``{cam: {R, t (mm), f, c}}`` (no distortion; we also
  accept and write optional ``k`` (3) and ``p`` (2) so a distorted calibration survives).
* ``Human36M_subject{S}_joint_3d.json``: ``[action][subaction][frame]`` -> 17x3 world mm.
* ``Human36M_subject{S}_smpl_param.json`` (or ``_smpl_camera.json``, the name in the HGN
  README): ``[action][subaction][frame]`` -> {pose 72, shape 10, trans 3 or [[3]] (metres),
  fitted_3d_pose 17x3}; frames without a fit have no entry.

plus ``<root>/Human36M/J_regressor_h36m_correct.npy`` (17, V).

The sequences are the (action_idx, subaction_idx) pairs of data.json, with the frames that
data.json lists; action labels come from ``action_idx``, never from file names. Frames present
in joint_3d.json / smpl_param.json but absent from data.json are ignored and counted in the log.
Samples are images, as HGN enumerates them: an image without an annotation, or whose box is
degenerate by the official loader's rule (:func:`degenerate_boxes`), is dropped and counted;
a frame that some camera has no image of is kept for the others (``Sequence.camera_frames``).
The writer writes ``trans`` as [[x, y, z]] and ``keypoints_vis`` as booleans, as the real files.
Sequences whose SMPL file has no ``[action][subaction]`` entry get ``smpl=None``; sequences with
an entry get SmplParams whose frames without a fit are ``valid=False`` with zero parameters.

Longer than most modules on purpose: one format, one module (reader, writer, plug-in), so
the layout's rules are read in one place.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import numpy as np

from lib.data.corpus import PoseCorpus, Sequence, SmplParams
from lib.data.errors import (DataFormatError, HOW_TO_SYNTHESIZE, missing_file_error,
                         require_file)
from lib.fileio import atomic_write_text
from lib.geometry import h36m_calibration as calib
from lib.geometry.camera import Camera
from lib.geometry.skeleton import ACTION_NAME, convert_joints

LOG = logging.getLogger("pose.data.h36m_json")

ANNOTATION_DIR = Path("Human36M") / "annotations"
REGRESSOR_FILE = Path("Human36M") / "J_regressor_h36m_correct.npy"
SMPL_FILE_KINDS = ("smpl_param", "smpl_camera")   # the code's name first, the README's second
NUM_JOINTS = 17

HOW_TO_GET_JSON = (
    "download the HGN annotations (link in the HGN README, 'Annotations') and unzip them into "
    "<root>/Human36M/annotations/; or convert VideoPose3D files with `python data/convert.py "
    f"npz2json --src <npz dir> --dst <root>`; or {HOW_TO_SYNTHESIZE}")
HOW_TO_GET_REGRESSOR = (
    "it ships with the HGN/Pose2Mesh Human3.6M annotations (J_regressor_h36m_correct.npy, put it "
    f"in <root>/Human36M/); or {HOW_TO_SYNTHESIZE}")

_SUBJECT_FILE = re.compile(r"Human36M_subject(\d+)_data\.json$")
_IMAGE_FIELDS = ("subject", "action_idx", "subaction_idx", "cam_idx", "frame_idx", "width",
                 "height")


# ----------------------------------------------------------------------------- paths
def annotation_path(root, subject: int, kind: str) -> Path:
    """``<root>/Human36M/annotations/Human36M_subject{S}_{kind}.json``."""
    return Path(root) / ANNOTATION_DIR / f"Human36M_subject{int(subject)}_{kind}.json"


def _smpl_path(root, subject: int) -> Path:
    for kind in SMPL_FILE_KINDS:
        path = annotation_path(root, subject, kind)
        if path.is_file():
            return path
    raise missing_file_error(
        annotation_path(root, subject, SMPL_FILE_KINDS[0]),
        f"(also looked for {annotation_path(root, subject, SMPL_FILE_KINDS[1]).name}) "
        + HOW_TO_GET_JSON)


def available_subjects(root) -> List[int]:
    """Subjects that have a data.json under ``root``."""
    folder = Path(root) / ANNOTATION_DIR
    if not folder.is_dir():
        return []
    found = (_SUBJECT_FILE.match(p.name) for p in folder.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def _load_json(path: Path):
    if not path.is_file():
        raise missing_file_error(path, HOW_TO_GET_JSON)
    try:
        with open(path, "r") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, None, f"not valid JSON ({exc}): the file is truncated or "
                                          f"corrupt; get it again: {HOW_TO_GET_JSON}") from None


def _lookup(mapping, keys: Iterable, path: Path, what: str):
    """mapping[k0][k1]...; a missing level raises DataFormatError naming the key path."""
    node = mapping
    done = []
    for k in keys:
        done.append(str(k))
        if not isinstance(node, dict) or str(k) not in node:
            raise DataFormatError(path, "/".join(done), f"missing {what}")
        node = node[str(k)]
    return node


# ----------------------------------------------------------------------------- reading
def _read_images(path: Path, subject: int) -> tuple:
    """data.json -> int64 table (n_images, 7) with the columns of ``_IMAGE_FIELDS``, and the
    (n_images,) mask of the images that are samples (:func:`_usable_images`)."""
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataFormatError(path, "images", "missing; expected a COCO dict with images[]")
    images = data["images"]
    try:
        table = np.array([[im[k] for k in _IMAGE_FIELDS] for im in images], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        for i, im in enumerate(images):
            for k in _IMAGE_FIELDS:
                if not isinstance(im, dict) or k not in im:
                    raise DataFormatError(path, f"images[{i}].{k}", "missing") from None
                if not isinstance(im[k], (int, float)) or isinstance(im[k], bool):
                    raise DataFormatError(path, f"images[{i}].{k}",
                                          f"expected a number, got {im[k]!r}") from None
        raise
    table = table.reshape(-1, len(_IMAGE_FIELDS))
    bad = ~np.isfinite(table) | (table != np.round(table))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise DataFormatError(path, f"images[{i}].{_IMAGE_FIELDS[j]}",
                              f"expected an integer, got {table[i, j]}")
    table = table.astype(np.int64)
    wrong_subject = np.flatnonzero(table[:, 0] != subject)
    if len(wrong_subject):
        i = wrong_subject[0]
        raise DataFormatError(path, f"images[{i}].subject",
                              f"unknown subject {table[i, 0]} in the file of subject {subject}")
    unknown_action = np.flatnonzero(~np.isin(table[:, 1], list(ACTION_NAME)))
    if len(unknown_action):
        i = unknown_action[0]
        raise DataFormatError(path, f"images[{i}].action_idx",
                              f"unknown action index {table[i, 1]}; Human3.6M actions are "
                              f"{min(ACTION_NAME)}..{max(ACTION_NAME)}")
    return table, _usable_images(data, table, path)


def degenerate_boxes(boxes: np.ndarray, width: np.ndarray, height: np.ndarray) -> np.ndarray:
    """(M,) bool: the [x, y, w, h] boxes the official loaders drop.

    The rule of Pose2Mesh's ``process_bbox`` (HGN's loader calls it on every annotation):
    clip the box to the image, x1 = max(0, x), x2 = min(W - 1, x1 + max(0, w - 1)) (likewise y);
    the box is kept iff w * h > 0 and x2 >= x1 and y2 >= y1.
    """
    x, y, w, h = (boxes[:, k] for k in range(4))
    x1, y1 = np.maximum(0, x), np.maximum(0, y)
    x2 = np.minimum(width - 1, x1 + np.maximum(0, w - 1))
    y2 = np.minimum(height - 1, y1 + np.maximum(0, h - 1))
    return ~((w * h > 0) & (x2 >= x1) & (y2 >= y1))


def _usable_images(data: dict, table: np.ndarray, path: Path) -> np.ndarray:
    """(n_images,) bool: images that are samples, as HGN enumerates them: each annotation of
    an image with a box that is not degenerate. Dropped images are counted in the log."""
    images, anns = data["images"], data.get("annotations")
    if not isinstance(anns, list):
        raise DataFormatError(path, "annotations", "missing; expected a COCO dict with "
                                                   "annotations[] (one per image, with bbox)")
    row_of = {}
    for i, im in enumerate(images):
        if "id" not in im:
            raise DataFormatError(path, f"images[{i}].id", "missing")
        row_of[im["id"]] = i
    rows, boxes = [], []
    for i, ann in enumerate(anns):
        if not isinstance(ann, dict) or "image_id" not in ann or "bbox" not in ann:
            what = "image_id" if not isinstance(ann, dict) or "image_id" not in ann else "bbox"
            raise DataFormatError(path, f"annotations[{i}].{what}", "missing")
        if ann["image_id"] not in row_of:
            raise DataFormatError(path, f"annotations[{i}].image_id",
                                  f"no image with id {ann['image_id']!r} in images[]")
        box = ann["bbox"]
        if not (isinstance(box, list) and len(box) == 4 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
            raise DataFormatError(path, f"annotations[{i}].bbox",
                                  f"expected [x, y, w, h] numbers, got {box!r}")
        rows.append(row_of[ann["image_id"]])
        boxes.append(box)
    rows = np.asarray(rows, dtype=np.int64)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    usable = np.zeros(len(table), dtype=bool)
    bad = degenerate_boxes(boxes, table[rows, 5], table[rows, 6]) if len(rows) else \
        np.zeros(0, bool)
    usable[rows[~bad]] = True
    annotated = np.zeros(len(table), dtype=bool)
    annotated[rows] = True
    n_bad_box = int((annotated & ~usable).sum())
    n_no_ann = int((~annotated).sum())
    if n_bad_box or n_no_ann:
        LOG.info("%s: %d image(s) dropped for a degenerate box (w or h <= 0, or outside the "
                 "image; the rule of the official loader) and %d without an annotation",
                 path.name, n_bad_box, n_no_ann)
    return usable


def _read_cameras(path: Path, subject: int, images: np.ndarray) -> Dict[int, Camera]:
    raw = _load_json(path)
    if not isinstance(raw, dict):
        raise DataFormatError(path, None, "expected a dict {cam_idx: {R, t, f, c}}")
    shapes = {"R": (3, 3), "t": (3,), "f": (2,), "c": (2,)}
    optional = {"k": (3,), "p": (2,)}
    cameras = {}
    for cam_key, record in raw.items():
        if not str(cam_key).isdigit():
            raise DataFormatError(path, str(cam_key), "camera keys must be camera indices")
        cam = int(cam_key)
        values = {}
        for name, shape in {**shapes, **optional}.items():
            if name not in record:
                if name in optional:
                    values[name] = np.zeros(shape)
                    continue
                raise DataFormatError(path, f"{cam_key}/{name}", "missing")
            try:
                arr = np.asarray(record[name], dtype=np.float64)
            except (TypeError, ValueError):
                arr = np.empty(0)
            if arr.shape != shape:
                raise DataFormatError(path, f"{cam_key}/{name}",
                                      f"expected shape {shape}, got {np.shape(record[name])}")
            if not np.isfinite(arr).all():
                raise DataFormatError(path, f"{cam_key}/{name}", "contains NaN/inf")
            values[name] = arr
        width, height = _camera_resolution(images, cam)
        cameras[cam] = Camera(R=values["R"], t=values["t"], f=values["f"], c=values["c"],
                              k=values["k"], p=values["p"], width=width, height=height,
                              name=_camera_name(cam))
    used = set(np.unique(images[:, 3]).tolist())
    missing = sorted(used - set(cameras))
    if missing:
        raise DataFormatError(path, str(missing[0]), "missing camera used by images of the "
                                                     "subject's data.json")
    return cameras


def _camera_resolution(images: np.ndarray, cam: int):
    rows = images[images[:, 3] == cam]
    if len(rows) == 0:  # a camera with no images: the published resolution, or 1000 x 1000
        intr = calib.INTRINSICS[cam - 1] if 1 <= cam <= len(calib.INTRINSICS) else {}
        return int(intr.get("res_w", 1000)), int(intr.get("res_h", 1000))
    sizes = np.unique(rows[:, 5:7], axis=0)
    if len(sizes) > 1:
        LOG.warning("camera %d has images of %d different sizes; using %s", cam, len(sizes),
                    sizes[0].tolist())
    return int(sizes[0, 0]), int(sizes[0, 1])


def _camera_name(cam: int) -> str:
    """The H36M serial number of camera 1..4 (the JSON has no names)."""
    if 1 <= cam <= len(calib.INTRINSICS):
        return calib.INTRINSICS[cam - 1]["id"]
    return str(cam)


def _stack_frames(frames_dict: dict, frames: np.ndarray, path: Path, prefix: str,
                  field: Optional[str], shape: tuple) -> np.ndarray:
    """np.asarray of frames_dict[str(f)][field] for every f, with errors naming the frame."""
    keys = [str(f) for f in frames.tolist()]
    try:
        rows = [frames_dict[k] if field is None else frames_dict[k][field] for k in keys]
        arr = np.asarray(rows, dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        arr = None
    if arr is None or arr.shape[1:] != shape:
        for k in keys:
            if k not in frames_dict:
                raise DataFormatError(path, f"{prefix}/{k}", "missing frame listed in data.json")
            entry = frames_dict[k]
            if field is not None:
                if not isinstance(entry, dict) or field not in entry:
                    raise DataFormatError(path, f"{prefix}/{k}/{field}", "missing")
                entry = entry[field]
            try:
                got = np.asarray(entry, dtype=np.float64).shape
            except (TypeError, ValueError):
                got = "ragged"
            if got != shape:
                key = f"{prefix}/{k}" + (f"/{field}" if field else "")
                raise DataFormatError(path, key, f"expected shape {shape}, got {got}")
        raise DataFormatError(path, prefix, f"cannot stack frames into shape (N, {shape})")
    bad = ~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)
    if bad.any():
        key = f"{prefix}/{keys[int(np.argmax(bad))]}" + (f"/{field}" if field else "")
        raise DataFormatError(path, key, f"contains NaN/inf ({int(bad.sum())} frames affected)")
    return arr


def _read_smpl(smpl_seq: dict, frames: np.ndarray, path: Path, prefix: str) -> SmplParams:
    keys = [str(f) for f in frames.tolist()]
    valid = np.array([k in smpl_seq for k in keys], dtype=bool)
    n = len(frames)
    pose, shape, trans = np.zeros((n, 72)), np.zeros((n, 10)), np.zeros((n, 3))
    if valid.any():
        fit_frames = frames[valid]
        pose[valid] = _stack_frames(smpl_seq, fit_frames, path, prefix, "pose", (72,))
        shape[valid] = _stack_frames(smpl_seq, fit_frames, path, prefix, "shape", (10,))
        # trans is [x, y, z] or [[x, y, z]]: flatten every entry to 3 values first
        flat = {}
        for k in (str(f) for f in fit_frames.tolist()):
            entry = smpl_seq[k]
            if not isinstance(entry, dict) or "trans" not in entry:
                raise DataFormatError(path, f"{prefix}/{k}/trans", "missing")
            try:
                flat[k] = {"trans": np.ravel(np.asarray(entry["trans"], dtype=np.float64))}
            except (TypeError, ValueError):
                flat[k] = entry   # ragged: _stack_frames reports the shape
        trans[valid] = _stack_frames(flat, fit_frames, path, prefix, "trans", (3,))
    return SmplParams(pose=pose, shape=shape, trans=trans, valid=valid)


def _read_subject(root, subject: int) -> tuple:
    data_path, camera_path, joints_path = (
        require_file(annotation_path(root, subject, kind), HOW_TO_GET_JSON)
        for kind in ("data", "camera", "joint_3d"))
    smpl_path = _smpl_path(root, subject)

    images, usable = _read_images(data_path, subject)
    cameras = _read_cameras(camera_path, subject, images)
    images = images[usable]
    joints_json = _load_json(joints_path)
    smpl_json = _load_json(smpl_path)
    if not isinstance(joints_json, dict):
        raise DataFormatError(joints_path, None, "expected a dict [action][subaction][frame]")
    if not isinstance(smpl_json, dict):
        raise DataFormatError(smpl_path, None, "expected a dict [action][subaction][frame]")

    sequences = []
    ignored = {"joint_3d": 0, "smpl": 0}
    pairs = np.unique(images[:, 1:3], axis=0)
    for action_idx, subaction_idx in pairs.tolist():
        rows = images[(images[:, 1] == action_idx) & (images[:, 2] == subaction_idx)]
        frames = np.unique(rows[:, 4])
        camera_frames = _camera_frames(rows, frames, cameras, subject, action_idx,
                                       subaction_idx)
        prefix = f"{action_idx}/{subaction_idx}"
        seq_joints = _lookup(joints_json, (action_idx, subaction_idx), joints_path,
                             "sequence listed in data.json")
        joints = _stack_frames(seq_joints, frames, joints_path, prefix, None, (NUM_JOINTS, 3))
        ignored["joint_3d"] += len(seq_joints) - len(frames)
        smpl = None
        smpl_seq = smpl_json.get(str(action_idx), {})
        smpl_seq = smpl_seq.get(str(subaction_idx)) if isinstance(smpl_seq, dict) else None
        if smpl_seq is not None:
            if not isinstance(smpl_seq, dict):
                raise DataFormatError(smpl_path, prefix, "expected a dict {frame: fit}")
            smpl = _read_smpl(smpl_seq, frames, smpl_path, prefix)
            ignored["smpl"] += len(smpl_seq) - int(smpl.valid.sum())
        sequences.append(Sequence(subject=subject, action_idx=int(action_idx),
                                  subaction_idx=int(subaction_idx), joints_world=joints,
                                  joint_set="h36m17", frame_idx=frames, smpl=smpl,
                                  camera_frames=camera_frames))
    listed = {(a, s) for a, s in pairs.tolist()}
    for a, by_sub in joints_json.items():
        for s, by_frame in (by_sub.items() if isinstance(by_sub, dict) else ()):
            if not (a.isdigit() and s.isdigit() and (int(a), int(s)) in listed):
                ignored["joint_3d"] += len(by_frame) if isinstance(by_frame, dict) else 0
    n_frames = sum(s.num_frames for s in sequences)
    n_fit = sum(int(s.smpl.valid.sum()) for s in sequences if s.smpl is not None)
    LOG.info("S%d: %d sequences, %d frames (%d with an SMPL fit, %d without) from %s",
             subject, len(sequences), n_frames, n_fit, n_frames - n_fit, data_path.parent)
    if ignored["joint_3d"] or ignored["smpl"]:
        LOG.info("S%d: ignored %d frames of %s and %d of %s that data.json does not list",
                 subject, ignored["joint_3d"], joints_path.name, ignored["smpl"], smpl_path.name)
    return sequences, cameras


def _camera_frames(rows, frames, cameras, subject, action_idx, subaction_idx):
    """{cam: (N,) bool} of the frames each camera has an image of; None when all have all.

    HGN enumerates images, so a frame that one camera lacks is no sample of that camera."""
    masks = {cam: np.isin(frames, rows[rows[:, 3] == cam, 4]) for cam in sorted(cameras)}
    if all(m.all() for m in masks.values()):
        return None
    short = [(cam, int(m.sum())) for cam, m in masks.items() if not m.all()]
    LOG.info("S%d action %d subaction %d: %d frames, but cameras %s have fewer images "
             "(camera, images); only the images become samples", subject, action_idx,
             subaction_idx, len(frames), short)
    return masks


def read_h36m_json(root, subjects=None) -> PoseCorpus:
    """All sequences of the given subjects (default: every subject with a data.json)."""
    if subjects is None:
        subjects = available_subjects(root)
        if not subjects:
            raise missing_file_error(Path(root) / ANNOTATION_DIR / "Human36M_subject1_data.json",
                                     HOW_TO_GET_JSON)
    sequences, cameras = [], {}
    for subject in sorted(int(s) for s in subjects):
        seqs, cams = _read_subject(root, subject)
        sequences += seqs
        cameras[subject] = cams
    return PoseCorpus(sequences, cameras, source=f"h36m-json:{Path(root)}")


def read_h36m_regressor(root) -> np.ndarray:
    """The (17, V) H36M joint regressor, validated (finite, non-negative)."""
    path = Path(root) / REGRESSOR_FILE
    if not path.is_file():
        raise missing_file_error(path, HOW_TO_GET_REGRESSOR)
    try:
        reg = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataFormatError(path, None, f"not a numeric .npy array ({exc})") from None
    _validate_regressor(reg, path)
    return reg


def _validate_regressor(reg: np.ndarray, where) -> None:
    if reg.ndim != 2 or reg.shape[0] != NUM_JOINTS:
        raise DataFormatError(where, "J_regressor", f"expected shape ({NUM_JOINTS}, V), got "
                                                    f"{reg.shape}")
    if not np.isfinite(reg).all():
        raise DataFormatError(where, "J_regressor", "contains NaN/inf")
    if (reg < 0).any():
        raise DataFormatError(where, "J_regressor", "has negative weights")


# ----------------------------------------------------------------------------- writing
def image_file_name(subject, action_idx, subaction_idx, cam_idx, frame_idx) -> str:
    """The H36M image name, 0-based frame -> 1-based file number, e.g.
    s_09_act_02_subact_01_ca_01/s_09_act_02_subact_01_ca_01_000001.jpg for frame 0."""
    folder = f"s_{subject:02d}_act_{action_idx:02d}_subact_{subaction_idx:02d}_ca_{cam_idx:02d}"
    return f"{folder}/{folder}_{frame_idx + 1:06d}.jpg"


def _joints17(seq: Sequence) -> np.ndarray:
    if seq.joint_set == "h36m17":
        return seq.joints_world
    if seq.joint_set == "h36m32":
        return convert_joints(seq.joints_world, "h36m32", "h36m17")
    raise ValueError(f"sequence {seq.key} has joint set '{seq.joint_set}'; the COCO-style JSON "
                     "needs the 17 H36M joints (from h36m17 or h36m32)")


def _bboxes(uv: np.ndarray, scale: float) -> np.ndarray:
    """(N, J, 2) pixels -> (N, 4) [x, y, w, h] boxes around the joints, enlarged by ``scale``."""
    lo, hi = uv.min(axis=1), uv.max(axis=1)
    centre, size = (lo + hi) / 2, (hi - lo) * scale
    return np.concatenate([centre - size / 2, size], axis=1)


def _camera_json(cam: Camera) -> dict:
    record = cam.to_json()
    if np.any(cam.k) or np.any(cam.p):   # the real files have none; keep ours if non-zero
        record["k"] = np.asarray(cam.k, np.float64).tolist()
        record["p"] = np.asarray(cam.p, np.float64).tolist()
    return record


def _dump(obj, path: Path) -> None:
    # json.dumps uses the C encoder, json.dump does not
    atomic_write_text(path, json.dumps(obj, separators=(",", ":")))


def write_h36m_json(corpus: PoseCorpus, root, regressor: Optional[np.ndarray] = None,
                    bbox_scale: float = 1.2) -> List[Path]:
    """Write the four JSON files of every subject (and the regressor .npy if given).

    Every frame is listed for every camera of the subject that has an image of it
    (``Sequence.camera_frames``; by default all). Image ids are unique across subjects
    (subject * 10**8 + running number) because HGN concatenates the subjects' image lists.
    ``fitted_3d_pose`` holds the sequence's own 17 joints: no SMPL forward pass is run here, and
    HGN never reads the field. Boxes are the projected joints' extent times ``bbox_scale``.
    """
    out_dir = Path(root) / ANNOTATION_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for subject in corpus.subjects:
        seqs = sorted((s for s in corpus.sequences if s.subject == subject), key=lambda s: s.key)
        if subject not in corpus.cameras or not corpus.cameras[subject]:
            raise ValueError(f"corpus '{corpus.source}' has no cameras for subject S{subject}")
        cameras = dict(sorted(corpus.cameras[subject].items()))
        images, annotations, joints_out, smpl_out = [], [], {}, {}
        next_id = subject * 10 ** 8
        for seq in seqs:
            a, s = str(seq.action_idx), str(seq.subaction_idx)
            if s in joints_out.get(a, {}):
                raise ValueError(f"corpus holds two sequences with key {seq.key}")
            j17 = _joints17(seq)
            frames = [int(f) for f in np.asarray(seq.frame_idx).tolist()]
            frame_keys = [str(f) for f in frames]
            j17_list = np.asarray(j17).tolist()
            joints_out.setdefault(a, {})[s] = dict(zip(frame_keys, j17_list))
            if seq.smpl is not None:
                pose, shape, trans = (np.asarray(x).tolist() for x in
                                      (seq.smpl.pose, seq.smpl.shape, seq.smpl.trans))
                smpl_out.setdefault(a, {})[s] = {   # trans as [[x, y, z]], as the real files
                    frame_keys[i]: {"pose": pose[i], "shape": shape[i], "trans": [trans[i]],
                                    "fitted_3d_pose": j17_list[i]}
                    for i in np.flatnonzero(seq.smpl.valid).tolist()}
            for cam_idx, cam in cameras.items():
                uv = cam.project(cam.world_to_camera(np.asarray(j17, np.float64)), distort=True)
                boxes = _bboxes(uv, bbox_scale).tolist()
                has_image = seq.frames_of_camera(cam_idx)
                for f, box, present in zip(frames, boxes, has_image.tolist()):
                    if not present:
                        continue
                    images.append({
                        "id": next_id,
                        "file_name": image_file_name(subject, seq.action_idx, seq.subaction_idx,
                                                     cam_idx, f),
                        "width": int(cam.width), "height": int(cam.height), "subject": subject,
                        "action_name": seq.action_name, "action_idx": seq.action_idx,
                        "subaction_idx": seq.subaction_idx, "cam_idx": cam_idx, "frame_idx": f})
                    annotations.append({"id": next_id, "image_id": next_id, "bbox": box,
                                        "keypoints_vis": [True] * NUM_JOINTS})
                    next_id += 1
        contents = {"data": {"images": images, "annotations": annotations},
                    "camera": {str(c): _camera_json(cam) for c, cam in cameras.items()},
                    "joint_3d": joints_out, "smpl_param": smpl_out}
        for kind, obj in contents.items():
            path = annotation_path(root, subject, kind)
            _dump(obj, path)
            written.append(path)
        LOG.info("wrote S%d: %d sequences, %d images to %s", subject, len(seqs), len(images),
                 out_dir)
    if regressor is not None:
        regressor = np.asarray(regressor)
        _validate_regressor(regressor, "regressor argument")
        path = Path(root) / REGRESSOR_FILE
        np.save(path, regressor)
        written.append(path)
    return written


# ----------------------------------------------------------------------------- plug-in
from lib.data.formats import DatasetFormat, register_format  # noqa: E402
from lib.data.formats.human36m import human36m_info  # noqa: E402


@register_format
class H36MJsonFormat(DatasetFormat):
    """``DATASET.format: json``: the files above; only ground-truth 2D (projected per camera)."""

    name = "json"

    def info(self, cfg):
        return human36m_info(self.name, joint_set="h36m17", keypoints=("gt",),
                             distort_by_default=False)

    def source_files(self, cfg, subjects) -> list:
        root = Path(cfg.DATASET.root)
        files = []
        for s in subjects:
            files += [annotation_path(root, s, part) for part in ("data", "camera", "joint_3d")]
            smpl = [annotation_path(root, s, kind) for kind in SMPL_FILE_KINDS]
            files += [p for p in smpl if p.is_file()][:1]
        return [f for f in files if f.is_file()]

    def required_files(self, cfg, subjects) -> list:
        """(path, how to get it) of every file ``read`` needs (missing ones are reported at
        once, before anything is read); a subject's SMPL file under either of its names."""
        root = Path(cfg.DATASET.root)
        out = [(annotation_path(root, s, part), HOW_TO_GET_JSON)
               for s in subjects for part in ("data", "camera", "joint_3d")]
        for s in subjects:
            smpl = [annotation_path(root, s, kind) for kind in SMPL_FILE_KINDS]
            out.append((next((p for p in smpl if p.is_file()), smpl[0]), HOW_TO_GET_JSON))
        return out

    def read(self, cfg, subjects):
        return read_h36m_json(cfg.DATASET.root, subjects=subjects)
