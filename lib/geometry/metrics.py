"""Pose-error metrics of the Human3.6M protocols (MPJPE, PA-MPJPE, N-MPJPE, MPJVE).

Every function takes numpy arrays or torch tensors of shape (..., J, 3) (``pred`` and ``gt``
of the same shape; a numpy ``gt`` is converted when ``pred`` is a tensor) and works on any
number of leading batch dimensions. Errors are in the input's unit (mm in, mm out).

The definitions follow VideoPose3D's ``common/loss.py`` (used unchanged by SemGCN and GraphSH)
and HGN's ``rigid_align``. Procrustes alignment is vectorised
with a batched SVD and computed in float64, because float32 SVD of near-degenerate poses is
noticeably inaccurate at the 0.1 mm level the tables report.
"""
from __future__ import annotations

from typing import Mapping, Optional

import numpy as np
import torch

from lib.geometry.skeleton import ACTION_NAME, ACTIONS

# Frobenius norms below this (in input units) count as a degenerate (collapsed) pose.
_DEGENERATE_NORM = 1e-12


# ----------------------------------------------------------------------------- backend helpers
def _is_torch(x) -> bool:
    return isinstance(x, torch.Tensor)


def _pair(pred, gt, min_ndim: int = 2):
    """Bring gt to pred's backend and check that the shapes agree."""
    if _is_torch(pred) and not _is_torch(gt):
        gt = torch.as_tensor(np.asarray(gt), dtype=pred.dtype, device=pred.device)
    elif _is_torch(gt) and not _is_torch(pred):
        pred = torch.as_tensor(np.asarray(pred), dtype=gt.dtype, device=gt.device)
    elif not _is_torch(pred):
        pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if tuple(pred.shape) != tuple(gt.shape):
        raise ValueError(f"pred and gt must have the same shape, got {tuple(pred.shape)} "
                         f"and {tuple(gt.shape)}")
    if pred.ndim < min_ndim:
        raise ValueError(f"poses must have shape (..., J, C), got {tuple(pred.shape)}")
    return pred, gt


def _norm(x, axis=-1):
    return torch.linalg.norm(x, dim=axis) if _is_torch(x) else np.linalg.norm(x, axis=axis)


def _mean(x, axis=None, keepdims=False):
    if _is_torch(x):
        return x.mean() if axis is None else x.mean(dim=axis, keepdim=keepdims)
    return x.mean(axis=axis, keepdims=keepdims)


def _sum(x, axis, keepdims=False):
    if _is_torch(x):
        return x.sum(dim=axis, keepdim=keepdims)
    return x.sum(axis=axis, keepdims=keepdims)


def _transpose(x):
    return x.transpose(-1, -2) if _is_torch(x) else np.swapaxes(x, -1, -2)


# ----------------------------------------------------------------------------- MPJPE
def mpjpe_per_sample(pred, gt):
    """Mean per-joint position error of every sample: (..., J, C) -> (...,)."""
    pred, gt = _pair(pred, gt)
    return _mean(_norm(pred - gt), axis=-1)


def mpjpe(pred, gt):
    """MPJPE (Protocol #1): mean L2 distance over every leading index and joint.

    Differentiable for tensors, so it doubles as a training loss.
    """
    pred, gt = _pair(pred, gt)
    return _mean(_norm(pred - gt))


