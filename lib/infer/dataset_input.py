"""``--input-format h36m``: a model run on Human3.6M files themselves, through the dataset plug-ins.

The YAML's DATASET section says which format plug-in (lib/data/formats) reads the files and
how (joints, strides, exclusions, lens distortion): the rows are exactly the samples that
lib/data/build.py makes of the split, in its order, so the model sees what test.py feeds it.
``--input DIR`` replaces DATASET.root (a dataset folder: nothing is generated there); without
it the YAML's own DATASET is used (the synthetic default is generated if it asks for it).
``--split train|val|test`` picks the split as build.py makes it, ``--subjects`` replaces that
split's subject list.

Each (subject, action, subaction, camera) sequence is one track (its ``person_ids``), frames
are the sequence's frame numbers; the 2D are the split's inputs in pixels of their camera, so
the pipeline's normalisation gives back the model's inputs. The track carries the split's
dataset (GT 3D, action labels) for MPJPE, and the GT poses and sample keys as output columns.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Optional

import numpy as np

from lib.data import codec
from lib.data.build import SPLITS, build_datasets
from lib.data.formats import get_format
from lib.geometry.camera import image_coordinates
from lib.geometry.skeleton import LIFTING_JOINT_SETS
from lib.infer.layouts import KeypointInputError

# The DATASET key that lists a split's subjects (val is held out of the training subjects).
SUBJECT_KEYS = {"train": "train_subjects", "val": "train_subjects", "test": "test_subjects"}


def _config_for(cfg, root) -> object:
    """A copy of the run's config that reads ``root`` (never generating data there)."""
    cfg = copy.deepcopy(cfg)
    if root is not None:
        cfg.DATASET.root = str(root)
        cfg.DATASET.synthetic = False
    return cfg


def is_dataset_root(path: Path, cfg) -> bool:
    """Whether ``path`` holds files that the YAML's DATASET format reads (for ``auto``)."""
    c = _config_for(cfg, path)
    fmt = get_format(c.DATASET.format)
    return bool(fmt.source_files(c, fmt.info(c).subjects))


def read_dataset(root: Optional[Path], cfg, split: Optional[str] = None, subjects=None):
    """A :class:`lib.infer.readers.KeypointTrack` of one split of the YAML's dataset."""
    from lib.engine.evaluate import protocol_card
    from lib.infer.readers import KeypointTrack
    split = split or "test"
    if cfg is None:
        raise KeypointInputError("--input-format h36m reads the files through the YAML's "
                                 "DATASET section: pass --cfg")
    if split not in SPLITS:
        raise KeypointInputError(f"--split {split} is not a split; pass one of "
                                 f"{', '.join(SPLITS)}")
    cfg = _config_for(cfg, root)
    where = f"{cfg.DATASET.format} data under {cfg.DATASET.root}"
    if subjects:
        cfg.DATASET[SUBJECT_KEYS[split]] = [int(s) for s in subjects]
    datasets = build_datasets(cfg, splits=(split,))
    if split not in datasets:
        raise KeypointInputError(
            f"{where}: the YAML's DATASET.val_fraction is {cfg.DATASET.val_fraction}, so there "
            f"is no val split. Pass --split train or --split test, or set DATASET.val_fraction.")
    ds = datasets[split]
    t = {k: v.numpy() for k, v in ds.tensors.items()}
    n, joints = t["input_2d"].shape[:2]
    sizes = np.empty((n, 2))
    for s, c in {(int(s), int(c)) for s, c in zip(t["subject"], t["camera"])}:
        cam = ds.cameras[s][c]
        sizes[(t["subject"] == s) & (t["camera"] == c)] = (cam.width, cam.height)
    xy = np.empty((n, joints, 2))
    for w, h in np.unique(sizes, axis=0):
        rows = (sizes[:, 0] == w) & (sizes[:, 1] == h)
        xy[rows] = image_coordinates(t["input_2d"][rows].astype(np.float64), w, h)
    keys = np.stack([t["subject"], t["action"], t["subaction"], t["camera"]], 1).astype(int)
    uniq, track = np.unique(keys, axis=0, return_inverse=True)
    track = track.ravel()
    actions = dict(ds.info.actions or {})
    names = {i: f"S{s} {actions.get(a, f'action {a}')} (subaction {b}), camera {c}"
             for i, (s, a, b, c) in enumerate(uniq.tolist())}
    first = np.sort(t["frame"][track == 0])
    step = int(np.median(np.diff(first))) if len(first) > 1 else 1
    extras = {"gt_poses_3d": codec.decode_pose(t["target_3d"]).astype(np.float32),
              "subject": keys[:, 0], "action": keys[:, 1], "subaction": keys[:, 2],
              "camera": keys[:, 3]}
    uniq_sizes = np.unique(sizes, axis=0)
    out = KeypointTrack(
        xy, np.ones((n, joints)), LIFTING_JOINT_SETS[joints], t["frame"].astype(np.int64),
        track.astype(np.int64),
        image_size=tuple(uniq_sizes[0]) if len(uniq_sizes) == 1 else None,
        source=f"{where}, {split} split (subjects "
               f"{', '.join(map(str, sorted({int(s) for s in keys[:, 0]})))})",
        image_sizes=sizes, fps=ds.info.fps / max(step, 1), extras=extras, dataset=ds,
        track_names=names, protocol=protocol_card(cfg, split, ds))
    return out
