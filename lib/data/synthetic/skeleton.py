"""The rigid kinematic skeleton the synthetic joints come from, and the body fitted to it.

Marker-based capture (CMU, Human3.6M's Vicon) gives joints of a rigid skeleton: bone lengths are
fixed per subject. The generator does the same: per subject, bone offsets are sampled within
adult ranges (:data:`BONE_RANGES_MM`), and every frame's H36M-17 joints are the forward
kinematics of that skeleton under the frame's joint rotations (the 24 SMPL-tree rotations of
:func:`lib.data.synthetic.motion.compose_rotations`). The SMPL-format body is then *fitted* to
the skeleton, as the real annotation files' SMPLify fits are to the capture: the pose parameters
are the same joint rotations, the shape (betas) is fitted once per subject to the rest skeleton
(:func:`fit_body`), and the translation puts the body where that fit says. The
body and the joints therefore agree roughly (a few centimetres), not exactly.

Joint definitions follow what a marker skeleton converted to H36M-17 gives (the CMU import,
``lib.data.mocap.to_h36m``): ``Torso`` is the top of the lower back, ``Neck`` the base of the
neck, ``Nose`` the top of the neck (base of the skull) and ``Head`` the top of the head; the
shoulders sit above and behind the neck base.

Frames: offsets are in the SMPL body frame (metres; y up, z forward, x to the body's left).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

import numpy as np

from lib.geometry.skeleton import H36M17

# Adult ranges, millimetres, before the per-subject overall scale (SCALE_RANGE). Each bone is
# (lateral, up, forward) of the child relative to the parent in the rest pose, one (lo, hi) per
# component; lateral is towards the bone's own side. Ranges: anthropometric tables for adults
# (segment lengths about 0.245 x stature for the thigh, 0.246 for the shank, 0.186 / 0.146 for
# upper arm / forearm incl. wrist) widened to span the marker conventions of public capture.
BONE_RANGES_MM: Dict[str, tuple] = {
    "hip":      ((68, 100), (-110, -88), (20, 50)),    # pelvis -> hip joint
    "thigh":    ((0, 0), (-455, -375), (0, 0)),        # hip -> knee
    "shank":    ((0, 0), (-455, -385), (0, 0)),        # knee -> ankle
    "torso":    ((0, 0), (205, 265), (-18, 2)),        # pelvis -> Torso (top of lower back)
    "neck":     ((0, 0), (100, 140), (-8, 8)),         # Torso -> Neck (base of the neck)
    "nose":     ((0, 0), (165, 210), (-25, 8)),        # Neck -> Nose (top of the neck)
    "head":     ((0, 0), (85, 110), (-15, 3)),         # Nose -> Head (top of the head)
    "shoulder": ((155, 205), (40, 80), (-25, -3)),     # Neck -> shoulder joint
    "upper_arm": ((265, 320), (0, 0), (0, 0)),         # shoulder -> elbow (T-pose: lateral)
    "forearm":  ((265, 305), (0, 0), (0, 0)),          # elbow -> wrist
    "heel":     ((0, 0), (-90, -60), (-65, -40)),      # ankle -> heel contact point
    "toe":      ((0, 0), (-90, -60), (120, 165)),      # ankle -> toe tip
    "seat":     ((55, 80), (-135, -105), (-40, -10)),  # pelvis -> ischial tuberosity (sitting)
}
SCALE_RANGE = (0.92, 1.08)      # overall body size relative to the ranges' middle
ASYMMETRY = 0.015               # left/right length differences, fraction
MIDLINE_BONES = ("torso", "neck", "nose", "head")   # the others come in left/right pairs
# Bones whose place in their range is shared (GROUP_SHARE of it) within a group, see
# sample_skeleton; the factors a subject design spreads (subject_design's columns).
BONE_GROUPS = {"thigh": "legs", "shank": "legs", "torso": "trunk", "neck": "trunk",
               "nose": "trunk", "head": "trunk", "upper_arm": "arms", "forearm": "arms"}
GROUP_SHARE = 0.7
DESIGN_FACTORS = ("size", "legs_vs_trunk", "arms")
SIDES = ("L", "R")
LATERAL = {"L": 1.0, "R": -1.0}

# H36M-17 joint -> (parent joint, bone name, side or None)
_J17 = {name: i for i, name in enumerate(H36M17.joint_names)}
BONES17 = {
    "R_Hip": ("Pelvis", "hip", "R"), "R_Knee": ("R_Hip", "thigh", "R"),
    "R_Ankle": ("R_Knee", "shank", "R"), "L_Hip": ("Pelvis", "hip", "L"),
    "L_Knee": ("L_Hip", "thigh", "L"), "L_Ankle": ("L_Knee", "shank", "L"),
    "Torso": ("Pelvis", "torso", None), "Neck": ("Torso", "neck", None),
    "Nose": ("Neck", "nose", None), "Head": ("Nose", "head", None),
    "L_Shoulder": ("Neck", "shoulder", "L"), "L_Elbow": ("L_Shoulder", "upper_arm", "L"),
    "L_Wrist": ("L_Elbow", "forearm", "L"), "R_Shoulder": ("Neck", "shoulder", "R"),
    "R_Elbow": ("R_Shoulder", "upper_arm", "R"), "R_Wrist": ("R_Elbow", "forearm", "R"),
}
# Contact points (not written): heel and toe of each foot, the two seat bones.
CONTACTS = ("L_Heel", "L_Toe", "R_Heel", "R_Toe", "L_Seat", "R_Seat")
FOOT_POINTS = (_J17["L_Ankle"], _J17["R_Ankle"], 17, 18, 19, 20)   # in the 23-point array
SEAT_POINTS = (21, 22)

# SMPL joint indices (the rotation tree of the pose parameters)
_S = {"pelvis": 0, "L_hip": 1, "R_hip": 2, "spine1": 3, "L_knee": 4, "R_knee": 5, "spine2": 6,
      "L_ankle": 7, "R_ankle": 8, "spine3": 9, "neck": 12, "L_collar": 13, "R_collar": 14,
      "head": 15, "L_shoulder": 16, "R_shoulder": 17, "L_elbow": 18, "R_elbow": 19}
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)


@dataclass
class Skeleton:
    """One subject's rigid skeleton: rest offsets (metres, SMPL body frame) per bone and side."""
    offsets: Dict[tuple, np.ndarray]   # (bone, side or None) -> (3,)
    scale: float = 1.0

    def offset(self, bone, side=None) -> np.ndarray:
        return self.offsets[(bone, side)]

    def length(self, bone, side=None) -> float:
        return float(np.linalg.norm(self.offsets[(bone, side)]))

    def rest_points(self) -> np.ndarray:
        """(23, 3) rest pose: the 17 H36M joints, then heels, toes and seat bones."""
        n = np.zeros((1, 24, 3, 3)) + np.eye(3)
        return forward_kinematics(self, n)[0]

    def bone_lengths17(self) -> np.ndarray:
        """(16,) lengths (mm) of H36M17.bones in the rest pose."""
        p = self.rest_points()[:17] * 1000.0
        return np.array([np.linalg.norm(p[c] - p[par]) for par, c in H36M17.bones])

    def smpl_rest_joints(self) -> np.ndarray:
        """(24, 3) SMPL-slot rest joints built from this skeleton (for the arm IK and targets)."""
        p = self.rest_points()
        out = np.zeros((24, 3))
        slot = {"pelvis": "Pelvis", "L_hip": "L_Hip", "R_hip": "R_Hip", "L_knee": "L_Knee",
                "R_knee": "R_Knee", "L_ankle": "L_Ankle", "R_ankle": "R_Ankle",
                "spine3": "Neck", "neck": "Neck", "head": "Nose", "L_shoulder": "L_Shoulder",
                "R_shoulder": "R_Shoulder", "L_elbow": "L_Elbow", "R_elbow": "R_Elbow"}
        for s, h in slot.items():
            out[_S[s]] = p[_J17[h]]
        out[_S["spine1"]] = p[_J17["Torso"]] * 0.45
        out[_S["spine2"]] = p[_J17["Torso"]]
        out[_S["L_collar"]] = out[_S["R_collar"]] = p[_J17["Neck"]]
        out[20], out[21] = p[_J17["L_Wrist"]], p[_J17["R_Wrist"]]   # SMPL wrists
        out[22], out[23] = out[20] + [0.08, 0, 0], out[21] - [0.08, 0, 0]
        out[10], out[11] = p[18], p[20]                              # SMPL feet ~ toes
        return out


