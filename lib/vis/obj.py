"""Wavefront .obj meshes (v lines, 1-based f lines)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def write_obj(path, vertices, faces=None):
    vertices = np.asarray(vertices, dtype=np.float64)
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices]
    if faces is not None:
        faces = np.asarray(faces, dtype=np.int64)
        if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
            raise ValueError(f"faces index outside 0..{len(vertices) - 1}")
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces]
    Path(path).write_text("\n".join(lines) + "\n")


def coarse_faces(faces, cluster_of_vertex) -> np.ndarray:
    """Faces of a coarsened mesh: full-mesh triangles whose three clusters differ, deduplicated."""
    c = np.asarray(cluster_of_vertex)[np.asarray(faces)]
    keep = (c[:, 0] != c[:, 1]) & (c[:, 1] != c[:, 2]) & (c[:, 0] != c[:, 2])
    c = c[keep]
    key = np.sort(c, axis=1)
    _, first = np.unique(key, axis=0, return_index=True)
    return c[np.sort(first)]
