"""Human3.6M in the VideoPose3D / SemGCN / GraphSH ``.npz`` layout.

Files under ``<root>/`` (``np.savez_compressed``, dicts stored as 0-d object arrays):

* ``data_3d_h36m.npz``: ``positions_3d[S][action]`` float32 (N, 32, 3), world, **metres**
  (17- and 16-joint arrays are accepted too).
* ``data_2d_h36m_<keypoints>.npz``: ``positions_2d[S][action]`` = list of one (N', J, 2) pixel
  array per camera, in the order of the published intrinsics (= cam_idx 1..4); ``metadata``
  {num_joints, keypoints_symmetry} (+ ``layout_name`` 'h36m' for detections). Detections can be
  longer than the mocap and are trimmed to its first N frames.

Action keys ('Directions', 'Directions 1', 'Eating 2', 'TakingPhoto 1', ...) map to
(action_idx, subaction_idx) through Human3.6M's own table (:mod:`h36m_sequences`, from the
dataset's metadata.xml; no sorting rule reproduces it), and the writer names sequences by it, so
S9 (action 5, sub-action 2) is 'Greeting' in every file, as in the real ones.

**32 joints.** ``positions_3d`` holds the 32 mocap joints, as the real file (VideoPose3D's and
GraphSH's ``Human36mDataset`` index the 17 kept joints out of 32). A 17-joint corpus is written
with the 15 others filled the way the real file has them: 11 repeats the hip, 16 and 24 the
thorax (32-index 13), 20/28 the wrists and 23/31 the hand tips; toes, hand tips and thumbs are
placed along the foot and forearm (:func:`expand_17_to_32`). They are never read as targets: every
reader reduces to the 17 (or 16) kept joints. 16- and 17-joint 3D files (older writers) are read
too.

**Extra keys** (ours; the public files lack them, the reader works without them). The writer adds
them to ``data_3d_h36m.npz`` so that JSON -> npz -> JSON is exact:
``positions_3d_mm`` (world mm in the corpus' own dtype, preferred over ``positions_3d`` x 1000),
``frame_idx``, ``smpl_params`` ({pose, shape, trans, valid} per sequence that has SMPL),
``sequence_index`` (action key -> (action_idx, subaction_idx), overriding the table),
``camera_frames`` ({cam_idx: bool (N,)} where a camera lacks images of some frames) and
``cameras`` (full calibration incl. resolution, overriding the published one), each indexed
``[S][action]`` (cameras: ``[S][cam_idx]``). Pass ``extras=False`` for the public layout only.

Longer than most modules on purpose: one format, one module (reader, writer, plug-in), so
the layout's rules are read in one place.
"""
from __future__ import annotations

import logging
import pickle
import re
import zipfile
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from lib.data.corpus import PoseCorpus, Sequence, SmplParams
from lib.data.errors import DataFormatError, HOW_TO_SYNTHESIZE, missing_file_error
from lib.data.formats.h36m_sequences import index_names, npz_name
from lib.fileio import atomic_write
from lib.geometry.camera import Camera, h36m_cameras
from lib.geometry.h36m_calibration import EXTRINSICS
from lib.geometry.skeleton import (H36M17, H36M32, KEEP_32_TO_17, LIFTING_JOINT_SETS,
                                   SKELETONS, convert_joints, facing_direction)

LOG = logging.getLogger("pose.data.h36m_npz")

FILE_3D = "data_3d_h36m.npz"
DETECTION_KEYPOINTS = ("cpn_ft_h36m_dbb", "detectron_ft_h36m")
EXTRA_KEYS = ("positions_3d_mm", "frame_idx", "smpl_params", "sequence_index", "camera_frames",
              "cameras")
JOINT_SET_2D = LIFTING_JOINT_SETS     # joints of the 2D file -> joint set
SKELETONS_BY_COUNT = {s.num_joints: name for name, s in SKELETONS.items()}

_GRAPHSH_GT = ("the GraphSH README's GT setup: `cd data && gdown "
               "https://drive.google.com/uc?id=1Ac-gUXAg-6UiwThJVaw6yw2151Bot3L1 && python "
               "prepare_data_h36m.py --from-archive h36m.zip` (writes data_3d_h36m.npz and "
               "data_2d_h36m_gt.npz)")