def subject_design(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 3) quantiles in [0, 1) of (overall size, legs against trunk, arm length) for n
    subjects: a Latin hypercube, so a handful of subjects spans each range evenly (n uniform
    draws can all land on one side: five tall, long-legged training subjects teach a model a
    size prior that misjudges everyone else)."""
    strata = np.stack([rng.permutation(n) for _ in DESIGN_FACTORS], 1)
    return (strata + rng.uniform(size=(n, len(DESIGN_FACTORS)))) / n


def sample_skeleton(rng: np.random.Generator, design=None) -> Skeleton:
    """A subject: overall scale and every bone component within its range, mirrored left/right
    with a small asymmetry.

    ``design`` (one row of :func:`subject_design`; drawn from ``rng`` when None) places the
    overall size in SCALE_RANGE and sets where the grouped bones sit in their ranges: long legs
    go with a short trunk (the sitting-height ratio varies between people, about 0.50-0.55 of
    stature), and the two arm bones vary together. Each bone keeps an individual part
    (1 - GROUP_SHARE) of its own.
    """
    u_size, u_legs, u_arms = (rng.uniform(size=3) if design is None
                              else np.clip(np.asarray(design, float), 0.0, 1.0))
    lo, hi = SCALE_RANGE
    scale = float(lo + (hi - lo) * u_size)
    group_quantile = {"legs": u_legs, "trunk": 1.0 - u_legs, "arms": u_arms}
    offsets = {}
    for bone, ranges in BONE_RANGES_MM.items():
        own = rng.uniform(size=len(ranges))
        group = BONE_GROUPS.get(bone)
        q = own if group is None else (GROUP_SHARE * group_quantile[group]
                                       + (1.0 - GROUP_SHARE) * own)
        # a quantile counts from the small magnitude to the large one (ranges pointing down
        # are negative), so a high group quantile means long bones
        small, large = np.array([sorted(r, key=abs) for r in ranges], float).T
        base = (small + (large - small) * q) * scale / 1000.0
        if bone in MIDLINE_BONES:
            offsets[(bone, None)] = base
            continue
        for s in SIDES:
            v = base * (1.0 + ASYMMETRY * rng.uniform(-1, 1))
            offsets[(bone, s)] = v * np.array([LATERAL[s], 1.0, 1.0])
    return Skeleton(offsets=offsets, scale=scale)


def global_rotations(R_local: np.ndarray) -> np.ndarray:
    """(N, 24, 3, 3) local SMPL-tree rotations -> the joints' global rotations."""
    G = np.empty_like(R_local)
    for j, p in enumerate(SMPL_PARENTS):
        G[:, j] = R_local[:, j] if p < 0 else G[:, p] @ R_local[:, j]
    return G


