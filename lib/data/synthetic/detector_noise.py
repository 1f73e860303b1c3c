"""CPN-like 2D detections: ground-truth keypoints plus realistic, seeded detector errors.

What the noise imitates (cascaded pyramid network fine-tuned on Human3.6M): an average error
of a few pixels on 1000-px frames, larger on the extremities than on the trunk, errors that
drift slowly rather than flicker (consecutive video frames look alike), occasional gross
misses, and rare left/right confusions of a limb.

The model, per camera and joint:
* an AR(1) process e_t = rho e_{t-1} + sqrt(1 - rho^2) sigma_j w_t, w_t ~ N(0, I2), so the
  stationary std per axis is sigma_j (:data:`JOINT_STD_PX`) and the error decorrelates over
  about 1 / (1 - rho) frames;
* outliers: with probability ``outlier_rate`` per (frame, joint) a burst of 1..5 frames is
  displaced by a random vector of ``outlier_px`` pixels;
* swaps: with probability ``swap_rate`` per (frame, limb) the left and right joints of that
  limb exchange places for 2..10 frames.
Mean 2D error with the defaults is ~6 px (sigma * sqrt(pi/2) ~ 1.25 sigma, plus the tails).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lib.geometry.skeleton import H36M17

# Stationary error std per axis in pixels, larger on the extremities; in H36M17's joint order.
_STD_PX = {"Pelvis": 3.5, "R_Hip": 3.5, "R_Knee": 4.5, "R_Ankle": 6.0, "L_Hip": 3.5,
           "L_Knee": 4.5, "L_Ankle": 6.0, "Torso": 4.0, "Neck": 3.5, "Nose": 3.5, "Head": 4.0,
           "L_Shoulder": 3.5, "L_Elbow": 5.5, "L_Wrist": 7.5, "R_Shoulder": 3.5,
           "R_Elbow": 5.5, "R_Wrist": 7.5}
JOINT_STD_PX = np.array([_STD_PX[name] for name in H36M17.joint_names])


def _limb(*names):
    """(left joints, right joints) of a limb named by its left-side joints."""
    return (tuple(H36M17.index(f"L_{n}") for n in names),
            tuple(H36M17.index(f"R_{n}") for n in names))


# Limbs whose left/right joints a detector confuses.
SWAP_LIMBS = (_limb("Hip", "Knee", "Ankle"), _limb("Elbow", "Wrist"), _limb("Shoulder"))


@dataclass(frozen=True)
class DetectorNoise:
    rho: float = 0.9                # AR(1) coefficient per frame at 50 fps
    scale: float = 1.0              # multiplies JOINT_STD_PX
    outlier_rate: float = 0.01      # per (frame, joint) start probability of a gross miss
    outlier_px: tuple = (15.0, 60.0)
    swap_rate: float = 0.001        # per (frame, limb) start probability of a left/right swap

    def apply(self, keypoints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(N, 17, 2) pixel keypoints -> noisy copy (float64); the input is not modified."""
        kp = np.asarray(keypoints, np.float64)
        if kp.ndim != 3 or kp.shape[1:] != (len(JOINT_STD_PX), 2):
            raise ValueError(f"detector noise needs (N, 17, 2) H36M-17 keypoints, got {kp.shape}")
        n, j, _ = kp.shape
        sigma = self.scale * JOINT_STD_PX[None, :, None]
        innov = rng.standard_normal((n, j, 2)) * sigma
        err = np.empty_like(innov)
        err[0] = innov[0]
        gain = np.sqrt(1.0 - self.rho ** 2)
        for i in range(1, n):
            err[i] = self.rho * err[i - 1] + gain * innov[i]
        out = kp + err
        self._add_outliers(out, rng)
        self._add_swaps(out, rng)
        return out

    def _add_outliers(self, out, rng):
        n, j, _ = out.shape
        starts = np.argwhere(rng.random((n, j)) < self.outlier_rate)
        for f, joint in starts:
            length = int(rng.integers(1, 6))
            angle = rng.uniform(0, 2 * np.pi)
            radius = rng.uniform(*self.outlier_px)
            out[f:f + length, joint] += radius * np.array([np.cos(angle), np.sin(angle)])

    def _add_swaps(self, out, rng):
        n = out.shape[0]
        for left, right in SWAP_LIMBS:
            for f in np.flatnonzero(rng.random(n) < self.swap_rate):
                sl = slice(f, f + int(rng.integers(2, 11)))
                lhs, rhs = out[sl][:, list(left)].copy(), out[sl][:, list(right)].copy()
                out[sl, list(left)] = rhs
                out[sl, list(right)] = lhs
