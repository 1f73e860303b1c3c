"""Joint sets used in this framework, in one place.

Three orders matter:
* ``H36M32``: the 32 joints of the raw Human3.6M mocap (VideoPose3D order).
* ``H36M17``: the 17 joints of HGN / Pose2Mesh / VideoPose3D (Pelvis ... R_Wrist).
* ``H36M16``: the 16 joints of SemGCN / GraphSH (H36M17 without Neck/Nose).

Reductions keep joints by index; when a joint is dropped its children re-attach to the
nearest kept ancestor, and the shoulders are re-attached to the thorax, as VideoPose3D does.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Skeleton:
    name: str
    joint_names: tuple
    parents: tuple
    joints_left: tuple
    joints_right: tuple
    hips: tuple          # (left hip, right hip) indices: the body frame's left-right axis

    @property
    def num_joints(self) -> int:
        return len(self.parents)

    @property
    def flip_pairs(self) -> tuple:
        """(left, right) index pairs, used for horizontal flip augmentation."""
        return tuple(zip(self.joints_left, self.joints_right))

    @property
    def flip_permutation(self) -> np.ndarray:
        """Index array that swaps every left joint with its right twin."""
        perm = np.arange(self.num_joints)
        for left, right in self.flip_pairs:
            perm[left], perm[right] = right, left
        return perm

    @property
    def bones(self) -> tuple:
        """(parent, child) pairs, in child order."""
        return tuple((p, c) for c, p in enumerate(self.parents) if p >= 0)

    def index(self, name: str) -> int:
        return self.joint_names.index(name)


H36M32 = Skeleton(
    name="h36m32",
    joint_names=(
        "Hip", "RHip", "RKnee", "RFoot", "RToe", "RSite", "LHip", "LKnee", "LFoot", "LToe",
        "LSite", "Spine", "Thorax", "Neck/Nose", "Head", "HeadSite", "LShoulderAnchor",
        "LShoulder", "LElbow", "LWrist", "LHandAnchor", "LHandThumb", "LHandSite",
        "LHandThumbSite", "RShoulderAnchor", "RShoulder", "RElbow", "RWrist", "RHandAnchor",
        "RHandThumb", "RHandSite", "RHandThumbSite",
    ),
    parents=(-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14, 12, 16, 17, 18, 19, 20,
             19, 22, 12, 24, 25, 26, 27, 28, 27, 30),
    joints_left=(6, 7, 8, 9, 10, 16, 17, 18, 19, 20, 21, 22, 23),
    joints_right=(1, 2, 3, 4, 5, 24, 25, 26, 27, 28, 29, 30, 31),
    hips=(6, 1),
)

H36M17 = Skeleton(
    name="h36m17",
    joint_names=("Pelvis", "R_Hip", "R_Knee", "R_Ankle", "L_Hip", "L_Knee", "L_Ankle",
                 "Torso", "Neck", "Nose", "Head", "L_Shoulder", "L_Elbow", "L_Wrist",
                 "R_Shoulder", "R_Elbow", "R_Wrist"),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    joints_left=(4, 5, 6, 11, 12, 13),
    joints_right=(1, 2, 3, 14, 15, 16),
    hips=(4, 1),
)

H36M16 = Skeleton(
    name="h36m16",
    joint_names=("Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine",
                 "Thorax", "Head", "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow",
                 "RWrist"),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 8, 10, 11, 8, 13, 14),
    joints_left=(4, 5, 6, 10, 11, 12),
    joints_right=(1, 2, 3, 13, 14, 15),
    hips=(4, 1),
)

SKELETONS = {s.name: s for s in (H36M32, H36M17, H36M16)}

# The joint set a lifting model of 16 or 17 joints takes (DATASET.num_joints -> set name).
LIFTING_JOINT_SETS = {H36M16.num_joints: H36M16.name, H36M17.num_joints: H36M17.name}

# Kept indices of each reduction (index into the source order).
KEEP_32_TO_17 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
KEEP_17_TO_16 = (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16)
KEEP_32_TO_16 = tuple(KEEP_32_TO_17[i] for i in KEEP_17_TO_16)

_KEEP = {("h36m32", "h36m17"): KEEP_32_TO_17,
         ("h36m17", "h36m16"): KEEP_17_TO_16,
         ("h36m32", "h36m16"): KEEP_32_TO_16}


def facing_direction(joints17: np.ndarray) -> np.ndarray:
    """(N, 3) unit horizontal direction that H36M17 poses (N, 17, 3) in a z-up world face:
    the hip line (right hip -> left hip) x up. Zero where the hip line is vertical."""
    x = np.asarray(joints17, np.float64)
    left = x[:, H36M17.joint_names.index("L_Hip")] - x[:, H36M17.joint_names.index("R_Hip")]
    forward = np.cross(left, [0.0, 0.0, 1.0])
    return forward / np.maximum(np.linalg.norm(forward, axis=-1, keepdims=True), 1e-9)


def reduce_parents(parents, keep, reattach_to=None):
    """Parents of the kept joints, re-attaching children of dropped joints upwards.

    ``reattach_to`` maps a kept source index to a forced new parent (source index), which is
    how the shoulders end up on the thorax.
    """
    keep = list(keep)
    new_index = {old: new for new, old in enumerate(keep)}
    out = []
    for old in keep:
        p = parents[old]
        if reattach_to and old in reattach_to:
            p = reattach_to[old]
        while p >= 0 and p not in new_index:
            p = parents[p]
        out.append(new_index[p] if p >= 0 else -1)
    return tuple(out)


def convert_joints(joints: np.ndarray, source: str, target: str) -> np.ndarray:
    """Reduce an (..., J, C) array from one joint set to a smaller one."""
    if source == target:
        return joints
    try:
        keep = _KEEP[(source, target)]
    except KeyError:
        raise ValueError(f"no reduction from joint set '{source}' to '{target}'; "
                         f"known: {sorted(_KEEP)}") from None
    expected = SKELETONS[source].num_joints
    if joints.shape[-2] != expected:
        raise ValueError(f"joint set '{source}' has {expected} joints, got array of shape "
                         f"{tuple(joints.shape)}")
    return joints[..., list(keep), :]


def skeleton_for_joints(num_joints: int) -> Skeleton:
    for s in SKELETONS.values():
        if s.num_joints == num_joints:
            return s
    raise ValueError(f"no H36M joint set has {num_joints} joints (known: 32, 17, 16)")


# The 15 Human3.6M actions, by the action_idx of the COCO-style annotations (2..16).
ACTIONS = ("Directions", "Discussion", "Eating", "Greeting", "Phoning", "Posing",
           "Purchases", "Sitting", "SittingDown", "Smoking", "Photo", "Waiting", "Walking",
           "WalkDog", "WalkTogether")
ACTION_IDX = {name: i + 2 for i, name in enumerate(ACTIONS)}
ACTION_NAME = {i + 2: name for i, name in enumerate(ACTIONS)}
ACTION_ALIASES = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog"}

TRAIN_SUBJECTS = (1, 5, 6, 7, 8)
TEST_SUBJECTS = (9, 11)
ALL_SUBJECTS = TRAIN_SUBJECTS + TEST_SUBJECTS
# The three S9 sequences with corrupted ground truth: (subject, action_idx, subaction_idx).
CORRUPTED_SEQUENCES = ((9, 5, 2), (9, 10, 2), (9, 13, 1))
H36M_FPS = 50.0                  # mocap and video frame rate


def canonical_action(name: str) -> str:
    """'WalkingDog 1' -> 'WalkDog' ; raises on names that are not H36M actions."""
    base = name.split(" ")[0]
    base = ACTION_ALIASES.get(base, base)
    if base not in ACTION_IDX:
        raise ValueError(f"unknown Human3.6M action '{name}'; known: {', '.join(ACTIONS)}")
    return base
