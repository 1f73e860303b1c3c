"""A synthetic SMPL-format body model and a matching H36M-17 joint regressor.

SMPL and the H36M regressor are licensed downloads. This module writes stand-ins with the
official keys, shapes, dtypes and 24-joint kinematic tree, so the whole pipeline (loading with
chumpy through ``smplpytorch``, skinning, mesh coarsening, joint regression) runs unchanged on
either. The mesh is box-modelled (``lib.body.mesh_build``); everything else is derived from it:

* joints: SMPL-like T-pose positions, reproduced by a sparse non-negative ``J_regressor``;
* skinning weights: soft distances to the bones of each joint, restricted to body parts;
* 10 shape blend shapes: smooth, orthogonalised, SMPL-sized (beta in [-3, 3] ~ +-10 cm height);
* 207 pose blend shapes: small correctives near each joint, linear in the entries of (R - I).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.optimize import nnls
from scipy.spatial import cKDTree

from lib.body import portable_pickle
from lib.body.mesh_build import PART_ID, build_body_mesh

NUM_JOINTS = 24
NUM_BETAS = 10
NUM_POSE_BASIS = 207
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
SMPL_JOINT_NAMES = ("pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee",
                    "spine2", "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot",
                    "neck", "left_collar", "right_collar", "head", "left_shoulder",
                    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                    "left_hand", "right_hand")
MODEL_FILES = {
    "neutral": "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl",
    "female": "basicModel_f_lbs_10_207_0_v1.0.0.pkl",
    "male": "basicModel_m_lbs_10_207_0_v1.0.0.pkl",
}
H36M_REGRESSOR_FILE = "J_regressor_h36m_correct.npy"
ROOT_SENTINEL = 4294967295  # the official files store the root's parent as uint32(-1)

# Left-side and midline joint positions (metres, T-pose); the right side mirrors x.
_JOINTS_LEFT = {
    0: (0.000, -0.215, 0.000), 1: (0.072, -0.300, 0.000), 3: (0.000, -0.100, -0.010),
    4: (0.104, -0.705, 0.025), 6: (0.000, 0.030, 0.000), 7: (0.089, -1.100, -0.015),
    9: (0.000, 0.095, 0.005), 10: (0.110, -1.160, 0.105), 12: (0.000, 0.290, -0.005),
    13: (0.075, 0.200, -0.005), 15: (0.000, 0.390, 0.030), 16: (0.170, 0.220, -0.005),
    18: (0.440, 0.208, -0.012), 20: (0.700, 0.214, -0.013), 22: (0.790, 0.210, -0.018),
}
_MIRROR = {2: 1, 5: 4, 8: 7, 11: 10, 14: 13, 17: 16, 19: 18, 21: 20, 23: 22}
# Leaf joints get a bone towards a tip so that their skin is weighted to them.
_LEAF_TIPS = {10: (0.0, -0.005, 0.07), 11: (0.0, -0.005, 0.07), 15: (0.0, 0.13, 0.0),
              22: (0.08, 0.0, 0.0), 23: (-0.08, 0.0, 0.0)}

_T, _H, _AL, _AR, _LL, _LR = (PART_ID[p] for p in ("torso", "head", "arm_l", "arm_r",
                                                      "leg_l", "leg_r"))
# Body parts whose vertices may be skinned to / regressed from each joint.
JOINT_PARTS = {
    0: (_T, _LL, _LR), 1: (_LL, _T), 2: (_LR, _T), 3: (_T,), 4: (_LL,), 5: (_LR,), 6: (_T,),
    7: (_LL,), 8: (_LR,), 9: (_T, _AL, _AR, _H), 10: (_LL,), 11: (_LR,), 12: (_H, _T),
    13: (_T, _AL), 14: (_T, _AR), 15: (_H,), 16: (_AL, _T), 17: (_AR, _T), 18: (_AL,),
    19: (_AR,), 20: (_AL,), 21: (_AR,), 22: (_AL,), 23: (_AR,),
}


def target_joints() -> np.ndarray:
    """The intended 24 SMPL joint positions of the template (T-pose, metres)."""
    J = np.zeros((NUM_JOINTS, 3))
    for j, p in _JOINTS_LEFT.items():
        J[j] = p
    for r, l in _MIRROR.items():
        J[r] = J[l] * (-1.0, 1.0, 1.0)
    return J


# ----------------------------------------------------------------------------- helpers
def _vertex_adjacency(faces: np.ndarray, n: int) -> sp.csr_matrix:
    i = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]])
    j = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])
    A = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)).tocsr()
    A = ((A + A.T) > 0).astype(np.float64)
    return sp.diags(1.0 / np.asarray(A.sum(axis=1)).ravel()) @ A


def _smooth(values: np.ndarray, mean_op: sp.csr_matrix, iterations: int, lam=0.5) -> np.ndarray:
    """Uniform Laplacian smoothing over the mesh (keeps fields smooth across part seams)."""
    flat = values.reshape(len(values), -1)
    for _ in range(iterations):
        flat = (1 - lam) * flat + lam * (mean_op @ flat)
    return flat.reshape(values.shape)


def _segment_distance(points, a, b):
    """Distances (P,) of points to the segment a-b, and the closest points (P, 3)."""
    ab = b - a
    t = np.clip(((points - a) @ ab) / max(ab @ ab, 1e-12), 0.0, 1.0)
    q = a + t[:, None] * ab
    return np.linalg.norm(points - q, axis=1), q


def _bones(J: np.ndarray):
    """(joint, start, end) segments: a joint moves the bones to its children (or to a tip)."""
    out = []
    for j in range(NUM_JOINTS):
        children = [c for c in range(NUM_JOINTS) if SMPL_PARENTS[c] == j]
        for c in children:
            out.append((j, J[j], J[c]))
        if not children:
            out.append((j, J[j], J[j] + np.asarray(_LEAF_TIPS[j])))
    return out


def _vertex_part_mask(face_part: np.ndarray, faces: np.ndarray, n: int) -> np.ndarray:
    """(V, num_parts) bool: the parts of the faces around each vertex."""
    mask = np.zeros((n, int(face_part.max()) + 1), dtype=bool)
    for k in range(3):
        mask[faces[:, k], face_part] = True
    return mask


def _allowed(part_mask: np.ndarray, joint: int) -> np.ndarray:
    return part_mask[:, list(JOINT_PARTS[joint])].any(axis=1)


def _spread_selection(vertices, candidates, point, k, radius_floor=0.05, ring_factor=2.0):
    """``k`` candidate vertices around ``point`` whose directions from it spread out widely.

    Surrounding the point makes it (nearly) a convex combination of the chosen vertices.
    """
    d = np.linalg.norm(vertices[candidates] - point, axis=1)
    r_max = max(ring_factor * d.min(), radius_floor)
    pool = candidates[d <= r_max]
    dp = d[d <= r_max]
    dirs = (vertices[pool] - point) / np.maximum(dp, 1e-12)[:, None]
    chosen = [int(np.argmin(dp))]
    for _ in range(min(k, len(pool)) - 1):
        align = (dirs @ dirs[chosen].T).max(axis=1) + 0.2 * dp / r_max
        align[chosen] = np.inf
        chosen.append(int(np.argmin(align)))
    return pool[chosen]


def _convex_weights(vertices, idx, point, smooth=1e-3, sum_weight=10.0):
    """Non-negative weights summing to 1 with sum_i w_i v_i ~ point (NNLS, mildly uniform)."""
    k = len(idx)
    A = np.vstack([vertices[idx].T, sum_weight * np.ones((1, k)), np.sqrt(smooth) * np.eye(k)])
    b = np.concatenate([point, [sum_weight], np.full(k, np.sqrt(smooth) / k)])
    w, _ = nnls(A, b)
    w[w < 1e-4] = 0.0
    return w / w.sum()


def _regressor_rows(vertices, part_mask, targets, joint_parts, k, smooth):
    rows = np.zeros((len(targets), len(vertices)))
    for j, (p, parts) in enumerate(zip(targets, joint_parts)):
        cand = np.flatnonzero(part_mask[:, list(parts)].any(axis=1))
        idx = _spread_selection(vertices, cand, p, k)
        rows[j, idx] = _convex_weights(vertices, idx, p, smooth=smooth)
    return rows


# ----------------------------------------------------------------------------- model parts
def _skinning_weights(v, J, part_mask, mean_op, temperature=0.015, max_influences=4):
    """Soft nearest-bone weights (V, 24), restricted to each joint's body parts."""
    n = len(v)
    dist = np.full((n, NUM_JOINTS), np.inf)
    for j, a, b in _bones(J):
        d, _ = _segment_distance(v, a, b)
        dist[:, j] = np.minimum(dist[:, j], d)
    for j in range(NUM_JOINTS):
        dist[~_allowed(part_mask, j), j] = np.inf
    logits = -(dist - dist.min(axis=1, keepdims=True)) / temperature
    W = np.exp(logits)
    W /= W.sum(axis=1, keepdims=True)
    W = _smooth(W, mean_op, iterations=4)
    # keep the strongest influences, as SMPL does (at most four per vertex)
    cut = np.sort(W, axis=1)[:, -max_influences][:, None]
    W[W < cut] = 0.0
    W[W < 1e-4] = 0.0
    return W / W.sum(axis=1, keepdims=True)