# ----------------------------------------------------------------------------- Procrustes
def rigid_align(pred, gt):
    """``pred`` after the similarity transform (scale, rotation, translation) that best fits ``gt``.

    Orthogonal Procrustes per sample over its (J, 3) point set, with the reflection fix
    (a negative-determinant solution is replaced by the best proper rotation), so a mirrored
    pose is *not* aligned onto its original. Returned in pred's dtype and backend.
    """
    pred, gt = _pair(pred, gt)
    if pred.shape[-1] != 3:
        raise ValueError(f"Procrustes alignment needs 3D points (..., J, 3), got "
                         f"{tuple(pred.shape)}")
    torch_in = _is_torch(pred)
    out_dtype = pred.dtype
    if torch_in:
        X, Y = gt.to(torch.float64), pred.to(torch.float64)
        svd, det = torch.linalg.svd, torch.linalg.det
    else:
        X, Y = gt.astype(np.float64), pred.astype(np.float64)
        svd, det = np.linalg.svd, np.linalg.det

    mu_x = _mean(X, axis=-2, keepdims=True)
    mu_y = _mean(Y, axis=-2, keepdims=True)
    X0, Y0 = X - mu_x, Y - mu_y
    norm_x = _norm(_norm(X0, -1), -1)[..., None, None]
    norm_y = _norm(_norm(Y0, -1), -1)[..., None, None]
    if torch_in:
        norm_x, norm_y = norm_x.clamp_min(_DEGENERATE_NORM), norm_y.clamp_min(_DEGENERATE_NORM)
    else:
        norm_x = np.maximum(norm_x, _DEGENERATE_NORM)
        norm_y = np.maximum(norm_y, _DEGENERATE_NORM)
    X0, Y0 = X0 / norm_x, Y0 / norm_y

    H = _transpose(X0) @ Y0                      # (..., 3, 3)
    U, s, Vt = svd(H)
    V = _transpose(Vt)
    R = V @ _transpose(U)
    # Reflection fix: flip the axis of the smallest singular value where det(R) < 0.
    flip = det(R) < 0                             # (...,)
    sign = (1 - 2 * flip.to(torch.float64)) if torch_in else (1.0 - 2.0 * flip)
    if torch_in:
        last = torch.stack([torch.ones_like(sign), torch.ones_like(sign), sign], dim=-1)
    else:
        last = np.stack([np.ones_like(sign), np.ones_like(sign), sign], axis=-1)
    V = V * last[..., None, :]                    # negate V's last column
    s = s * last                                  # and the last singular value
    R = V @ _transpose(U)

    scale = _sum(s, axis=-1)[..., None, None] * norm_x / norm_y
    t = mu_x - scale * (mu_y @ R)
    aligned = scale * (Y @ R) + t
    return aligned.to(out_dtype) if torch_in else aligned


def pa_mpjpe_per_sample(pred, gt):
    """PA-MPJPE (Protocol #2) of every sample: (..., J, 3) -> (...,)."""
    pred, gt = _pair(pred, gt)
    return mpjpe_per_sample(rigid_align(pred, gt), gt)


def pa_mpjpe(pred, gt):
    """PA-MPJPE averaged over all samples."""
    return _mean(pa_mpjpe_per_sample(pred, gt))


# ----------------------------------------------------------------------------- N-MPJPE
def n_mpjpe_per_sample(pred, gt):
    """Error after the per-sample optimal scale s = <gt, pred> / <pred, pred> (no rotation)."""
    pred, gt = _pair(pred, gt)
    num = _sum(_sum(gt * pred, -1), -1, keepdims=True)
    den = _sum(_sum(pred * pred, -1), -1, keepdims=True)
    if _is_torch(den):
        den = den.clamp_min(_DEGENERATE_NORM)
    else:
        den = np.maximum(den, _DEGENERATE_NORM)
    scale = (num / den)[..., None]
    return mpjpe_per_sample(scale * pred, gt)


def n_mpjpe(pred, gt):
    """N-MPJPE: MPJPE after scale-only alignment per sample, averaged over all samples."""
    return _mean(n_mpjpe_per_sample(pred, gt))


# ----------------------------------------------------------------------------- MPJVE
def mpjve(pred, gt, time_axis: int = 0):
    """Mean per-joint velocity error: frame differences along ``time_axis`` (default 0).

    The frames must be temporally ordered (one sequence, or (T, B, J, 3) with time first);
    the result is in input units per frame.
    """
    pred, gt = _pair(pred, gt, min_ndim=3)
    axis = time_axis % pred.ndim
    if axis >= pred.ndim - 2:
        raise ValueError(f"time_axis {time_axis} points at the joint or coordinate axis of a "
                         f"{pred.ndim}-D array; it must be a leading axis")
    if pred.shape[axis] < 2:
        raise ValueError("MPJVE needs at least 2 frames along the time axis")
    if _is_torch(pred):
        vel_p, vel_g = torch.diff(pred, dim=axis), torch.diff(gt, dim=axis)
    else:
        vel_p, vel_g = np.diff(pred, axis=axis), np.diff(gt, axis=axis)
    return _mean(_norm(vel_p - vel_g))


