"""Cameras: calibration records, world<->camera transforms, projection, screen normalisation.

Conventions (all functions work on numpy arrays or torch tensors of shape (..., 3)/(..., 2)):
* ``Camera.R`` rotates world into camera axes and ``Camera.t`` is in millimetres, so
  ``X_cam = R @ X_world + t`` (the COCO-style ``_camera.json`` convention).
* The VideoPose3D convention (orientation quaternion + camera centre) converts exactly:
  ``R = rot(q).T`` and ``t = -R @ centre``.
* Pixel coordinates: ``u = fx * x/z + cx``, ``v = fy * y/z + cy``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lib.geometry import h36m_calibration as calib


def _backend(x):
    return torch if isinstance(x, torch.Tensor) else np


# ----------------------------------------------------------------------------- quaternions
def quaternion_to_matrix(q) -> np.ndarray:
    """Rotation matrix of a unit quaternion (w, x, y, z)."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def qrot(q, v):
    """Rotate vectors v (..., 3) by quaternions q (..., 4): v + 2(w(u x v) + u x (u x v))."""
    xp = _backend(v)
    w = q[..., :1]
    u = q[..., 1:]
    cross = (lambda a, b: torch.linalg.cross(a, b, dim=-1)) if xp is torch else np.cross
    uv = cross(u, v)
    uuv = cross(u, uv)
    return v + 2 * (w * uv + uuv)


def qinverse(q):
    sign = q.new_tensor([1, -1, -1, -1]) if isinstance(q, torch.Tensor) else np.array([1, -1, -1, -1])
    return q * sign


# ----------------------------------------------------------------------------- camera record
@dataclass(frozen=True)
class Camera:
    R: np.ndarray            # (3, 3) world -> camera rotation
    t: np.ndarray            # (3,) translation, mm: X_cam = R X_world + t
    f: np.ndarray            # (2,) focal length, pixels
    c: np.ndarray            # (2,) principal point, pixels
    k: np.ndarray            # (3,) radial distortion
    p: np.ndarray            # (2,) tangential distortion
    width: int
    height: int
    name: str = ""

    @property
    def center_world(self) -> np.ndarray:
        """Camera centre in world millimetres."""
        return -self.R.T @ self.t

    @classmethod
    def from_quaternion(cls, orientation, centre_mm, f, c, k=(0, 0, 0), p=(0, 0),
                        width=1000, height=1000, name=""):
        rot = quaternion_to_matrix(orientation)  # camera -> world
        R = rot.T
        t = -R @ np.asarray(centre_mm, dtype=np.float64)
        return cls(R=R, t=t, f=np.asarray(f, np.float64), c=np.asarray(c, np.float64),
                   k=np.asarray(k, np.float64), p=np.asarray(p, np.float64),
                   width=int(width), height=int(height), name=name)

    def world_to_camera(self, X):
        """World points (..., 3) mm -> camera frame (..., 3) mm."""
        R, t = _as(X, self.R), _as(X, self.t)
        return X @ R.T + t

    def camera_to_world(self, X):
        R, t = _as(X, self.R), _as(X, self.t)
        return (X - t) @ R

    def project(self, X_cam, distort: bool = True):
        """Camera-frame points (..., 3) -> pixels (..., 2), optionally with lens distortion."""
        return project_to_pixels(X_cam, self.f, self.c, self.k if distort else None,
                                 self.p if distort else None)

    def to_json(self) -> dict:
        """The ``Human36M_subject{S}_camera.json`` record of this camera."""
        return {"R": self.R.tolist(), "t": self.t.tolist(), "f": self.f.tolist(),
                "c": self.c.tolist()}


def _as(ref, arr):
    if isinstance(ref, torch.Tensor):
        return torch.as_tensor(arr, dtype=ref.dtype, device=ref.device)
    return np.asarray(arr, dtype=np.result_type(ref, np.float32))


def project_to_pixels(X_cam, f, c, k=None, p=None):
    """Pinhole projection with the Brown radial (k1..k3) and tangential (p1, p2) model.

    Distortion follows VideoPose3D's ``project_to_2d`` exactly, including the clamp of the
    normalised coordinates to [-1, 1] (points far outside the field of view).
    """
    xp = _backend(X_cam)
    f, c = _as(X_cam, f), _as(X_cam, c)
    xy = X_cam[..., :2] / X_cam[..., 2:3]
    if k is None and p is None:
        return xy * f + c
    xy = xp.clip(xy, -1, 1) if xp is np else torch.clamp(xy, -1, 1)
    k = _as(X_cam, k if k is not None else (0.0, 0.0, 0.0))
    p = _as(X_cam, p if p is not None else (0.0, 0.0))
    r2 = (xy ** 2).sum(-1, keepdims=True) if xp is np else (xy ** 2).sum(-1, keepdim=True)
    radial = 1 + k[0] * r2 + k[1] * r2 ** 2 + k[2] * r2 ** 3
    tan = (xy * p).sum(-1, keepdims=True) if xp is np else (xy * p).sum(-1, keepdim=True)
    xy_d = xy * (radial + tan) + p * r2
    return xy_d * f + c


def normalize_screen_coordinates(X, w, h):
    """Pixels -> [-1, 1] along x, keeping the aspect ratio (y spans +-h/w)."""
    assert X.shape[-1] == 2
    return X / w * 2 - _as(X, [1.0, h / w])


def image_coordinates(X, w, h):
    """Inverse of :func:`normalize_screen_coordinates`."""
    assert X.shape[-1] == 2
    return (X + _as(X, [1.0, h / w])) * w / 2


# ----------------------------------------------------------------------------- H36M cameras
NUM_CAMERAS = 4


def h36m_camera(subject: int, cam_idx: int) -> Camera:
    """The published calibration of camera ``cam_idx`` (1..4) for subject ``subject``."""
    if subject not in calib.EXTRINSICS:
        raise ValueError(f"no Human3.6M calibration for subject S{subject}; "
                         f"known: {sorted(calib.EXTRINSICS)}")
    if not 1 <= cam_idx <= NUM_CAMERAS:
        raise ValueError(f"Human3.6M camera index must be 1..4, got {cam_idx}")
    intr = calib.INTRINSICS[cam_idx - 1]
    orientation, centre = calib.EXTRINSICS[subject][cam_idx - 1]
    return Camera.from_quaternion(
        orientation, centre, f=intr["focal_length"], c=intr["center"],
        k=intr["radial_distortion"], p=intr["tangential_distortion"],
        width=intr["res_w"], height=intr["res_h"], name=intr["id"])


def h36m_cameras(subject: int) -> dict:
    """cam_idx (1..4) -> Camera for one subject."""
    return {i: h36m_camera(subject, i) for i in range(1, NUM_CAMERAS + 1)}
