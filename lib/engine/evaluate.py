"""Evaluation: predictions over a split, per-action MPJPE / PA-MPJPE, the protocol card."""
from __future__ import annotations

import numpy as np
import torch

from lib.data.lifting import BatchLoader
from lib.geometry.metrics import (format_action_table, mpjpe_per_sample, pa_mpjpe_per_sample,
                                  per_action_table)
from lib.geometry.skeleton import CORRUPTED_SEQUENCES, skeleton_for_joints


def flip_inputs(x2d: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Mirror normalised 2D poses horizontally (x -> -x) and swap left/right joints."""
    flipped = x2d[:, perm].clone()
    flipped[..., 0] = -flipped[..., 0]
    return flipped


def flip_outputs(y3d: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    flipped = y3d[:, perm].clone()
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
                pose = (pose + flip_outputs(pose_f, perm)) / 2
        poses.append(pose.cpu())
        for k in meshes:
            if k in out:
                meshes[k].append(out[k].float().cpu())
    result = {"pose": torch.cat(poses)}
    for k, v in meshes.items():
        if v:
            result[k] = torch.cat(v)
    return result


def compute_metrics(pred_m: torch.Tensor, dataset) -> dict:
    """MPJPE / PA-MPJPE (mm) over all joints, root included, after re-centring on the root."""
    gt = dataset.tensors["target_3d"].double() * 1000.0
    pred = pred_m.double() * 1000.0
    pred = pred - pred[:, :1]
    gt = gt - gt[:, :1]
    err = mpjpe_per_sample(pred, gt).numpy()
    pa = np.asarray(pa_mpjpe_per_sample(pred.numpy(), gt.numpy()))
    table = per_action_table(err, pa, dataset.tensors["action"].numpy())
    return {"mpjpe": float(err.mean()), "pa_mpjpe": float(pa.mean()), "table": table,
            "per_sample_mpjpe": err, "per_sample_pa_mpjpe": pa}


def mean_pose_mpjpe(train_ds, eval_ds) -> float:
    """MPJPE (mm) of predicting the mean training pose for every sample: the floor to beat."""
    mean = train_ds.tensors["target_3d"].double().mean(0, keepdim=True)
    gt = eval_ds.tensors["target_3d"].double()
    return float(mpjpe_per_sample(mean.expand_as(gt) * 1000.0, gt * 1000.0).mean())


def protocol_card(cfg, split: str, dataset) -> str:
    d = cfg.DATASET
    stride = d.test_stride if split in ("test", "val") else d.train_stride
    excluded = (", ".join(f"S{s} act{a} sub{b}" for s, a, b in CORRUPTED_SEQUENCES)
                if split == "test" and d.exclude_corrupted else "none")
    cpn_note = ""
    if d.num_joints == 16 and d.keypoints != "gt":
        cpn_note = " (17-joint detections reduced to 16 by dropping Neck/Nose)"
    return (f"protocol: split={split} ({len(dataset)} samples), joints={d.num_joints} "
            f"(root included in the mean), frame stride={stride}, excluded sequences={excluded}, "
            f"flip test={'on' if cfg.TEST.flip_test else 'off'}, "
            f"2D input={d.keypoints}{cpn_note}, data={d.format}:{d.root}")


def report(metrics: dict) -> str:
    return format_action_table(metrics["table"])