def _radial_field(v, J, W):
    """Skinning-weighted offset of each vertex from its bones (points outwards, smooth)."""
    out = np.zeros_like(v)
    for j, a, b in _bones(J):
        _, q = _segment_distance(v, a, b)
        share = W[:, j] / max(1, sum(1 for c in SMPL_PARENTS if c == j))
        out += share[:, None] * (v - q)
    return out


def _shape_blend_shapes(v, J, W, mean_op):
    """(V, 3, 10): smooth, left-right symmetric, orthogonalised, decreasing in size."""
    y, ax = v[:, 1], np.abs(v[:, 0])
    sx = np.sign(v[:, 0])
    legs = W[:, [1, 2, 4, 5, 7, 8, 10, 11]].sum(axis=1)
    arms = W[:, [16, 17, 18, 19, 20, 21, 22, 23]].sum(axis=1)
    head = W[:, [12, 15]].sum(axis=1)
    radial = _radial_field(v, J, W)
    hip_y, shoulder_y = J[1, 1], J[16, 1]
    fields = []
    fields.append(0.02 * (v - J[0]))                                        # stature / scale
    fields.append(0.12 * radial)                                             # girth
    f = np.zeros_like(v)
    f[:, 1] = -0.035 * np.clip((hip_y - y) / 0.85, 0, 1)                     # leg length
    fields.append(f)
    f = np.zeros_like(v)
    f[:, 0] = 0.02 * sx * np.clip((y - 0.0) / shoulder_y, 0, 1) * np.clip(ax / 0.17, 0, 1)
    fields.append(f)                                                         # shoulder width
    f = np.zeros_like(v)
    f[:, 0] = 0.03 * sx * np.clip((ax - 0.17) / 0.6, 0, 1) * arms            # arm length
    fields.append(f)
    belly = np.exp(-((y + 0.05) / 0.12) ** 2) * (1 - legs - arms - head)
    f = np.zeros_like(v)
    f[:, 2] = 0.03 * belly * np.clip(radial[:, 2] / 0.08, -0.3, 1)           # belly
    fields.append(f)
    f = np.zeros_like(v)
    f[:, 0] = 0.02 * (v[:, 0] / 0.17) * np.exp(-((y - hip_y) / 0.15) ** 2)   # hip width
    fields.append(f)
    fields.append(0.08 * head[:, None] * (v - J[15]))                       # head size
    f = np.zeros_like(v)
    f[:, 1] = 0.03 * np.clip((y - J[0, 1]) / (shoulder_y - J[0, 1]), 0, 1)  # torso length
    fields.append(f)
    fields.append(0.12 * (legs + arms)[:, None] * radial)                    # limb girth
    fields = [_smooth(f, mean_op, iterations=3) for f in fields]
    # Gram-Schmidt in vertex space, then PCA-like decreasing sizes (per-vertex RMS, metres)
    rms = (None, 0.012, 0.009, 0.007, 0.006, 0.005, 0.0045, 0.004, 0.0035, 0.003)
    basis = []
    for k, f in enumerate(fields):
        x = f.ravel().copy()
        for b in basis:
            x -= (x @ b) / (b @ b) * b
        if rms[k] is not None:
            x *= rms[k] / np.sqrt((x.reshape(-1, 3) ** 2).sum(axis=1).mean())
        basis.append(x)
    return np.stack([b.reshape(-1, 3) for b in basis], axis=-1)


