"""Write the synthetic Human3.6M stand-in (the framework's embedded default dataset).

    python data/synthesize.py [--out data/Synthetic] [--seed 0] [--size default|large]
                              [--frames N] [--force]

Layout (the real one, under ``--out``)::

    Human36M/annotations/Human36M_subject{S}_{data,camera,joint_3d,smpl_param}.json
    Human36M/J_regressor_h36m_correct.npy
    data_3d_h36m.npz   data_2d_h36m_gt.npz   data_2d_h36m_cpn_ft_h36m_dbb.npz
    smpl/basicModel_{neutral,f,m}_lbs_10_207_0_v1.0.0.pkl
    README.md   manifest.json

Subjects S1, S5-S9, S11 x 15 actions x 2 sub-actions, seen by the four real H36M cameras at
50 fps. Per frame: H36M-17 joints from the forward kinematics of the subject's rigid skeleton
(:mod:`.skeleton`), SMPL parameters fitted to them (the mesh agrees with the joints to a few
centimetres, as real fits do), exact 2D (the GT file) and CPN-like detections (the CPN file).
What the motion and the fit model: docs/synthetic.md.
Everything derives from ``--seed``; the same arguments give the same bytes (manifest aside).
The set is built in a temporary folder and renamed into place, so an interrupted run leaves no
half dataset; a complete set with the same parameters is left alone.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Dict, Iterable, NamedTuple, Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[3]    # the repository root

from lib.data.corpus import PoseCorpus, Sequence, SmplParams
from lib.data.formats.h36m_npz import write_h36m_npz
from lib.data.formats.h36m_json import write_h36m_json
from lib.data.synthetic import motion, skeleton
from lib.data.synthetic.detector_noise import DetectorNoise
from lib.body.smpl import BodyModel
from lib.body.synthetic_model import (
    build_h36m_regressor, build_synthetic_body_model, write_synthetic_body_model)
from lib.errors import PoseError
from lib.geometry.camera import h36m_cameras
from lib.geometry.skeleton import ACTION_IDX, ACTIONS, ALL_SUBJECTS, TEST_SUBJECTS, TRAIN_SUBJECTS
from lib.progress import progress

VERSION = 9                 # bump when the generated data change
DEFAULT_OUT = ROOT / "data" / "Synthetic"
FRAMES_PER_SEQUENCE = {"default": 100, "large": 1000}
SUBACTIONS = (1, 2)
CPN_KEYPOINTS = "cpn_ft_h36m_dbb"
MANIFEST = "manifest.json"
# Purposes mixed into the per-sequence seeds, so each random stream is independent.
_MOTION, _FIT, _NOISE, _EXTRA, _SUBJECT, _STANCE, _GROUND = 1, 2, 3, 4, 5, 6, 7


class ClipMotion(NamedTuple):
    """One generated clip, world frame: H36M-17 joints (N, 17, 3) and the heel / toe / seat
    contact points (N, 6, 3), mm; the SMPL pose (N, 72) and translation (N, 3, metres) of the
    fitted body; the height of the clip's floor above the capture's floor (mm)."""
    joints: np.ndarray
    contacts: np.ndarray
    pose: np.ndarray
    trans: np.ndarray
    floor_mm: float


class SynthesisError(PoseError, ValueError):
    """The generator cannot do what was asked (existing folder, impossible placement)."""


# ----------------------------------------------------------------------------- randomness
def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *[int(k) for k in keys]])


def subject_style(seed: int, subject: int) -> motion.Style:
    return motion.Style.sample(_rng(seed, _SUBJECT, subject, 1))


def subject_design(seed: int, subject: int) -> np.ndarray:
    """The subject's row of its split's design (skeleton.subject_design): the training subjects
    together span the size and proportion ranges, and so do the test subjects. It depends on
    the seed and the subject only, not on which subjects a run generates."""
    for k, group in enumerate((TRAIN_SUBJECTS, TEST_SUBJECTS)):
        if subject in group:
            design = skeleton.subject_design(_rng(seed, _SUBJECT, 0, k), len(group))
            return design[list(group).index(subject)]
    raise SynthesisError(f"subject {subject} is in no split")


# ----------------------------------------------------------------------------- one sequence
class SequenceSynthesizer:
    """Turns (subject, action, sub-action) into a :class:`Sequence` for one body model.

    Joints: forward kinematics of the subject's rigid skeleton (:mod:`.skeleton`). SMPL
    parameters: a fit to them (same joint rotations, betas fitted to the bone lengths once per
    subject, translation putting the fitted body on the skeleton).
    """

    def __init__(self, body: BodyModel, model: dict, regressor: np.ndarray, seed: int,
                 invalid_fit_rate: float = 0.005, margin_px: float = 10.0, max_tries: int = 8):
        self.body = body
        self.model = model
        self.regressor = np.asarray(regressor, np.float64)
        self.seed = seed
        self.invalid_fit_rate = invalid_fit_rate
        self.margin_px = margin_px
        self.max_tries = max_tries
        self._subjects = {}

    def subject(self, subject: int) -> dict:
        """Skeleton, fitted shape, style, cameras and capture centre of one subject (cached)."""
        if subject not in self._subjects:
            skel = skeleton.sample_skeleton(_rng(self.seed, _SUBJECT, subject, 2),
                                            subject_design(self.seed, subject))
            shape, offset = skeleton.fit_body(self.model["v_template"], self.model["shapedirs"],
                                              self.regressor, skel.rest_points())
            verts, rest_joints = self.body.forward(np.zeros((1, 72)), shape[None], None)
            root = rest_joints[0, 0].double().numpy()
            pelvis = (self.regressor[:1] @ verts[0].double().numpy())[0]
            cams = h36m_cameras(subject)
            self._subjects[subject] = {
                "shape": shape, "skeleton": skel, "style": subject_style(self.seed, subject),
                "rest": motion.RestSkeleton(skel.smpl_rest_joints()),
                "rest_root": root, "rest_pelvis_offset": pelvis - root + offset,
                "cameras": cams, "centre_xy": motion.capture_centre(cams)[:2] / 1000.0}
        return self._subjects[subject]

    def motion(self, subject: int, action: str, subaction: int, num_frames: int) -> "ClipMotion":
        """Joints, contact points, SMPL pose and translation, and the floor of one clip."""
        info = self.subject(subject)
        action_idx = ACTION_IDX[action]
        ground = _rng(self.seed, _GROUND, subject, action_idx, subaction).uniform(
            *motion.GROUND_HEIGHT_M)                  # the clip's floor, metres
        for attempt in range(self.max_tries):
            rng = _rng(self.seed, _MOTION, subject, action_idx, subaction, attempt)
            style = info["style"].for_clip(
                _rng(self.seed, _STANCE, subject, action_idx, subaction, attempt))
            tracks = motion.action_tracks(action, num_frames, info["rest"], rng, style)
            tracks.position_xy = tracks.position_xy * 0.8 ** attempt   # tighter on retries
            R = motion.compose_rotations(tracks, info["rest"])
            points = skeleton.forward_kinematics(info["skeleton"], R)
            root = motion.root_position(points, info["centre_xy"] + tracks.position_xy,
                                        tracks.seated, skeleton.FOOT_POINTS,
                                        skeleton.SEAT_POINTS, chair_height=tracks.chair)
            floor = ground * 0.8 ** attempt                  # nearer the capture's on retries
            root[:, 2] += floor
            placed = (points + root[:, None]) * 1000.0
            if motion.joints_inside_images(placed[:, :17], info["cameras"], self.margin_px):
                break
        else:
            raise SynthesisError(f"S{subject} {action} {subaction}: body leaves a camera image "
                                 f"after {self.max_tries} placements; lower margin_px")
        pose = motion.matrix_to_axis_angle(R).reshape(num_frames, 72)
        trans = skeleton.smpl_translation(root, R[:, 0], info["rest_root"],
                                          info["rest_pelvis_offset"])
        # float32 like the body model and the files
        return ClipMotion(placed[:, :17], placed[:, 17:], pose.astype(np.float32).astype(np.float64),
                          trans.astype(np.float32).astype(np.float64), floor * 1000.0)

    def make(self, subject: int, action: str, subaction: int, num_frames: int) -> Sequence:
        info = self.subject(subject)
        action_idx = ACTION_IDX[action]
        clip = self.motion(subject, action, subaction, num_frames)
        joints_mm, pose, trans = clip.joints, clip.pose, clip.trans
        shape = np.repeat(info["shape"][None], num_frames, 0)
        valid = _rng(self.seed, _FIT, subject, action_idx, subaction).random(num_frames) \
            >= self.invalid_fit_rate
        smpl = SmplParams(pose=pose, shape=shape, trans=trans, valid=valid)
        return Sequence(subject=subject, action_idx=action_idx, subaction_idx=subaction,
                        joints_world=joints_mm, joint_set="h36m17", smpl=smpl)


def detections_for(seq: Sequence, cameras, seed: int, noise: DetectorNoise,
                   longer_rate: float = 0.1, max_extra: int = 5) -> Dict[int, np.ndarray]:
    """CPN-like 17-joint detections per camera (pixels).

    Like the real CPN file, a few sequences (``longer_rate``) are 1..``max_extra`` frames
    longer than the mocap (the last pose held), which the readers must trim.
    """
    key = (seq.subject, seq.action_idx, seq.subaction_idx)
    extra_rng = _rng(seed, _EXTRA, *key)
    extra = int(extra_rng.integers(1, max_extra + 1)) if extra_rng.random() < longer_rate else 0
    joints = seq.joints_world
    if extra:
        joints = np.concatenate([joints, np.repeat(joints[-1:], extra, 0)], 0)
    out = {}
    for cam_idx, cam in cameras.items():
        uv = cam.project(cam.world_to_camera(joints), distort=True)
        out[cam_idx] = noise.apply(uv, _rng(seed, _NOISE, *key, cam_idx)).astype(np.float32)
    return out


# ----------------------------------------------------------------------------- whole set
def _parameters(seed, frames_per_sequence, subjects, actions, subactions, invalid_fit_rate,
                longer_2d_rate, margin_px) -> dict:
    return {"version": VERSION, "seed": int(seed), "frames_per_sequence": int(frames_per_sequence),
            "subjects": [int(s) for s in subjects], "actions": list(actions),
            "subactions": [int(s) for s in subactions],
            "invalid_fit_rate": float(invalid_fit_rate), "longer_2d_rate": float(longer_2d_rate),
            "margin_px": float(margin_px)}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(out_dir) -> Optional[dict]:
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def is_complete(out_dir, manifest: Optional[dict] = None, check_hashes: bool = False) -> bool:
    """Every file the manifest lists is present with its size (and hash, if asked)."""
    out_dir = Path(out_dir)
    manifest = manifest if manifest is not None else read_manifest(out_dir)
    if not manifest or "files" not in manifest:
        return False
    for rel, info in manifest["files"].items():
        path = out_dir / rel
        if not path.is_file() or path.stat().st_size != info["bytes"]:
            return False
        if check_hashes and _sha256(path) != info["sha256"]:
            return False
    return True


def _readme(params: dict, summary: dict) -> str:
    subjects = ", ".join(f"S{s}" for s in params["subjects"])
    return f"""# Synthetic Human3.6M (generated, not real data)