HOW_TO_GET_3D = (f"{_GRAPHSH_GT}; or convert COCO-style JSON with `python data/convert.py "
                 f"json2npz --src <json root> --dst <dir>`; or {HOW_TO_SYNTHESIZE}")


def file_2d(keypoints: str) -> str:
    return f"data_2d_h36m_{keypoints}.npz"


def how_to_get_2d(keypoints: str) -> str:
    if keypoints in DETECTION_KEYPOINTS:
        return (f"download it as the GraphSH README says: `cd data && wget "
                f"https://dl.fbaipublicfiles.com/video-pose-3d/{file_2d(keypoints)}`")
    if keypoints == "gt":
        return (f"{_GRAPHSH_GT}; or `python data/convert.py json2npz` from COCO-style JSON; or "
                f"{HOW_TO_SYNTHESIZE}")
    known = ", ".join(("gt",) + DETECTION_KEYPOINTS)
    return f"no known source for 2D keypoints '{keypoints}' (known: {known})"


# ----------------------------------------------------------------------------- npz access
class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles what the VideoPose3D files hold (dicts and lists of numpy arrays, strings,
    numbers) and refuses every other global, so an npz from a stranger cannot run code."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED or (module == "numpy.dtypes" and name.endswith("DType")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only numpy arrays, "
                                     f"dicts, lists, strings and numbers may be in the file")


def _read_member(fp):
    """One .npy member: plain arrays as numpy reads them, object arrays via the safe unpickler."""
    version = np.lib.format.read_magic(fp)
    _, _, dtype = (np.lib.format.read_array_header_1_0(fp) if version == (1, 0)
                   else np.lib.format.read_array_header_2_0(fp))
    if dtype.hasobject:
        return _ArrayOnlyUnpickler(fp).load()
    fp.seek(0)
    return np.lib.format.read_array(fp, allow_pickle=False)


def _load_npz(path: Path, how_to_get: str) -> dict:
    """{key: value} of an npz, 0-d object arrays unwrapped; readable errors for bad files."""
    if not path.is_file():
        raise missing_file_error(path, how_to_get)
    if not zipfile.is_zipfile(path):   # never hand a non-npz file to the unpickler
        raise DataFormatError(path, None, "not a readable .npz file (not a zip archive); "
                                          "re-download or regenerate it")
    try:
        out = {}
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                if not member.endswith(".npy"):
                    continue
                with zf.open(member) as fp:
                    value = _read_member(fp)
                out[member[:-4]] = (value.item() if isinstance(value, np.ndarray)
                                    and value.dtype == object and value.ndim == 0 else value)
        return out
    except pickle.UnpicklingError as exc:
        raise DataFormatError(path, None, f"{exc}; this is not a file this project or "
                                          f"VideoPose3D's preparation writes") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DataFormatError(path, None, f"not a readable .npz file ({exc}); "
                                          f"re-download or regenerate it") from None


def _dict_entry(container: dict, key: str, path: Path, what: str = "") -> dict:
    if key not in container:
        raise DataFormatError(path, key, f"missing{what}")
    value = container[key]
    if not isinstance(value, dict):
        raise DataFormatError(path, key, f"expected a dict, got {type(value).__name__}")
    return value


_SUBJECT_KEY = re.compile(r"S(\d+)$")


def _parse_subject(key, path: Path, field: str) -> int:
    match = _SUBJECT_KEY.match(str(key))
    if not match:
        raise DataFormatError(path, f"{field}/{key}", "unknown subject key; expected 'S<number>'")
    return int(match.group(1))


def sequence_keys(subject: int, action_keys) -> Dict[str, tuple]:
    """action key -> (action_idx, subaction_idx) by Human3.6M's table (module docstring)."""
    return index_names(subject, action_keys)


def action_key(subject: int, action_idx: int, subaction_idx: int) -> str:
    """The writer's key: the real file's name of the sequence ('Greeting' for S9 5/2)."""
    return npz_name(subject, action_idx, subaction_idx)


# 32-joint layout of the real file: joints that repeat another one (32-index -> source).
DUPLICATES_32 = {11: 0, 16: 13, 24: 13, 20: 19, 28: 27, 23: 22, 31: 30}
# Offsets (mm) of the filled extremities: along the foot (forward) and along the forearm.
TOE_MM, TOE_SITE_MM, TOE_DROP_MM = 130.0, 180.0, 50.0
THUMB_MM, HAND_SITE_MM = 50.0, 90.0


