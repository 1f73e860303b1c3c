"""Experiment configuration: defaults defined once here, YAML and command-line overrides.

A YAML may only override keys that exist below (a misspelt key is an error naming the closest
valid one) and must keep their types (a wrong type is an error naming the key). ``--opts KEY
VALUE`` pairs override after the YAML, e.g. ``--opts TRAIN.lr 0.0005 TRAIN.epochs 3``.
Nothing here touches the file system except :func:`load_config` reading the YAML.
"""
from __future__ import annotations

import copy
import difflib
from pathlib import Path

import yaml


class ConfigError(ValueError):
    """A configuration problem the user can fix by editing the YAML or the command line."""


# Every key, with its default. ``None`` defaults accept any type.
DEFAULTS = {
    "name": "",                 # free text shown in logs
    "seed": 123,                # torch/numpy/python seeds (the original seeds torch with 123)
    "output_dir": "experiment",  # experiment/exp_<timestamp>/ is created under it
    "cache_dir": "data/cache",   # per-dataset tensor caches (git-ignored)
    "smpl_dir": "smplpytorch/smplpytorch/native/models",  # SMPL model pickles
    "DATASET": {
        "format": "json",            # 'json' (COCO-style, HGN) | 'npz' (VideoPose3D, GraphSH)
        "root": "data",              # json: holds Human36M/annotations; npz: holds the .npz files
        "synthetic": False,          # generate data/Synthetic (and its body model) if absent
        "synthetic_frames": 0,       # frames per generated sequence; 0: the generator's default
        "keypoints": "gt",           # 2D source: gt | cpn_ft_h36m_dbb | detectron_ft_h36m
        "num_joints": 17,            # 17 (HGN, H36M-17) or 16 (SemGCN/GraphSH, no Neck/Nose)
        "train_subjects": [1, 5, 6, 7, 8],
        "test_subjects": [9, 11],
        "train_stride": 5,           # every k-th frame (HGN: 5 train / 50 test; GraphSH: 1 / 1)
        "test_stride": 50,
        "exclude_corrupted": True,   # drop the three corrupted S9 sequences
        "require_smpl": True,        # drop frames without an SMPL fit (HGN does); else keep them
                                     # with no mesh target
        "val_fraction": 0.1,         # share of training sequences held out for model selection
        "distort_projection": None,  # None: lens distortion for npz gt, none for json (as the
                                     # originals); True/False forces it
    },
    "MODEL": {
        "name": "HGN",               # registered name: HGN | GraphSH | SemGCN | Martinez
        "hid_dim": 128,
        "gcn": "dc_preagg",          # GraphSH graph convolution variant
        "num_stacks": 4,             # GraphSH hourglasses
        "num_layers": 4,             # SemGCN residual blocks
        "non_local": False,          # SemGCN non-local layers
        "linear_size": 1024,         # Martinez width
        "num_stage": 2,              # Martinez residual stages
        "p_dropout": 0.0,
        "num_coarsening_levels": 9,  # HEM levels built from the body model's faces
        "graph_levels": None,        # [fine, mid] level indices, or None: closest to targets
        "graph_targets": [96, 48],   # padded sizes the default level choice aims at
    },
    "LOSS": {
        "pose_weight": 100.0,        # 100*MSE(joints) + MSE(mesh_fine) + MSE(mesh_mid), metres
        "mesh_fine_weight": 1.0,
        "mesh_mid_weight": 1.0,
    },
    "TRAIN": {
        "batch_size": 64,
        "shuffle": True,
        "epochs": 100,
        "optimizer": "adam",         # adam | sgd | rmsprop
        "lr": 1e-3,
        "momentum": 0.9,             # sgd / rmsprop
        "weight_decay": 0.0,
        "scheduler": "step",         # step | plateau | none
        "lr_step": [20, 40, 60, 80, 100, 120, 140],
        "lr_factor": 0.9,
        "step_unit": "epoch",        # milestones counted in epochs or optimiser 'iteration's
        "plateau_patience": 5,
        "max_norm": 1.0,             # gradient-norm clip; 0 disables
        "max_steps_per_epoch": 0,    # 0: full epochs; >0 caps each epoch (quick runs)
        "print_freq": 100,
        "select_on": "val",          # 'val' (held-out training sequences) | 'test' (original)
        "save_every": 1,             # write checkpoint<epoch>.pth.tar every k epochs
        "flip_aug": False,           # horizontal flip augmentation
        "amp": False,                # CUDA mixed precision (bf16/fp16 autocast)
        "compile": False,            # torch.compile the model (CUDA)
        "num_threads": 0,            # torch CPU threads; 0: leave torch's default
    },
    "TEST": {
        "batch_size": 256,
        "weight_path": "pretrained/final.pth.tar",
        "vis": False,                # skeleton pictures and .obj meshes in vis/
        "vis_samples": 4,
        "flip_test": False,
    },
}