# ----------------------------------------------------------------------------- per-action table
def _to_numpy_1d(x, name):
    arr = x.detach().cpu().numpy() if _is_torch(x) else np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per evaluated frame), got {arr.shape}")
    return arr


def per_action_table(errors_mm, pa_errors_mm: Optional[np.ndarray], action_idx,
                     action_names: Optional[Mapping[int, str]] = None,
                     group_by: str = "action") -> dict:
    """Per-group mean errors in the Human3.6M reporting format.

    ``action_names`` maps group ids to names in reporting order (default: the 15 Human3.6M
    actions); a dataset without action labels passes one id per sequence and
    ``group_by='sequence'``. Returns ``{"actions": {name: {"mpjpe", "pa_mpjpe", "frames"}}``
    (present groups only, in order), ``"order"`` (every name), ``"group_by"``, ``"average"``
    (unweighted mean of the per-group means, the number papers quote, with ``num_actions``) and
    ``"total"`` (frame-weighted mean, with ``frames``) and ``"headline"`` (which of the two the
    protocol reports first, see :func:`headline`). ``pa_errors_mm`` may be None, giving NaN PA
    columns.
    """
    names = dict(ACTION_NAME if action_names is None else action_names)
    err = _to_numpy_1d(errors_mm, "errors_mm").astype(np.float64)
    act = _to_numpy_1d(action_idx, "action_idx").astype(np.int64)
    pa = (np.full_like(err, np.nan) if pa_errors_mm is None
          else _to_numpy_1d(pa_errors_mm, "pa_errors_mm").astype(np.float64))
    if not (len(err) == len(pa) == len(act)):
        raise ValueError(f"errors_mm, pa_errors_mm and action_idx must have the same length, "
                         f"got {len(err)}, {len(pa)}, {len(act)}")
    bad = sorted(set(act.tolist()) - set(names))
    if bad:
        raise ValueError(f"{group_by} ids {bad} have no name (known: {min(names)}..{max(names)})"
                         if names else f"{group_by} ids {bad} have no name")
    actions = {}
    for idx, name in names.items():
        mask = act == idx
        if mask.any():
            actions[name] = {"mpjpe": float(err[mask].mean()), "pa_mpjpe": float(pa[mask].mean()),
                             "frames": int(mask.sum())}
    n = len(actions)
    average = {
        "mpjpe": float(np.mean([a["mpjpe"] for a in actions.values()])) if n else float("nan"),
        "pa_mpjpe": float(np.mean([a["pa_mpjpe"] for a in actions.values()])) if n else float("nan"),
        "num_actions": n,
    }
    total = {"mpjpe": float(err.mean()) if len(err) else float("nan"),
             "pa_mpjpe": float(pa.mean()) if len(pa) else float("nan"),
             "frames": int(len(err))}
    return {"actions": actions, "order": list(names.values()), "group_by": group_by,
            "average": average, "total": total, "headline": headline_kind(group_by)}


# The headline number of a table: the Human3.6M protocols (the papers' tables, the public
# GraphSH --evaluate) quote the unweighted mean over the actions; a table without actions (one
# row per sequence) has no such protocol, and its headline is the frame-weighted mean.
HEADLINE_ACTION_MEAN = "action_mean"
HEADLINE_FRAME_MEAN = "frame_mean"


def headline_kind(group_by: str) -> str:
    """HEADLINE_ACTION_MEAN for a per-action table, HEADLINE_FRAME_MEAN otherwise."""
    return HEADLINE_ACTION_MEAN if group_by == "action" else HEADLINE_FRAME_MEAN