def expand_17_to_32(joints17: np.ndarray) -> np.ndarray:
    """(N, 17, 3) world mm (Z up) -> (N, 32, 3): the 17 at their 32-indices, the rest filled.

    ``expand_17_to_32(x)[:, KEEP_32_TO_17]`` is ``x`` exactly; the others follow the real
    file's conventions (module docstring), computed in float64 and cast to ``x``'s dtype.
    """
    x = np.asarray(joints17)
    j = x.astype(np.float64)
    n17 = {name: j[:, i] for i, name in enumerate(H36M17.joint_names)}
    out = np.zeros((len(j), H36M32.num_joints, 3))
    out[:, list(KEEP_32_TO_17)] = j
    forward = facing_direction(j)
    down = np.array([0.0, 0.0, -TOE_DROP_MM])
    for ankle, toe, site in (("R_Ankle", 4, 5), ("L_Ankle", 9, 10)):
        out[:, toe] = n17[ankle] + TOE_MM * forward + down
        out[:, site] = n17[ankle] + TOE_SITE_MM * forward + down
    for elbow, wrist, thumb, site in (("L_Elbow", "L_Wrist", 21, 22),
                                      ("R_Elbow", "R_Wrist", 29, 30)):
        d = n17[wrist] - n17[elbow]
        d /= np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-9)
        out[:, thumb] = n17[wrist] + THUMB_MM * d
        out[:, site] = n17[wrist] + HAND_SITE_MM * d
    for dst, src in DUPLICATES_32.items():
        out[:, dst] = out[:, src]
    out = out.astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64)
    out[:, list(KEEP_32_TO_17)] = x          # the kept joints bit for bit
    return out


def joints_32(seq: Sequence) -> np.ndarray:
    """The sequence's world joints in the 32-joint layout of ``positions_3d``."""
    if seq.joint_set == "h36m32":
        return np.asarray(seq.joints_world)
    if seq.joint_set == "h36m17":
        return expand_17_to_32(seq.joints_world)
    raise ValueError(f"sequence {seq.key} has 3D joints '{seq.joint_set}'; data_3d_h36m.npz "
                     f"holds the 32 mocap joints, which are made from 32 or 17 joints only")


def _camera_from_dict(d: dict) -> Camera:
    return Camera(R=np.asarray(d["R"]), t=np.asarray(d["t"]), f=np.asarray(d["f"]),
                  c=np.asarray(d["c"]), k=np.asarray(d["k"]), p=np.asarray(d["p"]),
                  width=int(d["width"]), height=int(d["height"]), name=str(d["name"]))


def _camera_to_dict(cam: Camera) -> dict:
    return {"R": np.asarray(cam.R), "t": np.asarray(cam.t), "f": np.asarray(cam.f),
            "c": np.asarray(cam.c), "k": np.asarray(cam.k), "p": np.asarray(cam.p),
            "width": int(cam.width), "height": int(cam.height), "name": cam.name}


# ----------------------------------------------------------------------------- reading
def _check_array(arr, path: Path, key: str, tail: tuple, allowed_joints) -> np.ndarray:
    """An (N, J, tail...) float array with J in allowed_joints and finite values."""
    if not isinstance(arr, np.ndarray) or arr.ndim != 2 + len(tail) or arr.shape[2:] != tail \
            or arr.shape[1] not in allowed_joints:
        raise DataFormatError(path, key, f"expected shape (N, J, {', '.join(map(str, tail))}) "
                                         f"with J in {sorted(allowed_joints)}, got "
                                         f"{getattr(arr, 'shape', type(arr).__name__)}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise DataFormatError(path, key, f"expected floating-point values, got {arr.dtype}")
    if len(arr) == 0:
        raise DataFormatError(path, key, "has no frames (a zero-length sequence); drop the "
                                         "sequence from the file or re-create the file")
    bad = ~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)
    if bad.any():
        raise DataFormatError(path, key, f"contains NaN/inf in {int(bad.sum())} frames "
                                         f"(first: frame {int(np.argmax(bad))})")
    return arr


