"""CMU-like motion capture (ASF/AMC or BVH) -> Human3.6M joint sets, world frame and cameras.

Joint mapping (CMU bone names; a bone starts where its parent ends). H36M-32 index: point.
Indices follow ``lib.geometry.skeleton.H36M32``; the H36M-17 set is its usual reduction.

====  ==================  ============================================================
 32   H36M joint          CMU point
====  ==================  ============================================================
  0   Hip (Pelvis)        root
  1   RHip                rfemur start (end of rhipjoint)
  2   RKnee               rtibia start
  3   RFoot (ankle)       rfoot start
  4   RToe                rtoes start (ball of the foot)
  5   RSite               rtoes end
 6-10 left leg            the same on lhipjoint/lfemur/ltibia/lfoot/ltoes
 11   Spine               upperback start (end of lowerback)
 12   Thorax (17: Torso)  thorax start (end of upperback, ~23 cm above the root)
 13   Neck/Nose (17: Neck) lowerneck start (end of thorax, base of the neck)
 14   Head (17: Nose)     head start (end of upperneck)
 15   HeadSite (17: Head) head end
 16   LShoulderAnchor     lclavicle start (= 13)
 17   LShoulder           lhumerus start
 18   LElbow              lradius start
 19   LWrist              lhand start (CMU's radius + wrist bones make the forearm)
 20   LHandAnchor         lhand start (= 19)
 21   LHandThumb          lthumb end
 22   LHandSite           lhand end (fingers' base)
 23   LHandThumbSite      lfingers end
24-31 right arm           the same on the r* bones
====  ==================  ============================================================

The CMU frame is Y-up (x to the subject's left, z forward in the rest pose); it is rotated
into H36M's Z-up world by (x, y, z) -> (x, -z, y), a proper rotation. Units become
millimetres ((1/0.45) inch per CMU unit). Mesh targets do not exist for such data, so every
Sequence has ``smpl=None`` (``Sequence.has_mesh`` is False): nothing is faked.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence as Seq

import numpy as np

from lib.data.corpus import PoseCorpus, Sequence
from lib.data.mocap import bvh
from lib.data.mocap.asf_amc import (AmcMotion, AsfSkeleton, MocapFormatError, forward_kinematics,
                                   read_amc, read_asf)
from lib.geometry.camera import h36m_cameras
from lib.geometry.skeleton import ACTION_IDX, H36M_FPS, KEEP_32_TO_17, canonical_action

# (bone, 'start' | 'end') for every H36M-32 joint, in H36M32 order.
H36M32_FROM_CMU = (
    ("root", "end"),
    ("rfemur", "start"), ("rtibia", "start"), ("rfoot", "start"), ("rtoes", "start"),
    ("rtoes", "end"),
    ("lfemur", "start"), ("ltibia", "start"), ("lfoot", "start"), ("ltoes", "start"),
    ("ltoes", "end"),
    ("upperback", "start"), ("thorax", "start"), ("lowerneck", "start"), ("head", "start"),
    ("head", "end"),
    ("lclavicle", "start"), ("lhumerus", "start"), ("lradius", "start"), ("lhand", "start"),
    ("lhand", "start"), ("lthumb", "end"), ("lhand", "end"), ("lfingers", "end"),
    ("rclavicle", "start"), ("rhumerus", "start"), ("rradius", "start"), ("rhand", "start"),
    ("rhand", "start"), ("rthumb", "end"), ("rhand", "end"), ("rfingers", "end"),
)
# CMU Y-up -> H36M Z-up: X = x, Y = -z, Z = y (det +1).
CMU_TO_H36M = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
# Points that may touch the floor: ankles, balls and tips of both feet (H36M-32 indices).
FOOT_JOINTS_32 = (3, 4, 5, 8, 9, 10)
CMU_FPS = 120.0
# BVH joint names -> the CMU bone that starts at that joint, one JSON file per naming scheme
# (``--joint-map``): 'cmu' (the ASF bone names), 'motionbuilder' (Hips, LeftUpLeg, ...: the
# usual CMU-BVH conversions) and 'mixamo' (mixamorig:Hips, ...). A user's map is the same
# {file joint name: CMU bone} mapping in JSON or YAML (optionally under a 'joints' key).
JOINT_MAP_DIR = Path(__file__).with_name("joint_maps")
CMU_BONES = ("root", "lhipjoint", "lfemur", "ltibia", "lfoot", "ltoes", "rhipjoint", "rfemur",
             "rtibia", "rfoot", "rtoes", "lowerback", "upperback", "thorax", "lowerneck",
             "upperneck", "head", "lclavicle", "lhumerus", "lradius", "lwrist", "lhand",
             "lfingers", "lthumb", "rclavicle", "rhumerus", "rradius", "rwrist", "rhand",
             "rfingers", "rthumb")
# A bone's end is where this child bone starts, when the file has it (else: the joint's End
# Site, else its first child joint): a hand's first child may be the thumb.
END_AT_CHILD = {"lhand": "lfingers", "rhand": "rfingers"}


def shipped_joint_maps() -> Dict[str, Path]:
    return {p.stem: p for p in sorted(JOINT_MAP_DIR.glob("*.json"))}


def load_joint_map(spec) -> Dict[str, str]:
    """A joint map by shipped name ('cmu', 'mixamo', 'motionbuilder') or file path (JSON/YAML):
    {lower-cased file joint name: CMU bone}. Bad files are errors naming the file and entry."""
    shipped = shipped_joint_maps()
    path = shipped.get(str(spec).lower(), Path(spec))
    if not path.is_file():
        raise MocapFormatError(f"joint map '{spec}' not found: give a JSON or YAML file "
                               f"{{file joint name: CMU bone name}} or one of the shipped maps "
                               f"{', '.join(shipped)}")
    text = path.read_text()
    try:
        if path.suffix.lower() in (".yml", ".yaml"):
            import yaml
            raw = yaml.safe_load(text)
        else:
            raw = json.loads(text)
    except Exception as exc:   # json / yaml syntax errors have many types
        raise MocapFormatError(f"{path}: not a readable joint map ({type(exc).__name__}: "
                               f"{exc})") from None
    if isinstance(raw, dict) and isinstance(raw.get("joints"), dict):
        raw = raw["joints"]
    if not isinstance(raw, dict) or not raw:
        raise MocapFormatError(f"{path}: a joint map is a mapping {{file joint name: CMU bone "
                               f"name}}, e.g. {{\"mixamorig:LeftUpLeg\": \"lfemur\"}}")
    out = {}
    for name, bone in raw.items():
        if not isinstance(bone, str) or bone.lower() not in CMU_BONES:
            raise MocapFormatError(f"{path}: entry '{name}': '{bone}' is not a CMU bone name; "
                                   f"known: {', '.join(CMU_BONES)}")
        out[str(name).lower()] = bone.lower()
    return out


def _default_joint_map() -> Dict[str, str]:
    out = {}
    for name in ("cmu", "motionbuilder"):
        out.update(load_joint_map(name))
    return out


DEFAULT_JOINT_MAP = _default_joint_map()       # ASF bone names and the CMU-BVH names
BVH_ALIASES = load_joint_map("motionbuilder")  # the CMU-BVH names alone (lower-cased)
# Millimetres per file unit, by name.
LENGTH_UNITS_MM = {"mm": 1.0, "cm": 10.0, "m": 1000.0, "inch": 25.4}
# Plausible standing height of an adult (rest pose, head top to lowest foot point), mm.
HUMAN_HEIGHT_MM = (1000.0, 2300.0)


@dataclass
class ImportOptions:
    joint_set: str = "h36m17"          # 'h36m17' or 'h36m32'
    fps_out: Optional[float] = H36M_FPS  # None keeps the capture rate (CMU: 120 fps)
    fps_in: float = CMU_FPS
    camera_subject: int = 1            # whose published H36M calibration to film with
    center: bool = True                # move the clip's mean root to the capture centre
    on_floor: bool = True              # lowest foot point of the clip at z = 0
    distort: bool = True               # 2D with the full lens model (like the GT 2D files)
    max_frames: Optional[int] = None   # read only the first frames of each AMC (at fps_in)

    def __post_init__(self):
        if self.joint_set not in ("h36m17", "h36m32"):
            raise ValueError(f"joint_set must be 'h36m17' or 'h36m32', got '{self.joint_set}'")


def cmu_to_h36m32(skeleton: AsfSkeleton, motion: Optional[AmcMotion] = None) -> np.ndarray:
    """World joints (N, 32, 3) in mm, Z up, H36M-32 order (no floor or centring applied)."""
    ends = forward_kinematics(skeleton, motion)
    missing = sorted({b for b, _ in H36M32_FROM_CMU if b not in ends})
    if missing:
        raise ValueError(f"skeleton {skeleton.source or skeleton.name} lacks the CMU bones "
                         f"{missing} needed for the H36M mapping")

    def point(bone, where):
        return ends[bone] if where == "end" else ends[skeleton.parent[bone]]

    cmu = np.stack([point(b, w) for b, w in H36M32_FROM_CMU], axis=1) * skeleton.unit_mm
    return cmu @ CMU_TO_H36M.T


def length_unit_mm(unit) -> float:
    """'mm' | 'cm' | 'm' | 'inch' or a number (mm per file unit) -> mm per file unit."""
    if isinstance(unit, str) and unit.lower() in LENGTH_UNITS_MM:
        return LENGTH_UNITS_MM[unit.lower()]
    try:
        value = float(unit)
    except (TypeError, ValueError):
        raise ValueError(f"unknown length unit '{unit}': use one of "
                         f"{', '.join(LENGTH_UNITS_MM)} or a number of mm per unit") from None
    if not value > 0:
        raise ValueError(f"the length unit must be positive, got {unit}")
    return value


def bvh_to_h36m32(clip: bvh.BvhClip, unit, up: str = "y",
                  joint_map: Optional[Dict[str, str]] = None) -> np.ndarray:
    """World joints (N, 32, 3) in mm, Z up, H36M-32 order, from a BVH clip of a human body.

    Joints are matched by name through ``joint_map`` ({lower-cased file joint name: CMU bone},
    :func:`load_joint_map`; default: ASF bone names and the usual CMU-BVH names); a bone's end
    is where ``END_AT_CHILD`` says, else its joint's End Site, else its first child joint.
    The root joint is the root whatever its name. ``up`` is the file's up axis.
    """
    if up not in ("y", "z"):
        raise ValueError(f"up must be 'y' or 'z', got '{up}'")
    names = DEFAULT_JOINT_MAP if joint_map is None else joint_map
    pos = bvh.forward_kinematics(clip)
    by_bone, children = {}, {}
    for j in clip.joints:
        bone = "root" if j.parent < 0 else names.get(j.name.lower())
        if bone is not None:
            by_bone.setdefault(bone, j)
        if j.parent >= 0:
            children.setdefault(clip.joints[j.parent].name, []).append(j.name)
    missing = sorted({b for b, _ in H36M32_FROM_CMU if b not in by_bone})
    if missing:
        raise ValueError(f"{clip.source or 'BVH clip'}: no joints for the CMU bones {missing} "
                         f"needed for the H36M mapping (joint names are matched to CMU bone "
                         f"names or the usual CMU-BVH names, e.g. LeftUpLeg = lfemur; for "
                         f"another naming scheme pass --joint-map with one of the shipped maps "
                         f"({', '.join(shipped_joint_maps())}) or your own JSON/YAML file)")

    def point(bone, where):
        j = by_bone[bone]
        if where == "start" or bone == "root":
            return pos[j.name]
        if END_AT_CHILD.get(bone) in by_bone:
            return pos[by_bone[END_AT_CHILD[bone]].name]
        if j.site is not None:
            return pos[j.name + bvh.SITE_SUFFIX]
        if j.name in children:
            return pos[children[j.name][0]]
        raise ValueError(f"{clip.source}: joint '{j.name}' has neither an End Site nor children")

    joints = np.stack([point(b, w) for b, w in H36M32_FROM_CMU], axis=1) * length_unit_mm(unit)
    return joints @ CMU_TO_H36M.T if up == "y" else joints


def check_human_height(joints32: np.ndarray, source: str, unit) -> float:
    """Median over frames of head top minus lowest foot point; an error if not human-sized."""
    height = float(np.median(joints32[:, 15, 2] - joints32[:, list(FOOT_JOINTS_32), 2].min(1)))
    lo, hi = HUMAN_HEIGHT_MM
    if not lo <= height <= hi:
        raise ValueError(f"{source}: the body is {height / 1000:.3g} m tall with length unit "
                         f"'{unit}' (expected {lo / 1000:g}-{hi / 1000:g} m for a standing adult); "
                         f"pass the file's unit (mm, cm, m, inch or mm per unit), or the other "
                         f"up axis if the body lies on its side")
    return height


def place_in_capture_volume(joints32: np.ndarray, center: bool = True,
                            on_floor: bool = True) -> np.ndarray:
    """Shift a clip so its mean root is at world x = y = 0 and its lowest foot point at z = 0."""
    out = joints32.copy()
    if center:
        out[..., :2] -= joints32[:, 0, :2].mean(axis=0)
    if on_floor:
        out[..., 2] -= joints32[:, list(FOOT_JOINTS_32), 2].min()
    return out


def project_all(joints_world: np.ndarray, cameras: Dict, distort: bool = True) -> Dict[int, np.ndarray]:
    """cam_idx -> (N, J, 2) pixels through each camera."""
    return {idx: cam.project(cam.world_to_camera(joints_world), distort=distort).astype(np.float32)
            for idx, cam in cameras.items()}


def clip_to_sequence(skeleton: AsfSkeleton, motion: AmcMotion, subject: int, action,
                     subaction_idx: int = 1, options: ImportOptions = ImportOptions(),
                     cameras: Optional[Dict] = None) -> Sequence:
    """One AMC clip -> one :class:`Sequence` (world joints in mm and 2D in all cameras)."""
    if options.fps_out is not None and abs(options.fps_out - motion.fps) > 1e-9:
        motion = motion.resample(options.fps_out)
    frame_idx = np.asarray(motion.frame_numbers, dtype=np.int64)
    return joints_to_sequence(cmu_to_h36m32(skeleton, motion), frame_idx - frame_idx[0], subject,
                              action, subaction_idx, options, cameras)


def bvh_clip_to_sequence(clip: bvh.BvhClip, subject: int, action, subaction_idx: int = 1,
                         options: ImportOptions = ImportOptions(), cameras: Optional[Dict] = None,
                         unit="cm", up: str = "y",
                         joint_map: Optional[Dict[str, str]] = None) -> Sequence:
    """One BVH clip -> one :class:`Sequence`; the body must come out of human height."""
    rest = bvh.BvhClip(clip.joints, clip.frame_time, np.zeros((1, clip.motion.shape[1])),
                       clip.source)
    check_human_height(bvh_to_h36m32(rest, unit, up, joint_map), clip.source, unit)
    if options.fps_out is not None and abs(options.fps_out - clip.fps) > 1e-6:
        clip = clip.resample(options.fps_out)
    return joints_to_sequence(bvh_to_h36m32(clip, unit, up, joint_map),
                              np.arange(clip.num_frames), subject,
                              action, subaction_idx, options, cameras)


def joints_to_sequence(joints32: np.ndarray, frame_idx: np.ndarray, subject: int, action,
                       subaction_idx: int, options: ImportOptions,
                       cameras: Optional[Dict] = None) -> Sequence:
    """World H36M-32 joints (mm, Z up) -> a placed, projected :class:`Sequence` without mesh."""
    action_idx = action if isinstance(action, int) else ACTION_IDX[canonical_action(action)]
    joints = place_in_capture_volume(joints32, options.center, options.on_floor)
    if options.joint_set == "h36m17":
        joints = joints[:, list(KEEP_32_TO_17)]
    cameras = cameras if cameras is not None else h36m_cameras(options.camera_subject)
    return Sequence(subject=subject, action_idx=action_idx, subaction_idx=subaction_idx,
                    joints_world=joints.astype(np.float32), joint_set=options.joint_set,
                    frame_idx=frame_idx,
                    keypoints_2d=project_all(joints, cameras, options.distort),
                    keypoints_2d_joint_set=options.joint_set, smpl=None)


def _per_clip_actions(actions, paths, kind: str) -> list:
    if not paths:
        raise ValueError(f"no {kind} files given")
    if isinstance(actions, (str, int)):
        actions = [actions] * len(paths)
    if len(actions) != len(paths):
        raise ValueError(f"{len(actions)} actions for {len(paths)} {kind} files; give one "
                         f"action for all clips or one per clip")
    return list(actions)


def _number_subactions(seqs: list) -> list:
    """Clips sharing an action get sub-action indices 1, 2, ... in the given order."""
    next_sub = {}
    for seq in seqs:
        seq.subaction_idx = next_sub.get(seq.action_idx, 1)
        next_sub[seq.action_idx] = seq.subaction_idx + 1
    return seqs


def import_clips(asf_path, amc_paths: Seq, subject: int = 1, actions="Walking",
                 options: ImportOptions = ImportOptions()) -> PoseCorpus:
    """Clips of one CMU subject -> a PoseCorpus with the cameras of ``options.camera_subject``.

    ``actions`` is one H36M action (name or action_idx) for all clips or one per clip; clips
    sharing an action get sub-action indices 1, 2, ... in the given order.
    """
    amc_paths = [Path(p) for p in amc_paths]
    actions = _per_clip_actions(actions, amc_paths, "AMC")
    skeleton = read_asf(asf_path)
    cameras = h36m_cameras(options.camera_subject)
    seqs = [clip_to_sequence(skeleton, read_amc(path, skeleton, max_frames=options.max_frames,
                                                fps=options.fps_in),
                             subject, action, 1, options, cameras)
            for path, action in zip(amc_paths, actions)]
    return PoseCorpus(sequences=_number_subactions(seqs), cameras={subject: cameras},
                      source=f"cmu-asf-amc:{Path(asf_path).name}:"
                             + ",".join(p.name for p in amc_paths))


def import_bvh_clips(bvh_paths: Seq, subject: int = 1, actions="Walking",
                     options: ImportOptions = ImportOptions(), unit="cm",
                     up: str = "y", joint_map=None) -> PoseCorpus:
    """BVH clips (one body each) -> a PoseCorpus, as :func:`import_clips`.

    ``unit`` is the files' length unit ('mm', 'cm', 'm', 'inch' or mm per unit) and ``up`` their
    up axis; a body that does not come out of human height is an error naming both.
    ``joint_map`` names the joints: a shipped map ('cmu', 'mixamo', 'motionbuilder'), a file
    (:func:`load_joint_map`), a ready dict, or None (ASF and CMU-BVH names).
    """
    if joint_map is not None and not isinstance(joint_map, dict):
        joint_map = load_joint_map(joint_map)
    bvh_paths = [Path(p) for p in bvh_paths]
    actions = _per_clip_actions(actions, bvh_paths, "BVH")
    cameras = h36m_cameras(options.camera_subject)
    seqs = [bvh_clip_to_sequence(bvh.read_bvh(path, max_frames=options.max_frames), subject,
                                 action, 1, options, cameras, unit=unit, up=up,
                                 joint_map=joint_map)
            for path, action in zip(bvh_paths, actions)]
    return PoseCorpus(sequences=_number_subactions(seqs), cameras={subject: cameras},
                      source="bvh:" + ",".join(p.name for p in bvh_paths))