def forward_kinematics(skel: Skeleton, R_local: np.ndarray) -> np.ndarray:
    """(N, 24, 3, 3) rotations -> (N, 23, 3) points relative to the pelvis (metres).

    Points: the 17 H36M joints (H36M17 order), then L/R heel and toe, then L/R seat bone. The
    global orientation (SMPL joint 0) maps the body frame into the world, so the points are in
    world axes. Bones are rigid by construction.
    """
    G = global_rotations(np.asarray(R_local, np.float64))
    n = G.shape[0]
    P = np.zeros((n, 23, 3))
    at = lambda frame, bone, side=None: np.einsum("nij,j->ni", G[:, _S[frame]],
                                                  skel.offset(bone, side))
    J = _J17
    P[:, J["Torso"]] = at("spine1", "torso")
    P[:, J["Neck"]] = P[:, J["Torso"]] + at("spine2", "neck")
    P[:, J["Nose"]] = P[:, J["Neck"]] + at("neck", "nose")
    P[:, J["Head"]] = P[:, J["Nose"]] + at("head", "head")
    for s in SIDES:
        hip, knee, ankle = J[f"{s}_Hip"], J[f"{s}_Knee"], J[f"{s}_Ankle"]
        P[:, hip] = at("pelvis", "hip", s)
        P[:, knee] = P[:, hip] + at(f"{s}_hip", "thigh", s)
        P[:, ankle] = P[:, knee] + at(f"{s}_knee", "shank", s)
        k = SIDES.index(s)
        P[:, 17 + 2 * k] = P[:, ankle] + at(f"{s}_ankle", "heel", s)
        P[:, 18 + 2 * k] = P[:, ankle] + at(f"{s}_ankle", "toe", s)
        P[:, 21 + k] = at("pelvis", "seat", s)
        sh, el, wr = J[f"{s}_Shoulder"], J[f"{s}_Elbow"], J[f"{s}_Wrist"]
        P[:, sh] = P[:, J["Neck"]] + at("spine3", "shoulder", s)
        P[:, el] = P[:, sh] + at(f"{s}_shoulder", "upper_arm", s)
        P[:, wr] = P[:, el] + at(f"{s}_elbow", "forearm", s)
    return P


