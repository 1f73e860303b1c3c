"""Statistics that compare the synthetic motion with real capture (H36M-17 world joints, mm).

Used by ``benchmarks/calibrate_synthetic.py`` (report and plots) and the realism tests. All
functions take world joints of shape (N, 17, 3) in millimetres, z up, H36M17 order.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Dict, List

import numpy as np

from lib.errors import PoseError
from lib.geometry.skeleton import (ACTIONS, ALL_SUBJECTS, H36M17, KEEP_32_TO_17,
                                   facing_direction)

J = {name: i for i, name in enumerate(H36M17.joint_names)}
FPS = 50.0
# Scale-normalised poses are expressed for a body whose summed H36M-17 bone length is this
# (a typical adult's, mm), so coverage distances read as millimetres.
REFERENCE_BONE_SUM_MM = 4400.0


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """(N, 16) lengths of H36M17.bones."""
    return np.stack([np.linalg.norm(joints[:, c] - joints[:, p], axis=-1)
                     for p, c in H36M17.bones], 1)


def canonical_poses(joints: np.ndarray) -> np.ndarray:
    """Root-relative, heading-free, scale-normalised poses (N, 17, 3).

    The pelvis goes to the origin, the body is turned about the vertical so its hip line points
    along +x, and the pose is scaled so its summed bone length is REFERENCE_BONE_SUM_MM.
    """
    x = np.asarray(joints, np.float64) - joints[:, :1]
    hips = x[:, J["L_Hip"]] - x[:, J["R_Hip"]]
    yaw = np.arctan2(hips[:, 1], hips[:, 0])
    c, s = np.cos(-yaw), np.sin(-yaw)
    R = np.zeros((len(x), 3, 3))
    R[:, 0, 0], R[:, 0, 1], R[:, 1, 0], R[:, 1, 1], R[:, 2, 2] = c, -s, s, c, 1.0
    x = np.einsum("nij,nkj->nki", R, x)
    scale = REFERENCE_BONE_SUM_MM / bone_lengths(joints).sum(1)
    return x * scale[:, None, None]


def coverage(real: np.ndarray, synthetic: np.ndarray, thresholds_mm=(40.0, 60.0, 80.0),
             max_synthetic: int = 60000, seed: int = 0) -> Dict[str, object]:
    """Fraction of real frames whose canonical pose has a synthetic one within each threshold.

    Distance: mean per-joint Euclidean distance (mm) between canonical poses, found as the
    nearest neighbour in the flattened space (exact for the RMS distance, which bounds the mean
    from above, so the fractions are conservative).
    """
    from scipy.spatial import cKDTree
    a = canonical_poses(real).reshape(len(real), -1)
    b = canonical_poses(synthetic)
    if len(b) > max_synthetic:
        b = b[np.random.default_rng(seed).choice(len(b), max_synthetic, replace=False)]
    b = b.reshape(len(b), -1)
    rms, _ = cKDTree(b).query(a, k=1)
    rms = rms / np.sqrt(len(H36M17.joint_names))
    return {"nearest_rms_mm": rms,
            "fraction_within": {float(t): float((rms <= t).mean()) for t in thresholds_mm}}


# Segment mass fractions and centre-of-mass positions (fraction of the way from the proximal
# joint), after Dempster's cadaver data as Winter tabulates it ("Biomechanics and Motor Control
# of Human Movement"). The foot's mass sits at the ankle and the hand's at the wrist: H36M-17
# has no toe or finger joint. (segment, proximal joint, distal joint, mass, COM position)
SEGMENT_MASSES = (("trunk", "Pelvis", "Neck", 0.497, 0.5), ("head", "Neck", "Head", 0.081, 0.5),
                  *((f"{s}_{part}", f"{s}_{a}", f"{s}_{b}", m, c) for s in ("L", "R")
                    for part, a, b, m, c in (("upper_arm", "Shoulder", "Elbow", 0.028, 0.436),
                                             ("forearm", "Elbow", "Wrist", 0.016, 0.430),
                                             ("hand", "Wrist", "Wrist", 0.006, 0.0),
                                             ("thigh", "Hip", "Knee", 0.100, 0.433),
                                             ("shank", "Knee", "Ankle", 0.0465, 0.433),
                                             ("foot", "Ankle", "Ankle", 0.0145, 0.0))))


def centre_of_mass(joints: np.ndarray) -> np.ndarray:
    """(N, 3) whole-body centre of mass estimated from the joints with ``SEGMENT_MASSES``."""
    x = np.asarray(joints, np.float64)
    com = sum(m * (x[:, J[a]] + c * (x[:, J[b]] - x[:, J[a]]))
              for _, a, b, m, c in SEGMENT_MASSES)
    return com / sum(seg[3] for seg in SEGMENT_MASSES)


def _angle(u, v):
    cos = (u * v).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1) + 1e-9)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def root_speed(joints: np.ndarray, fps: float = FPS) -> np.ndarray:
    """(N - 1,) horizontal speed of the pelvis between consecutive frames, m/s."""
    return np.linalg.norm(np.diff(joints[:, 0, :2], axis=0), axis=-1) * fps / 1000.0


def joint_statistics(joints: np.ndarray, fps: float = FPS, clip_starts=None) -> Dict[str, np.ndarray]:
    """Per-frame angles (degrees), heights and speeds of a clip or a stack of clips.

    ``clip_starts``: frame indices where a new clip begins (speeds are not taken across them).
    """
    x = np.asarray(joints, np.float64)
    up = np.array([0.0, 0.0, 1.0])
    out = {}
    for side, s in (("L", "left"), ("R", "right")):
        hip, knee, ank = x[:, J[f"{side}_Hip"]], x[:, J[f"{side}_Knee"]], x[:, J[f"{side}_Ankle"]]
        sh, el, wr = (x[:, J[f"{side}_Shoulder"]], x[:, J[f"{side}_Elbow"]],
                      x[:, J[f"{side}_Wrist"]])
        out[f"knee_flexion_{s}"] = 180.0 - _angle(hip - knee, ank - knee)
        out[f"elbow_flexion_{s}"] = 180.0 - _angle(sh - el, wr - el)
        trunk = x[:, J["Neck"]] - x[:, J["Pelvis"]]
        out[f"hip_flexion_{s}"] = 180.0 - _angle(trunk, knee - hip)
        out[f"shoulder_elevation_{s}"] = _angle(-up[None], el - sh)
    trunk = x[:, J["Neck"]] - x[:, J["Pelvis"]]
    out["trunk_tilt"] = _angle(trunk, up[None])
    hips = x[:, J["L_Hip"]] - x[:, J["R_Hip"]]
    # stance width: how far apart the knees and the ankles are along the hip line, in hip
    # widths (1: each straight below its hip; relaxed standing and walking are mostly below)
    hip_width = np.linalg.norm(hips, axis=-1)
    for part in ("knee", "ankle"):
        apart = x[:, J[f"L_{part.title()}"]] - x[:, J[f"R_{part.title()}"]]
        out[f"{part}_separation"] = (apart * hips).sum(-1) / hip_width ** 2
    # head carriage and spine curvature, in the chest's own sagittal plane (up: torso -> neck,
    # made square to the hip line; forward: hips x up), so they do not change with the lean
    side = hips / hip_width[:, None]
    chest_up = x[:, J["Neck"]] - x[:, J["Torso"]]
    chest_up = chest_up - (chest_up * side).sum(-1, keepdims=True) * side
    chest_up /= np.maximum(np.linalg.norm(chest_up, axis=-1, keepdims=True), 1e-9)
    forward = np.cross(side, chest_up)
    sagittal = lambda v: np.degrees(np.arctan2((v * forward).sum(-1), (v * chest_up).sum(-1)))
    # > 0: the head (neck -> nose) carried forward of the chest's line, the chin down
    out["head_carriage"] = sagittal(x[:, J["Nose"]] - x[:, J["Neck"]])
    # > 0: the chest bent forward over the lower trunk (pelvis -> torso)
    out["spine_flexion"] = -sagittal(x[:, J["Torso"]] - x[:, J["Pelvis"]])
    # the upper arm's angle ahead of the chest's line (0: hanging along it, < 0: behind it);
    # walking arms swing about a centre a little behind the line
    for side, s in (("L", "left"), ("R", "right")):
        down = x[:, J[f"{side}_Elbow"]] - x[:, J[f"{side}_Shoulder"]]
        out[f"upper_arm_carriage_{s}"] = np.degrees(np.arctan2(
            (down * forward).sum(-1), -(down * chest_up).sum(-1)))
    shoulders = x[:, J["L_Shoulder"]] - x[:, J["R_Shoulder"]]
    yaw = lambda v: np.arctan2(v[:, 1], v[:, 0])
    out["trunk_twist"] = np.degrees(np.angle(np.exp(1j * (yaw(shoulders) - yaw(hips)))))
    # where the body stands over its feet: how far the pelvis and the centre of mass are ahead
    # of the ankles' midpoint, mm along the horizontal facing direction (hips x up). Standing
    # people keep the centre of mass over the midfoot, a few centimetres ahead of the ankles
    facing = facing_direction(x)
    ankles = 0.5 * (x[:, J["L_Ankle"]] + x[:, J["R_Ankle"]])
    out["pelvis_ahead_of_ankles"] = ((x[:, J["Pelvis"]] - ankles) * facing).sum(-1)
    out["com_ahead_of_ankles"] = ((centre_of_mass(x) - ankles) * facing).sum(-1)
    legs = bone_lengths(x)[:, [1, 2]].sum(1)          # right thigh + shank
    foot = np.minimum(x[:, J["L_Ankle"], 2], x[:, J["R_Ankle"], 2])
    out["root_height"] = (x[:, 0, 2] - foot) / legs    # pelvis over the lower ankle, in legs
    v = root_speed(x, fps)
    if clip_starts is not None:
        keep = np.ones(len(v), bool)
        keep[[i - 1 for i in clip_starts if i > 0]] = False
        v = v[keep]
    out["root_speed"] = v
    return out


BALANCE_STATISTICS = ("pelvis_ahead_of_ankles", "com_ahead_of_ankles")


def balance_by_activity(clips: List[np.ndarray], fps: float = FPS) -> Dict[str, Dict[str, np.ndarray]]:
    """``BALANCE_STATISTICS`` of the standing and the walking frames of ``clips``.

    Standing: both knees bent less than 20 deg, the trunk tilted less than 20 deg, the pelvis
    moving slower than 0.3 m/s; walking: faster than 0.6 m/s. Over all frames the two would mix
    with sitting and bending, whose centre of mass sits elsewhere over the feet.
    """
    out = {"standing": {k: [] for k in BALANCE_STATISTICS},
           "walking": {k: [] for k in BALANCE_STATISTICS}}
    for clip in clips:
        st = joint_statistics(clip, fps)
        v = root_speed(clip, fps)
        v = np.r_[v, v[-1:]] if len(v) else np.zeros(len(clip))
        masks = {"standing": ((st["knee_flexion_left"] < 20) & (st["knee_flexion_right"] < 20)
                              & (st["trunk_tilt"] < 20) & (v < 0.3)),
                 "walking": v > 0.6}
        for activity, m in masks.items():
            for k in BALANCE_STATISTICS:
                out[activity][k].append(st[k][m])
    return {a: {k: np.concatenate(v) for k, v in d.items()} for a, d in out.items()}


def proportions(joints: np.ndarray) -> Dict[str, float]:
    """Median bone lengths (mm) of the spine and head chain and the limbs."""
    L = np.median(bone_lengths(joints), 0)
    names = [f"{H36M17.joint_names[p]}->{H36M17.joint_names[c]}" for p, c in H36M17.bones]
    return dict(zip(names, L.tolist()))


def stack(clips: List[np.ndarray]):
    """Clips -> (all frames, start index of each clip)."""
    starts = np.cumsum([0] + [len(c) for c in clips[:-1]]).tolist()
    return np.concatenate(clips, 0), starts


def range_coverage(real: np.ndarray, synthetic: np.ndarray, lo=1.0, hi=99.0) -> float:
    """Share of the real [lo, hi] percentile range that the synthetic [0.5, 99.5] range spans."""
    a, b = np.percentile(real, [lo, hi])
    c, d = np.percentile(synthetic, [0.5, 99.5])
    return float(max(0.0, min(b, d) - max(a, c)) / max(b - a, 1e-9))


# ----------------------------------------------------------------------------- sources
class CalibrationError(PoseError, ValueError):
    """The mocap folder holds no usable CMU subject."""


def real_clips(mocap: Path, max_frames=None) -> dict:
    """subject -> list of (N, 17, 3) world joints (mm, 50 fps), one per AMC clip."""
    from lib.data.mocap.asf_amc import read_amc, read_asf
    from lib.data.mocap.to_h36m import cmu_to_h36m32
    out = {}
    if not Path(mocap).is_dir():
        raise CalibrationError(f"{mocap}: no such folder; pass --mocap pointing at the folder "
                               f"that holds the CMU subjects (01/01.asf, 01/01_01.amc, ...).")
    for folder in sorted(p for p in Path(mocap).iterdir() if p.is_dir()):
        asf = folder / f"{folder.name}.asf"
        amcs = sorted(folder.glob(f"{folder.name}_*.amc"))
        if not asf.is_file() or not amcs:
            continue
        skel = read_asf(asf)
        out[folder.name] = [cmu_to_h36m32(skel, read_amc(a, skel, max_frames=max_frames)
                                          .resample(FPS))[:, list(KEEP_32_TO_17)]
                            for a in amcs]
    if not out:
        raise CalibrationError(
            f"{mocap}: no CMU subject found (expected sub-folders like 01/ holding 01.asf and "
            f"01_NN.amc clips); pass --mocap pointing at the folder of CMU subjects.")
    return out


def synthetic_clips(seed: int = 0, frames: int = 100, subjects=ALL_SUBJECTS,
                    actions=ACTIONS, subactions=(1, 2)) -> dict:
    """action -> list of (N, 17, 3) world joints (mm) of the generator (nothing kept on disk)."""
    from lib.body.smpl import BodyModel
    from lib.body.synthetic_model import (build_h36m_regressor, build_synthetic_body_model,
                                          write_synthetic_body_model)
    from lib.data.synthetic.generate import SequenceSynthesizer
    with tempfile.TemporaryDirectory() as tmp:
        write_synthetic_body_model(Path(tmp), seed=seed)
        body = BodyModel.from_dir(tmp, gender="neutral")
    model = build_synthetic_body_model(seed)
    synth = SequenceSynthesizer(body, model, build_h36m_regressor(model, seed=seed), seed)
    out = {}
    for s in subjects:
        for a in actions:
            for sub in subactions:
                out.setdefault(a, []).append(synth.motion(s, a, sub, frames).joints)
    return out
