"""The one place where poses change units between files and the network.

Encode: 2D pixels -> screen-normalised input (x in [-1, 1], aspect kept, as VideoPose3D and
the originals do); camera-frame millimetres -> root-relative metres (the training targets).
Decode: network metres -> millimetres, re-centred on the root joint (the evaluation protocol:
MPJPE with the root included after aligning roots), optionally with the camera-frame root added
back. The cache builder, evaluation, the mean-pose reference and the pictures all use it, so a
change of convention cannot leave one of them behind.
"""
from __future__ import annotations

import numpy as np
import torch

from lib.geometry.camera import normalize_screen_coordinates

MM_PER_M = 1000.0
ROOT_JOINT = 0          # the pelvis is joint 0 in every joint set of the framework


def encode_input(keypoints_px: np.ndarray, width, height) -> np.ndarray:
    """(N, J, 2) pixels -> float32 normalised screen coordinates."""
    return normalize_screen_coordinates(keypoints_px, width, height).astype(np.float32)


def encode_target(joints_cam_mm: np.ndarray, root_cam_mm: np.ndarray) -> np.ndarray:
    """(N, J, 3) camera-frame mm and (N, 3) root -> float32 root-relative metres."""
    return ((joints_cam_mm - root_cam_mm[:, None]) / MM_PER_M).astype(np.float32)


def encode_root(root_cam_mm: np.ndarray) -> np.ndarray:
    return (root_cam_mm / MM_PER_M).astype(np.float32)


def decode_pose(pose_m, root_m=None):
    """Network output (N, J, 3) metres -> float64 mm, root joint at the origin.

    With ``root_m`` (N, 3) metres the camera-frame root position is added back (absolute
    camera coordinates, e.g. for inference outputs that carry a root estimate).
    Takes and returns either torch tensors or numpy arrays.
    """
    if isinstance(pose_m, torch.Tensor):
        mm = pose_m.double() * MM_PER_M
    else:
        mm = np.asarray(pose_m, np.float64) * MM_PER_M
    mm = mm - mm[:, ROOT_JOINT:ROOT_JOINT + 1]
    if root_m is not None:
        root = (root_m.double() if isinstance(root_m, torch.Tensor)
                else np.asarray(root_m, np.float64)) * MM_PER_M
        mm = mm + root[:, None]
    return mm
