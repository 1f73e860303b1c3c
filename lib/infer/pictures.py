"""infer.py --vis: the 2D input beside the lifted 3D pose, for rows spread over the input, and
for a mesh model (HGN) the coarse meshes of the same rows as .obj files."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lib.geometry.skeleton import skeleton_for_joints
from lib.infer.pipeline import to_model_joints


def sample_rows(prepared, count: int) -> np.ndarray:
    """Up to ``count`` lifted rows, evenly spread over the input."""
    rows = np.nonzero(prepared.valid)[0]
    if count <= 0 or not len(rows):
        return rows[:0]
    return np.unique(rows[np.linspace(0, len(rows) - 1, min(count, len(rows))).round()
                          .astype(int)])


def row_tag(track, r: int) -> str:
    return f"frame{int(track.frame_ids[r]):06d}_person{int(track.person_ids[r])}"


def row_title(track, r: int) -> str:
    """'person 0, frame 12' (a dataset input: its sequence and camera instead of the person)."""
    person = int(track.person_ids[r])
    return f"{track.track_names.get(person, f'person {person}')}, frame {int(track.frame_ids[r])}"


def write_pictures(vis_dir: Path, track, prepared, poses: np.ndarray, sizes, rows) -> list:
    """One PNG per row; ``sizes`` is (N, 2) image width and height per row."""
    from lib.vis.skeleton_plot import InputPoseFigure
    if not len(rows):
        return []
    vis_dir.mkdir(parents=True, exist_ok=True)
    sizes = np.broadcast_to(np.asarray(sizes, np.float64), (len(poses), 2))
    fig = InputPoseFigure(skeleton_for_joints(poses.shape[1]), sizes[rows[0]])
    written = []
    try:
        for r in rows:
            xy = to_model_joints(prepared.xy[r][None], poses.shape[1])[0]
            path = vis_dir / f"{row_tag(track, r)}.png"
            fig.update(xy, sizes[r], poses[r], row_title(track, r))
            fig.save(path)
            written.append(path)
    finally:
        fig.close()
    return written


def write_meshes(mesh_dir: Path, track, meshes: dict, faces: dict, rows) -> list:
    """``mesh_dir/<frame>_<head>.obj`` per row and mesh head (mm, the frame of poses_3d)."""
    from lib.vis.obj import write_obj
    written = []
    if not meshes or not len(rows):
        return written
    mesh_dir.mkdir(parents=True, exist_ok=True)
    for r in rows:
        for head, mesh in meshes.items():
            path = mesh_dir / f"{row_tag(track, r)}_{head}.obj"
            write_obj(path, mesh[r], faces[head])
            written.append(path)
    return written
