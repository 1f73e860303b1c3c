"""Which protocol a run used, and how its config differs from each original's own recipe.

Two protocols exist for every model:
* **official**: what the original public code does — all of S1/S5/S6/S7/S8 train the model
  (no validation hold-out) and the checkpoint is selected on the test set (S9/S11) by its
  frame-weighted test MPJPE (``TRAIN.select_metric: frame_mean``). Needed to reproduce a published number; optimistic by design.
* **clean** (this framework's default): a share of the training sequences is held out
  (``DATASET.val_fraction``) and selects the checkpoint; the test set is touched once.

The recipes below are the facts of the originals' public code (HGN: its train YAML and
``main/train.py``; GraphSH: ``main_gcn.py``; SemGCN: its ``main_gcn.py``), as config keys of
this framework. ``recipe_differences`` compares a config with them, so a protocol card can say
every difference it knows of instead of leaving the reader to diff YAMLs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

OFFICIAL, CLEAN, CUSTOM = "official", "clean", "custom"


@dataclass(frozen=True)
class Recipe:
    source: str                                  # where the facts come from, by name
    keys: Dict[str, Tuple[object, str]]          # dotted config key -> (value, note or "")


_HGN_STEPS = [20, 40, 60, 80, 100, 120, 140]
_GRAPHSH_STEPS = [20000 * k for k in range(1, 17)]     # x0.92 every 20k steps, 50 epochs

RECIPES: Dict[str, Recipe] = {
    "HGN": Recipe("HGN public code (BMVC 2021): its train YAML and main/train.py", {
        "DATASET.train_subjects": ([1, 5, 6, 7, 8], ""),
        "DATASET.test_subjects": ([9, 11], ""),
        "DATASET.train_stride": (5, ""),
        "DATASET.test_stride": (50, ""),
        "DATASET.exclude_corrupted": (True, "three S9 sequences dropped"),
        "DATASET.val_fraction": (0.0, "no validation hold-out"),
        "DATASET.keypoints": ("gt", "only GT 2D is supported"),
        "MODEL.hid_dim": (128, ""),
        "LOSS.pose_weight": (100.0, ""),
        "LOSS.mesh_fine_weight": (1.0, ""),
        "LOSS.mesh_mid_weight": (1.0, ""),
        "TRAIN.batch_size": (64, ""),
        "TRAIN.epochs": (151, "the YAML's epochs 0..150 inclusive; the README says 100"),
        "TRAIN.optimizer": ("adam", ""),
        "TRAIN.lr": (1e-3, ""),
        "TRAIN.weight_decay": (0.0, ""),
        "TRAIN.scheduler": ("step", ""),
        "TRAIN.lr_step": (_HGN_STEPS, ""),
        "TRAIN.lr_factor": (0.9, ""),
        "TRAIN.step_unit": ("epoch", ""),
        "TRAIN.max_norm": (1.0, ""),
        "TRAIN.flip_aug": (False, ""),
        "TRAIN.select_on": ("test", "the best epoch on S9/S11"),
        "TRAIN.select_metric": ("frame_mean", "test MPJPE pooled over all frames"),
        "TEST.flip_test": (False, ""),
    }),
    "GraphSH": Recipe("GraphSH public code (CVPR 2021): main_gcn.py", {
        "DATASET.train_subjects": ([1, 5, 6, 7, 8], ""),
        "DATASET.test_subjects": ([9, 11], ""),
        "DATASET.train_stride": (1, ""),
        "DATASET.test_stride": (1, ""),
        "DATASET.exclude_corrupted": (False, ""),
        "DATASET.val_fraction": (0.0, "no validation hold-out"),
        "DATASET.num_joints": (16, "Neck/Nose dropped"),
        "MODEL.hid_dim": (64, ""),
        "MODEL.num_stacks": (4, ""),
        "MODEL.p_dropout": (0.25, ""),
        "TRAIN.batch_size": (256, ""),
        "TRAIN.epochs": (50, ""),
        "TRAIN.optimizer": ("adam", ""),
        "TRAIN.lr": (1e-4, ""),
        "TRAIN.weight_decay": (0.0, ""),
        "TRAIN.scheduler": ("step", ""),
        "TRAIN.lr_step": (_GRAPHSH_STEPS, "x0.92 every 20,000 steps"),
        "TRAIN.lr_factor": (0.92, ""),
        "TRAIN.step_unit": ("iteration", ""),
        "TRAIN.max_norm": (1.0, ""),
        "TRAIN.flip_aug": (False, ""),
        "TRAIN.select_on": ("test", "the best epoch on S9/S11"),
        "TRAIN.select_metric": ("frame_mean", "P1 pooled over all test frames"),
        "TEST.flip_test": (False, ""),
    }),
    "SemGCN": Recipe("SemGCN public code (CVPR 2019): main_gcn.py", {
        "DATASET.train_stride": (1, ""),
        "DATASET.test_stride": (1, ""),
        "DATASET.val_fraction": (0.0, "no validation hold-out"),
        "DATASET.num_joints": (16, ""),
        "MODEL.hid_dim": (128, ""),
        "MODEL.num_layers": (4, ""),
        "MODEL.p_dropout": (0.0, ""),
        "TRAIN.batch_size": (64, ""),
        "TRAIN.epochs": (50, ""),
        "TRAIN.optimizer": ("adam", ""),
        "TRAIN.lr": (1e-3, ""),
        "TRAIN.lr_factor": (0.96, "x0.96 every 100,000 steps"),
        "TRAIN.step_unit": ("iteration", ""),
        "TRAIN.max_norm": (1.0, ""),
        "TRAIN.select_on": ("test", "the best epoch on S9/S11"),
        "TRAIN.select_metric": ("frame_mean", "P1 pooled over all test frames"),
    }),
}


def protocol_name(cfg) -> str:
    """'official': selection on the test set, no validation hold-out; 'clean': selection on a
    validation hold-out; 'custom': selection on the test set with a hold-out nobody uses."""
    on_test = cfg.TRAIN.select_on == "test"
    if on_test:
        return OFFICIAL if cfg.DATASET.val_fraction == 0 else CUSTOM
    return CLEAN


def _get(cfg, dotted: str):
    node = cfg
    for part in dotted.split("."):
        if part not in node:
            return _MISSING
        node = node[part]
    return node


_MISSING = object()


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) \
            and not isinstance(a, bool) and not isinstance(b, bool):
        return abs(float(a) - float(b)) <= 1e-12 * max(1.0, abs(float(b)))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def recipe_differences(cfg) -> Optional[List[str]]:
    """'KEY: this run X, original Y (note)' for every recipe key the config changes; None when
    no recipe of the model is on record."""
    recipe = RECIPES.get(cfg.MODEL.name)
    if recipe is None:
        return None
    out = []
    for key, (value, note) in recipe.keys.items():
        have = _get(cfg, key)
        if have is _MISSING or _same(have, value):
            continue
        out.append(f"{key}: {have!r} here, {value!r} in the original"
                   + (f" ({note})" if note else ""))
    if cfg.DATASET.root and "Synthetic" in str(cfg.DATASET.root):
        out.append("data: the synthetic stand-in, not Human3.6M")
    return out


def describe_protocol(cfg) -> str:
    """Two lines for the protocol card: which protocol ran, and the differences from the
    original's recipe (or that none is on record)."""
    name = protocol_name(cfg)
    if name == OFFICIAL:
        head = ("protocol: official (all training subjects train, checkpoint selected on the "
                "test split, as the original code does)")
    elif name == CLEAN:
        head = (f"protocol: clean (checkpoint selected on a validation hold-out of "
                f"{cfg.DATASET.val_fraction:.0%} of the training sequences; test split used once)")
    else:
        head = (f"protocol: custom (checkpoint selected on the test split, and "
                f"{cfg.DATASET.val_fraction:.0%} of the training sequences held out unused)")
    diffs = recipe_differences(cfg)
    if diffs is None:
        return head + f"\nrecipe: no published recipe of {cfg.MODEL.name} on record"
    source = RECIPES[cfg.MODEL.name].source
    if not diffs:
        return head + f"\nrecipe: exactly the {source}"
    return head + f"\nrecipe differences from the {source}:\n  " + "\n  ".join(diffs)