def headline(table: dict) -> dict:
    """The table's headline and both means, labelled.

    ``{"kind", "label", "mpjpe", "pa_mpjpe", "mpjpe_action_mean", "pa_mpjpe_action_mean",
    "mpjpe_frame_mean", "pa_mpjpe_frame_mean"}``; the action means are None for a table
    without actions. ``label`` says in words which mean the headline is.
    """
    kind = table.get("headline", headline_kind(table.get("group_by", "action")))
    avg, tot = table["average"], table["total"]
    by_action = table.get("group_by", "action") == "action"
    out = {"kind": kind,
           "mpjpe_action_mean": avg["mpjpe"] if by_action else None,
           "pa_mpjpe_action_mean": avg["pa_mpjpe"] if by_action else None,
           "mpjpe_frame_mean": tot["mpjpe"], "pa_mpjpe_frame_mean": tot["pa_mpjpe"]}
    if kind == HEADLINE_ACTION_MEAN:
        out.update(mpjpe=avg["mpjpe"], pa_mpjpe=avg["pa_mpjpe"],
                   label=f"mean of the {avg['num_actions']} actions")
    else:
        out.update(mpjpe=tot["mpjpe"], pa_mpjpe=tot["pa_mpjpe"],
                   label=f"frame mean of {tot['frames']} frames")
    return out