def _pose_blend_shapes(v, J, W, rng, radius=0.07, rotation_gain=0.12, bulge=0.006):
    """(V, 3, 207): per joint, dv = g(v) [a (R - I)(v - J) - b tr(R - I) n(v)].

    Linear in the entries of (R - I), so the correctives vanish in the rest pose.
    """
    n = len(v)
    radial = _radial_field(v, J, W)
    normal = radial / np.maximum(np.linalg.norm(radial, axis=1, keepdims=True), 1e-9)
    P = np.zeros((n, 3, 9 * (NUM_JOINTS - 1)))
    for j in range(1, NUM_JOINTS):
        parent = SMPL_PARENTS[j]
        g = np.exp(-((v - J[j]) ** 2).sum(axis=1) / (2 * radius ** 2)) * (W[:, j] + W[:, parent])
        a = rotation_gain * (1 + 0.2 * rng.standard_normal())
        b = bulge * (1 + 0.2 * rng.standard_normal())
        rel = v - J[j]
        for r in range(3):
            for c in range(3):
                col = 9 * (j - 1) + 3 * r + c
                P[:, r, col] += a * g * rel[:, c]
                if r == c:
                    P[:, :, col] -= b * g[:, None] * normal
    return P


def build_synthetic_body_model(seed: int = 0) -> dict:
    """A SMPL-format model dict (the official pickle's keys and layouts), deterministic in seed."""
    rng = np.random.default_rng(seed)
    mesh = build_body_mesh()
    v = mesh.vertices
    faces = mesh.faces
    n = len(v)
    part_mask = _vertex_part_mask(mesh.face_part, faces, n)
    mean_op = _vertex_adjacency(faces, n)
    J_target = target_joints()

    J_reg = _regressor_rows(v, part_mask, J_target, [JOINT_PARTS[j] for j in range(NUM_JOINTS)],
                            k=12, smooth=1e-3)
    J = J_reg @ v
    W = _skinning_weights(v, J, part_mask, mean_op)
    shapedirs = _shape_blend_shapes(v, J, W, mean_op)
    posedirs = _pose_blend_shapes(v, J, W, rng)
    kintree = np.vstack([np.array([ROOT_SENTINEL] + list(SMPL_PARENTS[1:]), dtype=np.int64),
                         np.arange(NUM_JOINTS, dtype=np.int64)])
    mirrored = v * (-1.0, 1.0, 1.0)
    _, sym = cKDTree(v).query(mirrored)
    J_reg_sparse = sp.csc_matrix(J_reg)
    return {
        "v_template": v,
        "f": faces.astype(np.uint32),
        "J_regressor": J_reg_sparse,
        "J_regressor_prior": J_reg_sparse.copy(),
        "kintree_table": kintree,
        "weights": W,
        "weights_prior": W.copy(),
        "posedirs": posedirs,
        "shapedirs": shapedirs,
        "J": J,
        "vert_sym_idxs": sym.astype(np.int64),
        "bs_type": "lrotmin",
        "bs_style": "lbs",
    }