def _subject_cameras(subject: int, subj_key: str, extras: dict, path: Path) -> Dict[int, Camera]:
    if "cameras" in extras:
        cams = extras["cameras"].get(subj_key)
        if cams is None:
            raise DataFormatError(path, f"cameras/{subj_key}", "missing")
        return {int(c): _camera_from_dict(d) for c, d in sorted(cams.items())}
    if subject not in EXTRINSICS:
        raise DataFormatError(path, f"positions_3d/{subj_key}",
                              f"unknown subject: no published Human3.6M calibration for "
                              f"S{subject} (known: {', '.join(f'S{s}' for s in EXTRINSICS)}) "
                              f"and the file has no 'cameras' entry")
    return h36m_cameras(subject)


def _sequence_index(subj_key: str, actions, extras: dict, path: Path) -> Dict[str, tuple]:
    if "sequence_index" in extras and subj_key in extras["sequence_index"]:
        index = {k: tuple(int(v) for v in extras["sequence_index"][subj_key][k])
                 for k in actions if k in extras["sequence_index"][subj_key]}
        missing = [k for k in actions if k not in index]
        if missing:
            raise DataFormatError(path, f"sequence_index/{subj_key}/{missing[0]}", "missing")
        return index
    try:
        return sequence_keys(int(subj_key[1:]), actions)
    except ValueError as exc:
        raise DataFormatError(path, f"positions_3d/{subj_key}", str(exc)) from None


def _read_3d(root: Path, subjects) -> tuple:
    path = root / FILE_3D
    content = _load_npz(path, HOW_TO_GET_3D)
    positions = _dict_entry(content, "positions_3d", path)
    extras = {k: content[k] for k in EXTRA_KEYS if k in content}
    by_subject = {_parse_subject(k, path, "positions_3d"): k for k in positions}
    if subjects is not None:
        unknown = sorted(set(int(s) for s in subjects) - set(by_subject))
        if unknown:
            raise DataFormatError(path, f"positions_3d/S{unknown[0]}",
                                  f"unknown subject: not in the file (it has "
                                  f"{', '.join(by_subject.values())})")
        wanted = {int(s) for s in subjects}
        by_subject = {s: k for s, k in by_subject.items() if s in wanted}

    sequences, cameras, names, num_joints = [], {}, {}, None
    for subject, subj_key in sorted(by_subject.items()):
        actions = positions[subj_key]
        if not isinstance(actions, dict):
            raise DataFormatError(path, f"positions_3d/{subj_key}", "expected a dict of actions")
        cameras[subject] = _subject_cameras(subject, subj_key, extras, path)
        index = _sequence_index(subj_key, list(actions), extras, path)
        for act, arr in actions.items():
            key = f"positions_3d/{subj_key}/{act}"
            arr = _check_array(arr, path, key, (3,), (16, 17, 32))
            if num_joints is None:
                num_joints = arr.shape[1]
            elif arr.shape[1] != num_joints:
                raise DataFormatError(path, key, f"joint counts disagree: {arr.shape[1]} joints "
                                                 f"here, {num_joints} in earlier sequences")
            joints = _extra(extras, "positions_3d_mm", subj_key, act)
            if joints is None:
                joints = arr * arr.dtype.type(1000)
            elif joints.shape != arr.shape:
                raise DataFormatError(path, f"positions_3d_mm/{subj_key}/{act}",
                                      f"shape {joints.shape} differs from positions_3d {arr.shape}")
            else:
                _check_array(joints, path, f"positions_3d_mm/{subj_key}/{act}", (3,),
                             (arr.shape[1],))
            frame_idx = _extra(extras, "frame_idx", subj_key, act)
            smpl = _extra(extras, "smpl_params", subj_key, act)
            camera_frames = _extra(extras, "camera_frames", subj_key, act)
            action_idx, subaction_idx = index[act]
            if (subject, action_idx, subaction_idx) in names:
                raise DataFormatError(path, key, f"same sequence (action {action_idx}, "
                                                 f"sub-action {subaction_idx}) as "
                                                 f"'{names[subject, action_idx, subaction_idx]}'")
            names[subject, action_idx, subaction_idx] = act
            try:
                if smpl is not None:
                    smpl = SmplParams(pose=smpl["pose"], shape=smpl["shape"],
                                      trans=smpl["trans"], valid=smpl["valid"])
                sequences.append(Sequence(subject=subject, action_idx=action_idx,
                                          subaction_idx=subaction_idx, joints_world=joints,
                                          joint_set=SKELETONS_BY_COUNT[arr.shape[1]],
                                          frame_idx=frame_idx, smpl=smpl,
                                          camera_frames=camera_frames))
            except ValueError as exc:
                raise DataFormatError(path, key, str(exc)) from None
    return sequences, cameras, by_subject, names


