"""The one in-memory representation every pose-data reader returns and every writer takes.

A :class:`PoseCorpus` is a list of :class:`Sequence` (one subject, action, sub-action, all
frames of the mocap) plus the cameras of each subject. Units: world joints in millimetres,
2D keypoints in pixels, SMPL translation in metres (as in the SMPL fits of Moon et al.).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from lib.geometry.camera import Camera
from lib.geometry.skeleton import ACTION_NAME, SKELETONS


@dataclass
class SmplParams:
    pose: np.ndarray    # (N, 72) axis-angle, global orientation first (SMPL frame -> world)
    shape: np.ndarray   # (N, 10)
    trans: np.ndarray   # (N, 3) metres, world frame
    valid: np.ndarray   # (N,) bool: False where the frame has no SMPL fit

    def __post_init__(self):
        n = len(self.valid)
        for name, arr, width in (("pose", self.pose, 72), ("shape", self.shape, 10),
                                 ("trans", self.trans, 3)):
            if arr.shape != (n, width):
                raise ValueError(f"SMPL '{name}' must have shape ({n}, {width}), got {arr.shape}")


@dataclass
class Sequence:
    subject: int                     # 1, 5, 6, 7, 8, 9, 11 (or any id for imported mocap)
    action_idx: int                  # 2..16, the COCO-style H36M numbering
    subaction_idx: int               # 1 or 2
    joints_world: np.ndarray         # (N, J, 3) mm, world frame
    joint_set: str = "h36m17"        # key of lib.geometry.skeleton.SKELETONS
    frame_idx: Optional[np.ndarray] = None          # (N,) original frame numbers
    keypoints_2d: Dict[int, np.ndarray] = field(default_factory=dict)  # cam -> (N, J2, 2) px
    keypoints_2d_joint_set: Optional[str] = None    # joint set of keypoints_2d
    smpl: Optional[SmplParams] = None               # None: no mesh target (e.g. mocap import)
    # cam -> (N,) bool: the frames that camera has an image of (a sample each); None: every
    # camera has every frame. A camera of the subject absent from the dict has no images.
    camera_frames: Optional[Dict[int, np.ndarray]] = None

    def __post_init__(self):
        if self.joint_set not in SKELETONS:
            raise ValueError(f"unknown joint set '{self.joint_set}'")
        j = SKELETONS[self.joint_set].num_joints
        if self.joints_world.ndim != 3 or self.joints_world.shape[1:] != (j, 3):
            raise ValueError(f"joints_world of {self.key} must have shape (N, {j}, 3), got "
                             f"{self.joints_world.shape}")
        if self.frame_idx is None:
            self.frame_idx = np.arange(len(self.joints_world))
        if len(self.frame_idx) != len(self.joints_world):
            raise ValueError(f"{self.key}: {len(self.frame_idx)} frame indices for "
                             f"{len(self.joints_world)} frames")
        if self.camera_frames is not None:
            self.camera_frames = {int(c): np.asarray(m, dtype=bool)
                                  for c, m in self.camera_frames.items()}
            for c, m in self.camera_frames.items():
                if m.shape != (len(self.joints_world),):
                    raise ValueError(f"{self.key}: camera {c} frame mask has shape {m.shape}, "
                                     f"expected ({len(self.joints_world)},)")
        if self.smpl is not None and len(self.smpl.valid) != len(self.joints_world):
            raise ValueError(f"{self.key}: SMPL parameters for {len(self.smpl.valid)} frames, "
                             f"joints for {len(self.joints_world)}")

    @property
    def key(self) -> tuple:
        return (self.subject, self.action_idx, self.subaction_idx)

    @property
    def action_name(self) -> str:
        return ACTION_NAME.get(self.action_idx, f"act{self.action_idx}")

    @property
    def num_frames(self) -> int:
        return len(self.joints_world)

    def frames_of_camera(self, cam_idx: int) -> np.ndarray:
        """(N,) bool: the frames camera ``cam_idx`` has an image of."""
        if self.camera_frames is None:
            return np.ones(self.num_frames, dtype=bool)
        mask = self.camera_frames.get(int(cam_idx))
        return np.zeros(self.num_frames, dtype=bool) if mask is None else mask

    @property
    def has_mesh(self) -> bool:
        return self.smpl is not None and bool(self.smpl.valid.any())


@dataclass
class PoseCorpus:
    sequences: List[Sequence]
    cameras: Dict[int, Dict[int, Camera]]   # subject -> cam_idx (1..4) -> Camera
    source: str = ""                        # where it came from, for logs and cache keys

    @property
    def subjects(self) -> list:
        return sorted({s.subject for s in self.sequences})

    def select(self, subjects=None, exclude=()) -> "PoseCorpus":
        """Sequences of the given subjects, minus the (subject, action, subaction) keys in exclude."""
        exclude = {tuple(e) for e in exclude}
        seqs = [s for s in self.sequences
                if (subjects is None or s.subject in subjects) and s.key not in exclude]
        return PoseCorpus(seqs, {k: v for k, v in self.cameras.items()
                                 if subjects is None or k in subjects}, self.source)

    def sequence(self, subject, action_idx, subaction_idx) -> Sequence:
        for s in self.sequences:
            if s.key == (subject, action_idx, subaction_idx):
                return s
        raise KeyError((subject, action_idx, subaction_idx))