Written by `python data/synthesize.py` (version {params['version']}, seed {params['seed']}).
A stand-in for the licensed Human3.6M and SMPL downloads, in exactly their layouts, so that the
training and evaluation pipelines run with no download. Numbers obtained on it say nothing about
accuracy on the real dataset.

* Subjects {subjects}; {len(params['actions'])} actions x {len(params['subactions'])} sub-actions;
  {params['frames_per_sequence']} frames per sequence at 50 fps; {summary['num_sequences']}
  sequences, {summary['num_frames']} frames, seen by the four real H36M cameras (public
  calibration, with lens distortion).
* Motion: per-action joint-angle tracks (gaits with turns, chairs and the floor, crouching,
  gestures), joint limits enforced, feet on the floor, every joint inside every camera image.
  Joints: forward kinematics of a rigid skeleton per subject (rigid bones, proportions sampled
  within adult ranges); SMPL parameters: a fit to those joints (a few cm apart, like real fits).
* `smpl/`: a synthetic body model in SMPL's file format (NOT the SMPL model).
* `Human36M/annotations/`: COCO-style JSON (HGN / Pose2Mesh); joints in world mm. The H36M-17
  regressor (`Human36M/J_regressor_h36m_correct.npy`) applied to the fitted mesh gives joints
  near them, not on them.
  About {100 * params['invalid_fit_rate']:.1f}% of frames have no SMPL fit, as in the real files.