def _extra(extras: dict, name: str, subj_key: str, act: str):
    return extras.get(name, {}).get(subj_key, {}).get(act)


def _attach_2d(sequences: List[Sequence], cameras: dict, subject_keys: dict, names: dict,
               root: Path, keypoints: str) -> None:
    """Fill keypoints_2d of every sequence from the 2D file, trimmed to the mocap length."""
    path = root / file_2d(keypoints)
    content = _load_npz(path, how_to_get_2d(keypoints))
    positions = _dict_entry(content, "positions_2d", path)
    meta_joints = content.get("metadata", {}).get("num_joints") \
        if isinstance(content.get("metadata"), dict) else None

    extra_subjects = sorted(str(k) for k in positions if k not in set(subject_keys.values()))
    if extra_subjects:
        LOG.info("%s: ignoring subjects %s (not in %s or not selected)", path.name,
                 extra_subjects, FILE_3D)

    by_subject: Dict[int, list] = {}
    for seq in sequences:
        by_subject.setdefault(seq.subject, []).append(seq)
    num_joints, trimmed, ignored = meta_joints, [], 0
    for subject, seqs in by_subject.items():
        subj_key = subject_keys[subject]
        actions_2d = positions.get(subj_key)
        if not isinstance(actions_2d, dict):
            raise DataFormatError(path, f"positions_2d/{subj_key}",
                                  f"missing subject present in {FILE_3D}")
        subject_names = {n for (subj, _, _), n in names.items() if subj == subject}
        for name in sorted(set(actions_2d) - subject_names):
            ignored += sum(len(a) for a in actions_2d[name])
            LOG.info("%s: ignoring %s '%s' (not in %s)", path.name, subj_key, name, FILE_3D)
        cams = sorted(cameras[subject])
        for seq in seqs:
            act = names[seq.key]
            key = f"positions_2d/{subj_key}/{act}"
            if act not in actions_2d:
                raise DataFormatError(path, key, f"missing action present in {FILE_3D}")
            views = actions_2d[act]
            if not isinstance(views, (list, tuple)) and not (
                    isinstance(views, np.ndarray) and views.ndim in (1, 4)):
                raise DataFormatError(path, key, "expected a list of one array per camera")
            if len(views) != len(cams):
                raise DataFormatError(path, key, f"{len(views)} camera views, but subject "
                                                 f"{subj_key} has {len(cams)} cameras")
            kps = {}
            for cam, view in zip(cams, views):
                view = _check_array(view, path, f"{key}[{cam - 1}]", (2,), JOINT_SET_2D)
                if num_joints is None:
                    num_joints = view.shape[1]
                elif view.shape[1] != num_joints:
                    raise DataFormatError(path, f"{key}[{cam - 1}]",
                                          f"joint counts disagree: {view.shape[1]} joints here, "
                                          f"{num_joints} in the metadata or earlier sequences")
                if len(view) < seq.num_frames:
                    raise DataFormatError(path, f"{key}[{cam - 1}]",
                                          f"{len(view)} frames, fewer than the {seq.num_frames} "
                                          f"of the mocap in {FILE_3D}")
                if len(view) > seq.num_frames:
                    trimmed.append((subj_key, act, cam, len(view) - seq.num_frames))
                kps[cam] = view[:seq.num_frames]
            seq.keypoints_2d = kps
            seq.keypoints_2d_joint_set = JOINT_SET_2D[num_joints]
    if trimmed:
        LOG.info("%s: trimmed %d frames in %d camera views to the mocap length (largest: %s)",
                 path.name, sum(t[-1] for t in trimmed), len(trimmed),
                 max(trimmed, key=lambda t: t[-1]))
    if ignored:
        LOG.info("%s: %d frames of sequences absent from %s ignored", path.name, ignored,
                 FILE_3D)


