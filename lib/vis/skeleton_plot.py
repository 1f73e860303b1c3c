"""Skeleton pictures for vis/ (prediction vs ground truth; 2D input vs lifted 3D) — headless."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

LIMIT_MM = 1000      # fixed 3D axes, so pictures of different frames compare at a glance


def _bone_colors(skeleton, left):
    return ["tab:red" if child in skeleton.joints_right else left for _, child in skeleton.bones]


def _style_3d(ax, title):
    """Fixed limits (mm) and labels: x right, depth into the picture, up = -y (image down)."""
    for setter in (ax.set_xlim, ax.set_ylim, ax.set_zlim):
        setter(-LIMIT_MM, LIMIT_MM)
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("z (depth, mm)")
    ax.set_zlabel("-y (mm)")
    ax.set_title(title)


def _draw_3d(ax, pose, skeleton, color, title):
    """Camera-frame root-relative pose (J, 3) mm, drawn with y down like the image."""
    pose = np.asarray(pose)
    for (parent, child), side in zip(skeleton.bones, _bone_colors(skeleton, color)):
        xs, ys, zs = pose[[parent, child]].T
        ax.plot(xs, zs, -ys, color=side, linewidth=2)
    ax.scatter(pose[:, 0], pose[:, 2], -pose[:, 1], s=6, color="k")
    _style_3d(ax, title)


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


class InputPoseFigure:
    """The 2D input (pixels, image axes) beside the lifted 3D pose (mm, fixed axes), right side
    red: one figure whose artists are updated per frame, for the --vis pictures and the video.
    """

    def __init__(self, skeleton, image_size=None):
        self.skeleton = skeleton
        self.fig = plt.figure(figsize=(8, 4), dpi=100)
        colors = _bone_colors(skeleton, "tab:blue")
        self.ax2d = self.fig.add_subplot(1, 2, 1)
        self.bones2d = [self.ax2d.plot([], [], color=c, linewidth=2)[0] for c in colors]
        self.joints2d = self.ax2d.plot([], [], "o", markersize=2.5, color="k")[0]
        self.ax2d.set_aspect("equal")
        self.ax2d.set_title("2D input (px)")
        self.ax3d = self.fig.add_subplot(1, 2, 2, projection="3d")
        self.bones3d = [self.ax3d.plot([], [], [], color=c, linewidth=2)[0] for c in colors]
        self.joints3d = self.ax3d.plot([], [], [], "o", markersize=2.5, color="k")[0]
        _style_3d(self.ax3d, "3D (mm)")
        self.title = self.fig.suptitle(" ")
        self.size = None
        self._background = None     # the drawn figure without the moving artists (rgb())
        self._set_size((1000, 1000) if image_size is None else image_size)
        self.fig.tight_layout()

    @property
    def _moving(self):
        return [*self.bones2d, self.joints2d, *self.bones3d, self.joints3d, self.title]

    def _set_size(self, size):
        size = tuple(float(v) for v in size)
        if size != self.size:
            self.ax2d.set_xlim(0, size[0])
            self.ax2d.set_ylim(size[1], 0)
            self.size = size
            self._background = None

    def update(self, xy_px, image_size, pose_mm, title=""):
        """Draw one frame: (J, 2) pixels, (width, height), (J, 3) mm; NaN joints are left out."""
        xy, pose = np.asarray(xy_px, np.float64), np.asarray(pose_mm, np.float64)
        self._set_size(image_size)
        for (parent, child), b2, b3 in zip(self.skeleton.bones, self.bones2d, self.bones3d):
            b2.set_data(xy[[parent, child], 0], xy[[parent, child], 1])
            b3.set_data_3d(pose[[parent, child], 0], pose[[parent, child], 2],
                           -pose[[parent, child], 1])
        self.joints2d.set_data(xy[:, 0], xy[:, 1])
        self.joints3d.set_data_3d(pose[:, 0], pose[:, 2], -pose[:, 1])
        self.title.set_text(title or " ")

    def rgb(self) -> np.ndarray:
        """The drawn frame as (H, W, 3) uint8. The axes are drawn once; each frame restores
        them and draws only the moving artists (blitting: several times faster)."""
        canvas = self.fig.canvas
        if self._background is None:
            for artist in self._moving:
                artist.set_animated(True)
            canvas.draw()
            self._background = canvas.copy_from_bbox(self.fig.bbox)
        canvas.restore_region(self._background)
        for artist in self._moving:
            self.fig.draw_artist(artist)
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()

    def save(self, path):
        for artist in self._moving:
            artist.set_animated(False)
        self._background = None
        self.fig.savefig(path)

    def close(self):
        plt.close(self.fig)


def plot_input_and_pose(xy_px, image_size, pose_mm, skeleton, path, title=""):
    """One picture of :class:`InputPoseFigure`."""
    fig = InputPoseFigure(skeleton, image_size)
    try:
        fig.update(xy_px, image_size, pose_mm, title)
        fig.save(path)
    finally:
        fig.close()
