"""Evaluation: predictions over a split, per-action MPJPE / PA-MPJPE, the protocol card."""
from __future__ import annotations

import numpy as np
import torch

from lib.data import codec
from lib.data.lifting import BatchLoader
from lib.geometry.metrics import (format_action_table, format_joint_table, headline,
                                  mpjpe_per_sample, per_action_table, per_joint_table,
                                  rigid_align)
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
    """MPJPE / PA-MPJPE (mm) over all joints, root included, after re-centring on the root.

    ``mpjpe`` / ``pa_mpjpe`` are the headline of the protocol (lib.geometry.metrics.headline):
    the mean of the per-action means on a dataset with actions (Human3.6M), the frame mean on
    one without; ``headline`` holds both means and the label. ``per_joint``: where the error
    is (lib.geometry.metrics.per_joint_table).
    """
    gt = codec.decode_pose(dataset.tensors["target_3d"])
    pred = codec.decode_pose(pred_m)
    err = mpjpe_per_sample(pred, gt).numpy()
    pred, gt = pred.numpy().astype(np.float64), gt.numpy().astype(np.float64)
    aligned = rigid_align(pred, gt)          # once, for PA-MPJPE per sample and per joint
    pa = mpjpe_per_sample(aligned, gt)
    groups, names, group_by = result_groups(dataset)
    table = per_action_table(err, pa, groups, names, group_by)
    head = headline(table)
    joints = per_joint_table(pred, gt, skeleton_for_joints(gt.shape[1]), aligned_mm=aligned)
    return {"mpjpe": head["mpjpe"], "pa_mpjpe": head["pa_mpjpe"], "headline": head,
            "table": table, "per_joint": joints, "per_sample_mpjpe": err,
            "per_sample_pa_mpjpe": pa}


def metrics_record(metrics: dict, prefix: str) -> dict:
    """The metrics.json keys of one evaluation: ``<prefix>_mpjpe`` (the headline, with
    ``<prefix>_headline`` saying which mean it is), both means of MPJPE and PA-MPJPE by name,
    and the table."""
    h = metrics["headline"]
    out = {f"{prefix}_mpjpe": h["mpjpe"], f"{prefix}_pa_mpjpe": h["pa_mpjpe"],
           f"{prefix}_headline": h["kind"]}
    for key in ("mpjpe_action_mean", "mpjpe_frame_mean", "pa_mpjpe_action_mean",
                "pa_mpjpe_frame_mean"):
        out[f"{prefix}_{key}"] = h[key]
    out[f"{prefix}_table"] = metrics["table"]
    out[f"{prefix}_per_joint"] = metrics["per_joint"]
    return out


def headline_text(metrics: dict) -> str:
    """'MPJPE 34.00 mm, PA-MPJPE 27.20 mm (mean of the 15 actions; frame mean 34.51 / 27.63)'."""
    h = metrics["headline"]
    if h["kind"] == "frame_mean":
        return f"MPJPE {h['mpjpe']:.2f} mm, PA-MPJPE {h['pa_mpjpe']:.2f} mm ({h['label']})"
    return (f"MPJPE {h['mpjpe']:.2f} mm, PA-MPJPE {h['pa_mpjpe']:.2f} mm ({h['label']}; "
            f"frame mean {h['mpjpe_frame_mean']:.2f} / {h['pa_mpjpe_frame_mean']:.2f})")


def mean_pose(train_ds) -> torch.Tensor:
    """The mean root-relative training target, (1, J, 3) float64 metres (the reference
    predictor's pose; checkpoints store it so test.py needs no training data)."""
    return train_ds.tensors["target_3d"].double().mean(0, keepdim=True)


def mean_pose_mpjpe(train_ds, eval_ds, pose: torch.Tensor | None = None) -> float:
    """MPJPE (mm, the headline of eval_ds's protocol) of predicting the mean training pose
    for every sample: the floor to beat. ``pose`` (from :func:`mean_pose`) replaces train_ds."""
    mean = mean_pose(train_ds) if pose is None else torch.as_tensor(pose, dtype=torch.float64)
    gt = eval_ds.tensors["target_3d"]
    err = mpjpe_per_sample(codec.decode_pose(mean.reshape(1, *gt.shape[1:]).expand_as(gt)),
                           codec.decode_pose(gt)).numpy()
    groups, names, group_by = result_groups(eval_ds)
    return headline(per_action_table(err, None, groups, names, group_by))["mpjpe"]


_SAME = object()      # protocol_card's default: the model was trained with ``cfg`` itself


def protocol_card(cfg, split: str, dataset, train_cfg=_SAME) -> str:
    """What was evaluated (one line, from the dataset's own stats, not from the config), then
    how the model was trained: the protocol (official / clean) and every difference from the
    original's recipe (lib/protocols.py). ``train_cfg``: the training run's config when it is
    not ``cfg`` (test.py: the checkpoint's), None when unknown."""
    from lib.protocols import describe_protocol
    if train_cfg is _SAME:
        train_cfg = cfg
    training = ("training protocol: unknown (the checkpoint carries no config)"
                if train_cfg is None else describe_protocol(train_cfg))
    return _evaluation_line(cfg, split, dataset) + "\n" + training


def _evaluation_line(cfg, split: str, dataset) -> str:
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
    """The per-action (or per-sequence) table, then the per-joint one."""
    return format_action_table(metrics["table"]) + "\n\n" + format_joint_table(metrics["per_joint"])