# ----------------------------------------------------------------------------- H36M regressor
def h36m_targets(J: np.ndarray) -> np.ndarray:
    """Where the 17 H36M joints sit relative to the SMPL joints (order of skeleton.H36M17)."""
    hips_mid = 0.5 * (J[1] + J[2])
    pelvis = hips_mid + (0.0, 0.03, 0.0)
    thorax = np.array([0.0, 0.5 * (J[12, 1] + J[16, 1]), J[12, 2]])
    wide = np.array([1.45, 1.0, 1.0])
    out = [
        pelvis,
        J[2] * wide + (0, -0.01, 0), J[5], J[8],          # R_Hip, R_Knee, R_Ankle (subject's right)
        J[1] * wide + (0, -0.01, 0), J[4], J[7],          # L_Hip, L_Knee, L_Ankle
        0.5 * (pelvis + thorax),                          # Torso
        thorax,                                           # Neck
        J[15] + (0.0, 0.045, 0.05),                       # Nose
        J[15] + (0.0, 0.11, -0.005),                      # Head
        J[16], J[18], J[20],                              # L_Shoulder, L_Elbow, L_Wrist
        J[17], J[19], J[21],                              # R_Shoulder, R_Elbow, R_Wrist
    ]
    return np.array(out, dtype=np.float64)


