"""Skeleton pictures for vis/ (prediction vs ground truth; 2D input vs lifted 3D) — headless."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

LIMIT_MM = 1000      # fixed 3D axes, so pictures of different frames compare at a glance


def _draw_3d(ax, pose, skeleton, color, title):
    """Camera-frame root-relative pose (J, 3) mm, drawn with y down like the image."""
    pose = np.asarray(pose)
    for parent, child in skeleton.bones:
        side = "tab:red" if child in skeleton.joints_right else color
        xs, ys, zs = pose[[parent, child]].T
        ax.plot(xs, zs, -ys, color=side, linewidth=2)
    ax.scatter(pose[:, 0], pose[:, 2], -pose[:, 1], s=6, color="k")
    for setter in (ax.set_xlim, ax.set_ylim, ax.set_zlim):
        setter(-LIMIT_MM, LIMIT_MM)
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("z (depth, mm)")
    ax.set_zlabel("-y (mm)")
    ax.set_title(title)


def _save(fig, path, title):
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_pose_pair(pred_mm, gt_mm, skeleton, path, title=""):
    fig = plt.figure(figsize=(8, 4), dpi=100)
    for k, (pose, name, color) in enumerate(((gt_mm, "ground truth", "tab:green"),
                                             (pred_mm, "prediction", "tab:blue"))):
        _draw_3d(fig.add_subplot(1, 2, k + 1, projection="3d"), pose, skeleton, color, name)
    _save(fig, path, title)


def plot_input_and_pose(xy_px, image_size, pose_mm, skeleton, path, title=""):
    """The 2D input (H36M-17 pixels, image axes) beside the lifted 3D pose; right side red."""
    fig = plt.figure(figsize=(8, 4), dpi=100)
    ax = fig.add_subplot(1, 2, 1)
    xy = np.asarray(xy_px)
    for parent, child in skeleton.bones:
        side = "tab:red" if child in skeleton.joints_right else "tab:blue"
        ax.plot(xy[[parent, child], 0], xy[[parent, child], 1], color=side, linewidth=2)
    ax.scatter(xy[:, 0], xy[:, 1], s=6, color="k")
    w, h = image_size
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_aspect("equal")
    ax.set_title("2D input (px)")
    _draw_3d(fig.add_subplot(1, 2, 2, projection="3d"), pose_mm, skeleton, "tab:blue",
             "3D (mm)")
    _save(fig, path, title)