def read_h36m_npz(root, keypoints: Optional[str] = "gt", subjects=None) -> PoseCorpus:
    """The 3D file plus the 2D file of ``keypoints`` (None: 3D only) as a PoseCorpus.

    Joints keep the file's dtype (float32 for the public files). Cameras are the published
    calibration unless the file carries our ``cameras`` extra.
    """
    root = Path(root)
    sequences, cameras, subject_keys, names = _read_3d(root, subjects)
    if keypoints is not None:
        _attach_2d(sequences, cameras, subject_keys, names, root, keypoints)
    sequences.sort(key=lambda s: s.key)
    return PoseCorpus(sequences, cameras, source=f"h36m-npz:{root}:{keypoints}")


# ----------------------------------------------------------------------------- writing
def save_npz(path: Path, **arrays) -> None:
    """Like ``np.savez_compressed``, written atomically (:func:`lib.fileio.atomic_write`).

    Dicts and lists are stored as 0-d object arrays, as VideoPose3D's files do, but pickled
    with :class:`lib.body.portable_pickle.PortablePickler`: the file opens with numpy 1.x
    (the originals' environments) as well as 2.x.
    """
    from lib.body.portable_pickle import dumps

    def write(tmp):
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            for key, value in arrays.items():
                arr = _object_array(value) if isinstance(value, (dict, list, tuple)) \
                    else np.asanyarray(value)
                with zf.open(f"{key}.npy", "w", force_zip64=True) as fp:
                    if arr.dtype.hasobject:
                        np.lib.format.write_array_header_1_0(
                            fp, np.lib.format.header_data_from_array_1_0(arr))
                        fp.write(dumps(arr, protocol=3))
                    else:
                        np.lib.format.write_array(fp, arr, allow_pickle=False)

    atomic_write(path, write)


def _object_array(value) -> np.ndarray:
    arr = np.empty((), dtype=object)
    arr[()] = value
    return arr


def symmetry(joint_set: str) -> list:
    """[left joints, right joints] as the public metadata stores them."""
    skel = SKELETONS[joint_set]
    return [list(skel.joints_left), list(skel.joints_right)]


def _ordered_cameras(corpus: PoseCorpus, subject: int) -> Dict[int, Camera]:
    cams = corpus.cameras.get(subject)
    if not cams:
        raise ValueError(f"corpus '{corpus.source}' has no cameras for subject S{subject}")
    if sorted(cams) != list(range(1, len(cams) + 1)):
        raise ValueError(f"S{subject}: camera indices must be 1..{len(cams)} (the npz stores "
                         f"cameras as a list in that order), got {sorted(cams)}")
    return dict(sorted(cams.items()))


def project_views(joints_world: np.ndarray, joint_set: str, cameras: Dict[int, Camera],
                  target: str) -> list:
    """World joints (N, J, 3) mm -> one float32 (N, J', 2) pixel array per camera, in the
    ``target`` joint set, projected with lens distortion (as the public GT file)."""
    joints = convert_joints(np.asarray(joints_world), joint_set, target)
    return [cam.project(cam.world_to_camera(joints), distort=True).astype(np.float32)
            for cam in cameras.values()]


def keypoints_2d_for(seq: Sequence, cameras: Dict[int, Camera], joint_set: str) -> list:
    """One (N, J, 2) array per camera: the sequence's own 2D if it has them, else its world
    joints projected by :func:`project_views`."""
    if seq.keypoints_2d:
        if sorted(seq.keypoints_2d) != sorted(cameras):
            raise ValueError(f"sequence {seq.key} has 2D keypoints for cameras "
                             f"{sorted(seq.keypoints_2d)}, the subject has {sorted(cameras)}")
        return [convert_joints(seq.keypoints_2d[c], seq.keypoints_2d_joint_set, joint_set)
                for c in cameras]
    return project_views(seq.joints_world, seq.joint_set, cameras, joint_set)


def metadata_2d(keypoints: str, joint_set: str) -> dict:
    """The ``metadata`` entry of a 2D file; detections also name their layout."""
    meta = {"num_joints": SKELETONS[joint_set].num_joints,
            "keypoints_symmetry": symmetry(joint_set)}
    return meta if keypoints == "gt" else {"layout_name": "h36m", **meta}


