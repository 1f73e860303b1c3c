"""TEST.vis outputs: skeleton pictures and, for mesh models, predicted and GT coarse meshes."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lib.data import codec
from lib.geometry.skeleton import skeleton_for_joints
from lib.vis.obj import coarse_faces, write_obj
from lib.vis.skeleton_plot import plot_pose_pair


def pick_samples(errors: np.ndarray, count: int) -> np.ndarray:
    """Spread over the error range: best, worst and evenly spaced ranks between."""
    order = np.argsort(errors, kind="stable")
    if count >= len(order):
        return order
    return order[np.linspace(0, len(order) - 1, count).round().astype(int)]


def level_faces(ctx, level) -> np.ndarray:
    """Triangles of a coarse level, from the body model's faces and the cluster assignment."""
    hierarchy, _, _ = ctx.mesh_levels()
    pool = hierarchy.full_to_level[level.index]
    pool = pool.tocsr() if hasattr(pool, "tocsr") else pool
    cluster = np.asarray(pool.argmax(axis=1)).ravel()
    return coarse_faces(ctx.body_model().faces, cluster)


def mesh_faces(ctx) -> dict:
    """{head: triangles} of a mesh model's coarse outputs (``mesh_fine``, ``mesh_mid``)."""
    _, fine, mid = ctx.mesh_levels()
    return {"mesh_fine": level_faces(ctx, fine), "mesh_mid": level_faces(ctx, mid)}


def write_visuals(cfg, ctx, dataset, pred: dict, metrics: dict, vis_dir) -> list:
    vis_dir = Path(vis_dir)
    skeleton = skeleton_for_joints(dataset.num_joints)
    idx = pick_samples(metrics["per_sample_mpjpe"], cfg.TEST.vis_samples)
    written = []
    gt = codec.decode_pose(dataset.tensors["target_3d"].numpy())
    pose = codec.decode_pose(pred["pose"].numpy())
    faces = mesh_faces(ctx) if "mesh_fine" in pred else {}
    for i in idx:
        t = dataset.tensors
        tag = (f"S{int(t['subject'][i])}_act{int(t['action'][i]):02d}_sub{int(t['subaction'][i])}"
               f"_cam{int(t['camera'][i])}_f{int(t['frame'][i]):05d}")
        err = metrics["per_sample_mpjpe"][i]
        path = vis_dir / f"{tag}_skeleton.png"
        plot_pose_pair(pose[i], gt[i], skeleton, path, title=f"{tag}  MPJPE {err:.1f} mm")
        written.append(path)
        for name, f in faces.items():
            p = vis_dir / f"{tag}_{name}_pred.obj"
            write_obj(p, pred[name][i].numpy(), f)
            written.append(p)
            if bool(t["has_mesh"][i]):
                g = vis_dir / f"{tag}_{name}_gt.obj"
                write_obj(g, t[name][i].numpy(), f)
                written.append(g)
    return written
