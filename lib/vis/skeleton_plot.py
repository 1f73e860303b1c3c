"""3D skeleton pictures (prediction vs ground truth) for vis/ — headless, never blocking."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_pose_pair(pred_mm, gt_mm, skeleton, path, title=""):
    """Camera-frame root-relative poses (J,3) in mm, drawn with y down like the image."""
    fig = plt.figure(figsize=(8, 4), dpi=100)
    for k, (pose, name, color) in enumerate(((gt_mm, "ground truth", "tab:green"),
                                             (pred_mm, "prediction", "tab:blue"))):
        ax = fig.add_subplot(1, 2, k + 1, projection="3d")
        pose = np.asarray(pose)
        for parent, child in skeleton.bones:
            side = "tab:red" if child in skeleton.joints_right else color
            xs, ys, zs = pose[[parent, child]].T
            ax.plot(xs, zs, -ys, color=side, linewidth=2)
        ax.scatter(pose[:, 0], pose[:, 2], -pose[:, 1], s=6, color="k")
        r = 1000
        ax.set_xlim(-r, r)
        ax.set_ylim(-r, r)
        ax.set_zlim(-r, r)
        ax.set_xlabel("x")
        ax.set_ylabel("z (depth)")
        ax.set_zlabel("-y")
        ax.set_title(name)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
