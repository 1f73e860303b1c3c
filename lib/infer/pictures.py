"""infer.py --vis: the 2D input beside the lifted 3D pose, for rows spread over the input."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lib.geometry.skeleton import skeleton_for_joints
from lib.infer.pipeline import to_model_joints


def write_pictures(vis_dir: Path, track, prepared, poses: np.ndarray, image_size,
                   count: int) -> list:
    from lib.vis.skeleton_plot import plot_input_and_pose
    rows = np.nonzero(prepared.valid)[0]
    if count <= 0 or not len(rows):
        return []
    rows = rows[np.linspace(0, len(rows) - 1, min(count, len(rows))).round().astype(int)]
    vis_dir.mkdir(parents=True, exist_ok=True)
    skeleton = skeleton_for_joints(poses.shape[1])
    written = []
    for r in np.unique(rows):
        xy = to_model_joints(prepared.xy[r][None], poses.shape[1])[0]
        name = f"frame{int(track.frame_ids[r]):06d}_person{int(track.person_ids[r])}.png"
        plot_input_and_pose(xy, image_size, poses[r], skeleton, vis_dir / name,
                            title=f"frame {int(track.frame_ids[r])}, person "
                                  f"{int(track.person_ids[r])}")
        written.append(vis_dir / name)
    return written