# ----------------------------------------------------------------------------- body fit
def fit_body(v_template, shapedirs, regressor, rest_points_m, ridge: float = 1e-3,
             max_abs: float = 2.5):
    """Betas (nb,) and a body-frame offset c (3,) fitting the body to a skeleton's rest pose.

    Minimises sum_k |J_k(beta) - J_0(beta) - (P_k + c)|^2 + ridge * |beta|^2 over the H36M-17
    joints, where J(beta) are the body's regressed rest joints (linear in beta) and P the
    skeleton's rest joints relative to its pelvis: one linear least-squares solve. The offset c
    absorbs where the two joint conventions put the pelvis (a marker skeleton's root sits higher
    between the hips than a mesh regressor's). What neither can absorb, the difference between
    marker and mesh joint definitions, stays: the fit is close, not exact, as a real SMPLify
    fit to marker data is.
    """
    reg = np.asarray(regressor, np.float64)
    A = reg @ np.asarray(v_template, np.float64)                           # (17, 3)
    B = np.einsum("kv,vcb->kcb", reg, np.asarray(shapedirs, np.float64))   # (17, 3, nb)
    A, B = A - A[:1], B - B[:1]
    P = np.asarray(rest_points_m, np.float64)[:17]
    P = P - P[:1]
    nb = B.shape[-1]
    M = np.concatenate([B.reshape(-1, nb), -np.tile(np.eye(3), (17, 1))], 1)   # (51, nb+3)
    rhs = (P - A).reshape(-1)
    reg_m = np.diag(np.r_[np.full(nb, ridge), np.zeros(3)])
    x = np.linalg.solve(M.T @ M + reg_m, M.T @ rhs)
    return np.clip(x[:nb], -max_abs, max_abs), x[nb:]


def smpl_translation(skeleton_pelvis, global_orient, rest_root, rest_pelvis_offset):
    """SMPL ``trans`` (N, 3) putting the body's regressed pelvis on the skeleton's pelvis.

    SMPL rotates the body about its root joint ``rest_root`` (3,); the regressed H36M pelvis
    sits ``rest_pelvis_offset`` (3,) from it in the rest pose.
    """
    turned = np.einsum("nij,j->ni", global_orient, rest_pelvis_offset)
    return np.asarray(skeleton_pelvis) - rest_root[None] - turned