* `data_3d_h36m.npz`, `data_2d_h36m_gt.npz` (16 joints, exact projection),
  `data_2d_h36m_{CPN_KEYPOINTS}.npz` (17 joints, CPN-like detector noise; a few sequences are a
  few frames longer than the mocap, like the real file).

`manifest.json` lists the parameters, timings and the SHA-256 of every file.
"""


def _refuse_foreign(out_dir: Path, manifest: Optional[dict]) -> None:
    """Only ever replace what this generator wrote: a folder without its manifest, or with
    files the manifest does not list (a user's notes, real data), is never touched."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise SynthesisError(f"{out_dir} is a file, not a folder; choose another --out")
    files = [p for p in out_dir.rglob("*") if p.is_file()]
    if not files:
        return
    if manifest is None:
        raise SynthesisError(
            f"{out_dir} holds files that this generator did not write (no {MANIFEST}), e.g. "
            f"{files[0].relative_to(out_dir)}; the synthetic set is never written into or over "
            f"such a folder. Choose another --out (or DATASET.root), or move those files away.")
    listed = set(manifest.get("files", {})) | {MANIFEST}
    foreign = sorted(str(p.relative_to(out_dir)) for p in files
                     if str(p.relative_to(out_dir)) not in listed)
    if foreign:
        raise SynthesisError(
            f"{out_dir} is a synthetic set but also holds {len(foreign)} file(s) it did not "
            f"write ({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); it is not "
            f"replaced while they are there. Move them away, or choose another --out.")


def generate_synthetic_h36m(out_dir=DEFAULT_OUT, seed: int = 0,
                            frames_per_sequence: Optional[int] = None, size: str = "default",
                            subjects: Iterable[int] = ALL_SUBJECTS,
                            actions: Iterable[str] = ACTIONS,
                            subactions: Iterable[int] = SUBACTIONS,
                            invalid_fit_rate: float = 0.005, longer_2d_rate: float = 0.1,
                            margin_px: float = 10.0, noise: DetectorNoise = DetectorNoise(),
                            force: bool = False, log=print) -> dict:
    """Generate the synthetic dataset into ``out_dir`` and return a summary dict.

    ``frames_per_sequence`` overrides ``size`` ('default': 100, 'large': 1000). With the same
    parameters already present and complete, nothing is written (summary['skipped'] is True).
    """
    if size not in FRAMES_PER_SEQUENCE:
        raise SynthesisError(f"size must be one of {sorted(FRAMES_PER_SEQUENCE)}, got '{size}'")
    frames = int(frames_per_sequence or FRAMES_PER_SEQUENCE[size])
    if frames < 2:
        raise SynthesisError(f"frames_per_sequence must be >= 2, got {frames}")
    subjects, actions, subactions = list(subjects), list(actions), list(subactions)
    unknown = [a for a in actions if a not in ACTION_IDX]
    if unknown:
        raise SynthesisError(f"unknown actions {unknown}; known: {', '.join(ACTIONS)}")
    if not subjects or set(subjects) - set(ALL_SUBJECTS):
        raise SynthesisError(f"subjects {sorted(set(subjects) - set(ALL_SUBJECTS)) or '[]'} have "
                             f"no Human3.6M cameras; use some of {list(ALL_SUBJECTS)} (--subjects)")
    params = _parameters(seed, frames, subjects, actions, subactions, invalid_fit_rate,
                         longer_2d_rate, margin_px)
    out_dir = Path(out_dir)
    existing = read_manifest(out_dir)
    _refuse_foreign(out_dir, existing)
    if out_dir.exists() and not force:
        if existing and existing.get("parameters") == params and is_complete(out_dir, existing):
            log(f"{out_dir}: already complete with the same parameters; nothing to do "
                "(use --force to regenerate)")
            return {**existing["summary"], "out_dir": str(out_dir), "skipped": True}
        what = "was made with other parameters" if existing else "is not a complete synthetic set"
        raise SynthesisError(f"{out_dir} exists and {what}; pass --force (force=True) to "
                             "replace it, or choose another --out")

    start = time.perf_counter()
    timings = {}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tick = time.perf_counter()
        write_synthetic_body_model(tmp / "smpl", seed=seed)
        body = BodyModel.from_dir(tmp / "smpl", gender="neutral")
        model_dict = build_synthetic_body_model(seed)   # the neutral file's arrays
        regressor = build_h36m_regressor(model_dict, seed=seed)
        timings["body_model_s"] = time.perf_counter() - tick

        tick = time.perf_counter()
        synth = SequenceSynthesizer(body, model_dict, regressor, seed,
                                    invalid_fit_rate=invalid_fit_rate, margin_px=margin_px)
        sequences = [synth.make(s, a, sub, frames) for s, a, sub in progress(
            [(s, a, sub) for s in subjects for a in actions for sub in subactions],
            desc="synthesizing sequences", unit="seq")]
        cameras = {s: synth.subject(s)["cameras"] for s in subjects}
        timings["motion_and_mesh_s"] = time.perf_counter() - tick

        tick = time.perf_counter()
        corpus = PoseCorpus(sequences, cameras, source=f"synthetic:seed={seed}")
        write_h36m_json(corpus, tmp, regressor=regressor)
        timings["write_json_s"] = time.perf_counter() - tick

        tick = time.perf_counter()
        detected = [Sequence(subject=q.subject, action_idx=q.action_idx,
                             subaction_idx=q.subaction_idx, joints_world=q.joints_world,
                             joint_set=q.joint_set, frame_idx=q.frame_idx, smpl=q.smpl,
                             keypoints_2d=detections_for(q, cameras[q.subject], seed, noise,
                                                         longer_rate=longer_2d_rate),
                             keypoints_2d_joint_set="h36m17") for q in sequences]
        write_h36m_npz(PoseCorpus(detected, cameras, corpus.source), tmp,
                       keypoints=CPN_KEYPOINTS, joints_2d=17)
        write_h36m_npz(corpus, tmp, keypoints="gt", joints_2d=16)
        timings["write_npz_s"] = time.perf_counter() - tick

        summary = {"num_sequences": len(sequences),
                   "num_frames": int(sum(q.num_frames for q in sequences)),
                   "frames_per_sequence": frames, "subjects": subjects,
                   "num_vertices": int(body.num_vertices),
                   "body_model_fingerprint": str(body.fingerprint),
                   "invalid_fits": int(sum((~q.smpl.valid).sum() for q in sequences)),
                   "longer_2d_sequences": int(sum(
                       len(d.keypoints_2d[1]) > d.num_frames for d in detected))}
        (tmp / "README.md").write_text(_readme(params, summary))
        files = {str(p.relative_to(tmp)): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
                 for p in sorted(tmp.rglob("*")) if p.is_file()}
        timings["total_s"] = time.perf_counter() - start
        summary["seconds"] = timings["total_s"]
        manifest = {"generator": "data/synthesize.py", "parameters": params, "summary": summary,
                    "timings": {k: round(v, 3) for k, v in timings.items()}, "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        _swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"wrote {out_dir}: {summary['num_sequences']} sequences, {summary['num_frames']} frames "
        f"in {timings['total_s']:.1f} s")
    return {**summary, "timings": timings, "out_dir": str(out_dir), "skipped": False}


def _swap_into_place(tmp: Path, out_dir: Path) -> None:
    """Rename the finished temporary folder to ``out_dir`` (replacing an old one)."""
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