def write_h36m_npz(corpus: PoseCorpus, root, keypoints: str = "gt", joints_2d: int = 16,
                   extras: bool = True) -> List[Path]:
    """Write data_3d_h36m.npz and data_2d_h36m_<keypoints>.npz (see the module docstring).

    ``joints_2d`` is 16 (SemGCN/GraphSH GT) or 17 (VideoPose3D, detections).
    """
    if joints_2d not in JOINT_SET_2D:
        raise ValueError(f"joints_2d must be 16 or 17, got {joints_2d}")
    target = JOINT_SET_2D[joints_2d]
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    positions_3d, positions_2d = {}, {}
    extra = {k: {} for k in EXTRA_KEYS}
    for subject in corpus.subjects:
        subj_key = f"S{subject}"
        cameras = _ordered_cameras(corpus, subject)
        seqs = sorted((s for s in corpus.sequences if s.subject == subject), key=lambda s: s.key)
        p3, p2 = positions_3d.setdefault(subj_key, {}), positions_2d.setdefault(subj_key, {})
        for seq in seqs:
            act = action_key(subject, seq.action_idx, seq.subaction_idx)
            if act in p3:
                raise ValueError(f"corpus holds two sequences with key {seq.key}")
            j32 = joints_32(seq)
            p3[act] = (j32.astype(np.float64) / 1000).astype(np.float32)
            p2[act] = keypoints_2d_for(seq, cameras, target)
            extra["positions_3d_mm"].setdefault(subj_key, {})[act] = j32
            extra["frame_idx"].setdefault(subj_key, {})[act] = np.asarray(seq.frame_idx)
            extra["sequence_index"].setdefault(subj_key, {})[act] = seq.key[1:]
            if seq.camera_frames is not None:
                extra["camera_frames"].setdefault(subj_key, {})[act] = {
                    c: np.asarray(m, bool) for c, m in seq.camera_frames.items()}
            if seq.smpl is not None:
                extra["smpl_params"].setdefault(subj_key, {})[act] = {
                    "pose": seq.smpl.pose, "shape": seq.smpl.shape, "trans": seq.smpl.trans,
                    "valid": seq.smpl.valid}
        extra["cameras"][subj_key] = {c: _camera_to_dict(cam) for c, cam in cameras.items()}

    path_3d, path_2d = root / FILE_3D, root / file_2d(keypoints)
    extra = {k: v for k, v in extra.items() if v}
    save_npz(path_3d, positions_3d=positions_3d, **(extra if extras else {}))
    save_npz(path_2d, positions_2d=positions_2d, metadata=metadata_2d(keypoints, target))
    LOG.info("wrote %s and %s (%d sequences, %d-joint 2D)", path_3d, path_2d,
             len(corpus.sequences), joints_2d)
    return [path_3d, path_2d]


# ----------------------------------------------------------------------------- plug-in
from lib.data.formats import DatasetFormat, register_format  # noqa: E402
from lib.data.formats.human36m import human36m_info  # noqa: E402


@register_format
class H36MNpzFormat(DatasetFormat):
    """``DATASET.format: npz``: the 3D file plus the 2D file named by DATASET.keypoints."""

    name = "npz"

    def info(self, cfg):
        return human36m_info(self.name, joint_set="h36m32",
                             keypoints=("gt",) + DETECTION_KEYPOINTS, distort_by_default=True)

    def source_files(self, cfg, subjects) -> list:
        root = Path(cfg.DATASET.root)
        files = [root / FILE_3D, root / file_2d(cfg.DATASET.keypoints)]
        return [f for f in files if f.is_file()]

    def required_files(self, cfg, subjects) -> list:
        """(path, how to get it) of every file ``read`` needs."""
        root = Path(cfg.DATASET.root)
        return [(root / FILE_3D, HOW_TO_GET_3D),
                (root / file_2d(cfg.DATASET.keypoints), how_to_get_2d(cfg.DATASET.keypoints))]

    def read(self, cfg, subjects):
        return read_h36m_npz(cfg.DATASET.root, keypoints=cfg.DATASET.keypoints,
                             subjects=subjects)