_H36M_PARTS = ((_T, _LL, _LR), (_LR, _T), (_LR,), (_LR,), (_LL, _T), (_LL,), (_LL,), (_T,),
               (_T, _H), (_H,), (_H,), (_AL, _T), (_AL,), (_AL,), (_AR, _T), (_AR,), (_AR,))


def build_h36m_regressor(model: dict, seed: int = 0, vertices_per_joint: int = 8) -> np.ndarray:
    """(17, V) float64, non-negative, rows sum to 1, 4..9 vertices per joint.

    ``seed`` is accepted for interface symmetry; the construction is deterministic.
    """
    del seed
    v = np.asarray(getattr(model["v_template"], "r", model["v_template"]), dtype=np.float64)
    faces = np.asarray(model["f"], dtype=np.int64)
    J_reg = model["J_regressor"]
    J = np.asarray(J_reg @ v)
    # body parts are recovered from the dominant skinning joints of each vertex
    W = np.asarray(getattr(model["weights"], "r", model["weights"]))
    part_mask = np.zeros((len(v), len(PART_ID)), dtype=bool)
    dominant = W.argmax(axis=1)
    for j, parts in JOINT_PARTS.items():
        part_mask[np.ix_(dominant == j, [parts[0]])] = True
    mean_op = _vertex_adjacency(faces, len(v))
    part_mask = _smooth(part_mask.astype(np.float64), mean_op, iterations=1) > 0
    R = _regressor_rows(v, part_mask, h36m_targets(J), _H36M_PARTS,
                        k=vertices_per_joint, smooth=3e-3)
    counts = (R > 0).sum(axis=1)
    if counts.min() < 4 or counts.max() > 9:
        raise RuntimeError(f"H36M regressor rows use {counts.min()}..{counts.max()} vertices")
    return R


# ----------------------------------------------------------------------------- files
def _variant(model: dict, betas: np.ndarray) -> dict:
    """A gender variant: the template moved along the shape space, joints re-regressed."""
    out = dict(model)
    out["v_template"] = model["v_template"] + model["shapedirs"] @ betas
    out["J"] = model["J_regressor"] @ out["v_template"]
    return out


GENDER_BETAS = {
    "neutral": np.zeros(NUM_BETAS),
    "female": np.array([-1.2, -0.4, -0.3, -0.8, -0.3, 0.0, 0.9, -0.2, 0.0, -0.3]),
    "male": np.array([1.0, 0.3, 0.2, 0.9, 0.3, 0.1, -0.6, 0.1, 0.0, 0.4]),
}


def write_synthetic_body_model(model_dir, seed: int = 0) -> dict:
    """Write the three SMPL pickles (neutral, f, m) into ``model_dir``; returns gender -> path.

    Written like the official files: pickle protocol 2, 'shapedirs' as a chumpy array (so
    loading exercises the same chumpy path), ``J_regressor`` a ``scipy.sparse.csc_matrix``,
    readable with ``encoding='latin1'``; every global under the names numpy 1.x / old SciPy
    know (``numpy.core.multiarray``, ``scipy.sparse.csc``, see :mod:`lib.body.portable_pickle`),
    so the files open in the originals' environments (numpy <= 1.24) as well as here.
    """
    import chumpy as ch

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    base = build_synthetic_body_model(seed)
    paths = {}
    for gender, fname in MODEL_FILES.items():
        data = _variant(base, GENDER_BETAS[gender])
        data["shapedirs"] = ch.array(data["shapedirs"])
        path = model_dir / fname
        with open(path, "wb") as fh:
            portable_pickle.dump(data, fh, protocol=2)
        paths[gender] = path
    return paths
