"""Evaluation: predictions over a split, per-action MPJPE / PA-MPJPE, the protocol card."""
from __future__ import annotations

import numpy as np
import torch

from lib.data import codec
from lib.data.lifting import BatchLoader
from lib.geometry.metrics import (format_action_table, mpjpe_per_sample, pa_mpjpe_per_sample,
                                  per_action_table)
from lib.geometry.skeleton import skeleton_for_joints


def flip_inputs(x2d: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Mirror poses horizontally (x -> -x) and swap left/right joints: normalised 2D inputs,
    and equally the 3D outputs of a flipped input (flip test)."""
    flipped = x2d[:, perm].clone()
    flipped[..., 0] = -flipped[..., 0]
    return flipped


@torch.no_grad()
def predict(model, dataset, device, batch_size=256, flip_test=False, amp_dtype=None,
            progress=None) -> dict:
    """Root-relative predictions (metres) for every sample, in dataset order."""
    model.eval()
    perm = torch.as_tensor(skeleton_for_joints(dataset.num_joints).flip_permutation,
                           device=device)
    loader = BatchLoader(dataset, batch_size, shuffle=False)
    poses, meshes = [], {"mesh_fine": [], "mesh_mid": []}
    it = loader if progress is None else progress(loader, total=len(loader))
    for batch in it:
        x = batch["input_2d"].to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = model(x)
            pose = out["pose"].float()
            if flip_test:
                pose_f = model(flip_inputs(x, perm))["pose"].float()
                pose = (pose + flip_inputs(pose_f, perm)) / 2
        poses.append(pose.cpu())
        for k in meshes:
            if k in out:
                meshes[k].append(out[k].float().cpu())
    result = {"pose": torch.cat(poses)}
    for k, v in meshes.items():
        if v:
            result[k] = torch.cat(v)
    return result


def result_groups(dataset):
    """(group id per sample, {id: name}, 'action'|'sequence') for the results table.

    A dataset whose DatasetInfo names its actions is tabulated per action (Human3.6M's
    protocol); one without action labels per sequence.
    """
    t = dataset.tensors
    info = getattr(dataset, "info", None)
    if info is None or info.actions is not None:
        names = None if info is None else dict(info.actions)
        return t["action"].numpy(), names, "action"
    keys = np.stack([t["subject"].numpy(), t["action"].numpy(), t["subaction"].numpy()], 1)
    uniq, ids = np.unique(keys, axis=0, return_inverse=True)
    names = {i: f"S{s} act{a} sub{b}" for i, (s, a, b) in enumerate(uniq.tolist())}
    return ids.ravel(), names, "sequence"


def compute_metrics(pred_m: torch.Tensor, dataset) -> dict:
    """MPJPE / PA-MPJPE (mm) over all joints, root included, after re-centring on the root."""
    gt = codec.decode_pose(dataset.tensors["target_3d"])
    pred = codec.decode_pose(pred_m)
    err = mpjpe_per_sample(pred, gt).numpy()
    pa = np.asarray(pa_mpjpe_per_sample(pred.numpy(), gt.numpy()))
    groups, names, group_by = result_groups(dataset)
    table = per_action_table(err, pa, groups, names, group_by)
    return {"mpjpe": float(err.mean()), "pa_mpjpe": float(pa.mean()), "table": table,
            "per_sample_mpjpe": err, "per_sample_pa_mpjpe": pa}


def mean_pose_mpjpe(train_ds, eval_ds) -> float:
    """MPJPE (mm) of predicting the mean training pose for every sample: the floor to beat."""
    mean = train_ds.tensors["target_3d"].double().mean(0, keepdim=True)
    gt = eval_ds.tensors["target_3d"]
    return float(mpjpe_per_sample(codec.decode_pose(mean.expand_as(gt)),
                                  codec.decode_pose(gt)).mean())


def protocol_card(cfg, split: str, dataset) -> str:
    """One line saying what was evaluated: from the dataset's own stats, not from the config."""
    d = cfg.DATASET
    stride = d.test_stride if split in ("test", "val") else d.train_stride
    keys = dataset.stats.get("excluded_keys", []) if split == "test" else []
    excluded = ", ".join(f"S{s} act{a} sub{b}" for s, a, b in keys) if keys else "none"
    info = getattr(dataset, "info", None)
    if keys and info is not None and info.excluded_reason:
        excluded += f" ({info.excluded_reason})"
    cpn_note = ""
    if d.num_joints == 16 and d.keypoints != "gt":
        cpn_note = " (17-joint detections reduced to 16 by dropping Neck/Nose)"
    return (f"protocol: split={split} ({len(dataset)} samples), joints={d.num_joints} "
            f"(root included in the mean), frame stride={stride}, excluded sequences={excluded}, "
            f"flip test={'on' if cfg.TEST.flip_test else 'off'}, "
            f"2D input={d.keypoints}{cpn_note}, data={d.format}:{d.root}")


def report(metrics: dict) -> str:
    return format_action_table(metrics["table"])