_LISTS_OF = {"train_subjects": int, "test_subjects": int, "lr_step": int, "graph_targets": int,
             "graph_levels": int}


class Config(dict):
    """A nested dict with attribute access: cfg.TRAIN.lr."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value

    def to_dict(self):
        return {k: (v.to_dict() if isinstance(v, Config) else copy.deepcopy(v))
                for k, v in self.items()}


def _wrap(d):
    return Config({k: _wrap(v) if isinstance(v, dict) else v for k, v in d.items()})


def default_config() -> Config:
    return _wrap(copy.deepcopy(DEFAULTS))


def _all_keys(d=DEFAULTS, prefix=""):
    for k, v in d.items():
        yield prefix + k
        if isinstance(v, dict):
            yield from _all_keys(v, prefix + k + ".")


def _unknown_key(path: str, source: str) -> ConfigError:
    close = difflib.get_close_matches(path, list(_all_keys()), n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"{source}: unknown config key '{path}'.{hint}")


def _check_type(path, default, value, source):
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):          # YAML 1.1 reads '1e-3' (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    elif isinstance(default, list):
        if isinstance(value, (list, tuple)):
            elem = _LISTS_OF.get(path.split(".")[-1])
            if elem is None or all(isinstance(v, elem) and not isinstance(v, bool) for v in value):
                return list(value)
    raise ConfigError(f"{source}: config key '{path}' must be of type "
                      f"{type(default).__name__}, got {value!r} ({type(value).__name__}).")


def merge(cfg: Config, overrides: dict, source: str, prefix: str = "") -> Config:
    """Merge ``overrides`` into ``cfg`` in place, validating keys and types against DEFAULTS."""
    if not isinstance(overrides, dict):
        raise ConfigError(f"{source}: expected a mapping at '{prefix or 'top level'}', "
                          f"got {type(overrides).__name__}")
    for key, value in overrides.items():
        path = prefix + str(key)
        if key not in cfg:
            raise _unknown_key(path, source)
        if isinstance(cfg[key], dict):
            merge(cfg[key], value, source, path + ".")
        else:
            default = _default_at(path)
            cfg[key] = _check_type(path, default, value, source)
    return cfg


def _default_at(path):
    node = DEFAULTS
    for part in path.split("."):
        node = node[part]
    return node


def _parse_cli_value(text: str):
    """'3' -> 3, '1e-3' -> 0.001, 'true' -> True, '[1,2]' -> [1, 2]; as YAML reads it."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_opts(cfg: Config, opts) -> Config:
    opts = list(opts or [])
    if len(opts) % 2:
        raise ConfigError(f"--opts needs KEY VALUE pairs, got an odd count: {opts}")
    for key, text in zip(opts[::2], opts[1::2]):
        node = {}
        cursor = node
        parts = key.split(".")
        for p in parts[:-1]:
            cursor[p] = {}
            cursor = cursor[p]
        cursor[parts[-1]] = _parse_cli_value(text)
        merge(cfg, node, "--opts")
    return cfg


def load_config(path=None, opts=None) -> Config:
    """Defaults, then the YAML at ``path`` (if any), then ``opts``; validated."""
    cfg = default_config()
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file '{path}' does not exist. The shipped configs are in "
                              f"asset/yaml/ (e.g. asset/yaml/HGN_synthetic_train.yml).")
        try:
            data = yaml.safe_load(p.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"config file '{path}' cannot be read as YAML: {exc}") from None
        merge(cfg, data or {}, str(path))
    apply_opts(cfg, opts)
    validate(cfg)
    return cfg


_CHOICES = {
    "DATASET.format": ("json", "npz"),
    "DATASET.num_joints": (16, 17),
    "TRAIN.optimizer": ("adam", "sgd", "rmsprop"),
    "TRAIN.scheduler": ("step", "plateau", "none"),
    "TRAIN.step_unit": ("epoch", "iteration"),
    "TRAIN.select_on": ("val", "test"),
}


def validate(cfg: Config):
    for path, choices in _CHOICES.items():
        section, key = path.split(".")
        if cfg[section][key] not in choices:
            raise ConfigError(f"config key '{path}' must be one of {list(choices)}, "
                              f"got {cfg[section][key]!r}")
    if cfg.TRAIN.batch_size < 1 or cfg.TEST.batch_size < 1:
        raise ConfigError("TRAIN.batch_size and TEST.batch_size must be >= 1")
    if cfg.TRAIN.epochs < 1:
        raise ConfigError("TRAIN.epochs must be >= 1")
    if not 0 <= cfg.DATASET.val_fraction < 1:
        raise ConfigError("DATASET.val_fraction must be in [0, 1)")
    levels = cfg.MODEL.graph_levels
    if levels is not None and len(levels) != 2:
        raise ConfigError("MODEL.graph_levels must be [fine_level, mid_level] or null")


def save_config(cfg: Config, path):
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