def format_action_table(table: dict, name_width: int = 24, col_width: int = 12) -> str:
    """Fixed-width text of a :func:`per_action_table` result (every group; '-' if absent)."""
    def num(v, fmt="{:.2f}"):
        return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else fmt.format(v)

    group = table.get("group_by", "action")
    order = table.get("order", ACTIONS)
    name_width = max([name_width] + [len(n) + 2 for n in order])
    header = (f"{group.capitalize():<{name_width}}{'MPJPE':>{col_width}}{'PA-MPJPE':>{col_width}}"
              f"{'frames':>{col_width}}")
    lines = [header + "   (errors in mm)", "-" * len(header)]
    for name in order:
        row = table["actions"].get(name)
        vals = (None, None, None) if row is None else (row["mpjpe"], row["pa_mpjpe"], row["frames"])
        lines.append(f"{name:<{name_width}}{num(vals[0]):>{col_width}}{num(vals[1]):>{col_width}}"
                     f"{num(vals[2], '{:d}'):>{col_width}}")
    lines.append("-" * len(header))
    avg, tot = table["average"], table["total"]
    kind = table.get("headline", headline_kind(group))
    mark = {HEADLINE_ACTION_MEAN: ("   <- headline (action mean)", ""),
            HEADLINE_FRAME_MEAN: ("", "   <- headline (frame mean)")}
    avg_mark, tot_mark = mark.get(kind, ("", ""))
    lines.append(f"{'Average (%d %ss)' % (avg['num_actions'], group):<{name_width}}"
                 f"{num(avg['mpjpe']):>{col_width}}{num(avg['pa_mpjpe']):>{col_width}}"
                 f"{'':>{col_width}}{avg_mark}")
    lines.append(f"{'Total (frame-weighted)':<{name_width}}{num(tot['mpjpe']):>{col_width}}"
                 f"{num(tot['pa_mpjpe']):>{col_width}}{num(tot['frames'], '{:d}'):>{col_width}}"
                 f"{tot_mark}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- per-joint table
BODY_AXES = ("left", "up", "forward")


def body_frames(gt, hips) -> np.ndarray:
    """(N, 3, 3) rotations, one per ground-truth pose (N, J, 3) in camera coordinates, whose
    rows are the body's left, up and forward axes: left runs from the right hip to the left,
    up is the camera's up (-y) made square to it, forward = left x up.

    The camera's up rather than the trunk's, so that a trunk leaning too far or too little
    shows as a bias of the upper body instead of being absorbed by the frame. A pose whose
    hips coincide, or whose hip line is vertical in the image, falls back to the camera's
    axes (left = +x, up = -y, forward = -z: a person facing the camera)."""
    gt = np.asarray(gt, dtype=np.float64)
    left_hip, right_hip = hips
    camera_left, camera_up = np.array([1.0, 0.0, 0.0]), np.array([0.0, -1.0, 0.0])
    left = gt[:, left_hip] - gt[:, right_hip]
    up = camera_up - (left @ camera_up)[:, None] * left / np.maximum(
        (left * left).sum(-1, keepdims=True), _DEGENERATE_NORM)
    ok = ((np.linalg.norm(left, axis=-1) > 1e-6 * max(1.0, np.abs(gt).max(initial=0.0)))
          & (np.linalg.norm(up, axis=-1) > 1e-3))
    left = np.where(ok[:, None], left, camera_left)
    up = np.where(ok[:, None], up, camera_up)
    left = left / np.linalg.norm(left, axis=-1, keepdims=True)
    up = up / np.linalg.norm(up, axis=-1, keepdims=True)
    return np.stack([left, up, np.cross(left, up)], axis=1)


def per_joint_table(pred_mm, gt_mm, skeleton, aligned_mm=None) -> dict:
    """Where the error is: per joint, MPJPE, PA-MPJPE and the mean signed offset of the
    prediction from the truth in the body frame (:func:`body_frames`; mm).

    A joint with a large bias is placed wrongly the same way in many frames (a learned prior
    that does not fit the data, e.g. a trunk held too upright); a large error without bias is
    scatter. Returns ``{"joints": {name: {"mpjpe", "pa_mpjpe", "bias_left", "bias_up",
    "bias_forward"}}, "order": joint names, "frames": N}``. The mean of the per-joint MPJPEs is
    the frame-mean MPJPE. ``aligned_mm``: :func:`rigid_align` (pred, gt) where the caller has it.
    """
    pred = (pred_mm.detach().cpu().numpy() if _is_torch(pred_mm) else np.asarray(pred_mm))
    gt = gt_mm.detach().cpu().numpy() if _is_torch(gt_mm) else np.asarray(gt_mm)
    pred, gt = _pair(pred, gt, min_ndim=3)
    if pred.ndim != 3 or pred.shape[1:] != (skeleton.num_joints, 3):
        raise ValueError(f"per-joint errors need poses (N, {skeleton.num_joints}, 3) for the "
                         f"{skeleton.name} joints, got {tuple(pred.shape)}")
    err = np.linalg.norm(pred - gt, axis=-1).mean(0)
    aligned = rigid_align(pred, gt) if aligned_mm is None else np.asarray(aligned_mm)
    pa = np.linalg.norm(aligned - gt, axis=-1).mean(0)
    bias = np.einsum("nab,njb->ja", body_frames(gt, skeleton.hips), pred - gt) / len(gt)
    joints = {name: {"mpjpe": float(err[j]), "pa_mpjpe": float(pa[j]),
                     **{f"bias_{axis}": float(bias[j, a]) for a, axis in enumerate(BODY_AXES)}}
              for j, name in enumerate(skeleton.joint_names)}
    return {"joints": joints, "order": list(skeleton.joint_names), "frames": int(len(gt))}


def format_joint_table(table: dict, name_width: int = 14, col_width: int = 10) -> str:
    """Fixed-width text of a :func:`per_joint_table` result."""
    cols = ("MPJPE", "PA-MPJPE") + tuple(f"{a} bias" for a in BODY_AXES)
    widths = [max(col_width, len(c) + 2) for c in cols]
    header = f"{'Joint':<{name_width}}" + "".join(f"{c:>{w}}" for c, w in zip(cols, widths))
    lines = [header + "   (mm; bias: mean prediction - truth along the body's left, up "
                      "and forward)", "-" * len(header)]
    for name in table["order"]:
        row = table["joints"][name]
        vals = [row["mpjpe"], row["pa_mpjpe"]] + [row[f"bias_{a}"] for a in BODY_AXES]
        lines.append(f"{name:<{name_width}}"
                     + "".join(f"{v:>{w}.1f}" for v, w in zip(vals, widths)))
    return "\n".join(lines)
