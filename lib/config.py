"""Experiment configuration: defaults defined once, YAML (with ``_BASE_``) and --opts overrides.

A YAML may only override keys that exist (a misspelt key is an error naming the closest valid
one and listing the section's keys) and must keep their types. The MODEL section holds
``name`` plus the options the chosen model declares in its own module (see lib.registry), so
an option another model would use is an error, not silently ignored. ``_BASE_: other.yml``
(or a list) loads other YAMLs first, relative to the YAML's folder. ``--opts KEY VALUE`` pairs
override after the YAML, e.g. ``--opts TRAIN.lr 0.0005 TRAIN.epochs 3``. Nothing here touches
the file system except :func:`load_config` reading the YAMLs.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
from pathlib import Path

import yaml

from lib.errors import PoseError
from lib.fileio import atomic_write_text


class ConfigError(PoseError, ValueError):
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
        "name": "HGN",               # registered name: HGN | GraphSH | SemGCN | Martinez; the
                                     # other MODEL.* keys and their defaults are the chosen
                                     # model's options (lib/models/*.py, register_model)
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
        "select_metric": "headline",  # what selection compares: 'headline' (the protocol's
                                     # headline: action mean on Human3.6M) | 'frame_mean' (the
                                     # originals: test MPJPE pooled over all frames)
        "save_every": 1,             # write checkpoint<epoch>.pth.tar every k epochs
        "flip_aug": False,           # horizontal flip augmentation
        "amp": False,                # CUDA mixed precision (bf16/fp16 autocast)
        "compile": False,            # torch.compile the model (CUDA)
        "num_threads": 0,            # torch CPU threads; 0: torch's default. The run writes the
                                     # count it used here (config.yml): results depend on it
    },
    "TEST": {
        "batch_size": 256,
        "weight_path": "pretrained/final.pth.tar",
        "vis": False,                # skeleton pictures and .obj meshes in vis/
        "vis_samples": 4,
        "flip_test": False,
    },
}

_LISTS_OF = {"train_subjects": int, "test_subjects": int, "lr_step": int}
BASE_KEY = "_BASE_"


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


def _entry(name):
    """The registry entry of model ``name``; an unknown name is a ConfigError."""
    from lib.registry import model_entry
    if not isinstance(name, str):
        raise ConfigError(f"config key 'MODEL.name' must be of type str, got {name!r}")
    try:
        return model_entry(name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def model_defaults(name) -> dict:
    """MODEL section of model ``name``: its name and every declared option's default."""
    return {"name": name, **_entry(name).defaults()}


def default_config(model: str | None = None) -> Config:
    cfg = copy.deepcopy(DEFAULTS)
    cfg["MODEL"] = model_defaults(model or DEFAULTS["MODEL"]["name"])
    return _wrap(cfg)


def _unknown_key(path: str, valid, source: str, what: str = "") -> ConfigError:
    section = path.rsplit(".", 1)[0] if "." in path else ""
    full = [f"{section}.{k}" if section else k for k in valid]
    close = difflib.get_close_matches(path, full, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    where = what or (f"valid keys of {section}" if section else "valid top-level keys")
    return ConfigError(f"{source}: unknown config key '{path}'.{hint} "
                       f"{where[0].upper() + where[1:]}: {', '.join(valid)}.")


def _check_type(path, default, value, source, item_type=None):
    if value is None and (default is None or item_type is not None):
        return value
    if default is None and item_type is None:
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
    elif isinstance(default, list) or item_type is not None:
        if isinstance(value, (list, tuple)):
            elem = item_type or _LISTS_OF.get(path.split(".")[-1])
            if elem is None or all(isinstance(v, elem) and not isinstance(v, bool) for v in value):
                return list(value)
        default = default if default is not None else []
    raise ConfigError(f"{source}: config key '{path}' must be of type "
                      f"{type(default).__name__}, got {value!r} ({type(value).__name__}).")


def _field_default(f):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _merge_model(section, overrides, source, fixed_name=None):
    """MODEL.*: a new name resets the section to that model's defaults (unless the final name
    is already fixed, as in load_config); every other key must be the model's option."""
    if not isinstance(overrides, dict):
        raise ConfigError(f"{source}: expected a mapping at 'MODEL', "
                          f"got {type(overrides).__name__}")
    own = overrides.get("name", section["name"])
    name = fixed_name or own
    _entry(own)                                   # a misspelt name is an error even if overridden
    if name != section["name"]:
        section.clear()
        section.update(model_defaults(name))
    fields = _entry(name).option_fields()
    for key, value in overrides.items():
        if key == "name":
            continue
        if key not in fields:
            note = f" (MODEL.name '{name}' was set later, over '{own}')" if own != name else ""
            raise _unknown_key(f"MODEL.{key}", ["name"] + list(fields), source,
                               f"model '{name}' has no such option{note}; its options are")
        f = fields[key]
        section[key] = _check_type(f"MODEL.{key}", _field_default(f), value, source,
                                   f.metadata.get("item_type"))


def merge(cfg: Config, overrides: dict, source: str, prefix: str = "",
          fixed_model: str | None = None) -> Config:
    """Merge ``overrides`` into ``cfg`` in place, validating keys and types."""
    if not isinstance(overrides, dict):
        raise ConfigError(f"{source}: expected a mapping at '{prefix or 'top level'}', "
                          f"got {type(overrides).__name__}")
    for key, value in overrides.items():
        path = prefix + str(key)
        if key == BASE_KEY:
            raise ConfigError(f"{source}: '{BASE_KEY}' is only allowed at the top of a YAML file")
        if key not in cfg:
            raise _unknown_key(path, list(cfg), source)
        if path == "MODEL":
            _merge_model(cfg[key], value, source, fixed_model)
        elif isinstance(cfg[key], dict):
            merge(cfg[key], value, source, path + ".")
        else:
            cfg[key] = _check_type(path, _default_at(path), value, source)
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


def _opts_layers(opts) -> list:
    opts = list(opts or [])
    if len(opts) % 2:
        raise ConfigError(f"--opts needs KEY VALUE pairs, got an odd count: {opts}")
    layers = []
    for key, text in zip(opts[::2], opts[1::2]):
        node = cursor = {}
        parts = key.split(".")
        for p in parts[:-1]:
            cursor[p] = {}
            cursor = cursor[p]
        cursor[parts[-1]] = _parse_cli_value(text)
        layers.append(node)
    return layers


def apply_opts(cfg: Config, opts) -> Config:
    for node in _opts_layers(opts):
        merge(cfg, node, "--opts")
    return cfg


def _deep_update(base: dict, child: dict) -> dict:
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def read_yaml(path, _chain=()) -> dict:
    """The YAML at ``path`` with its ``_BASE_`` files applied first (recursively), unvalidated."""
    p = Path(path)
    chain = _chain + (str(path),)
    if not p.is_file():
        if _chain:
            raise ConfigError(f"config file '{_chain[-1]}' names {BASE_KEY} '{path}', "
                              f"which does not exist")
        raise ConfigError(f"config file '{path}' does not exist. The shipped configs are in "
                          f"asset/yaml/ (e.g. asset/yaml/HGN_synthetic_train.yml).")
    if any(Path(c).resolve() == p.resolve() for c in _chain):
        raise ConfigError(f"{BASE_KEY} cycle: {' -> '.join(chain)}")
    try:
        data = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file '{path}' cannot be read as YAML: {exc}") from None
    if not data:
        raise ConfigError(f"config file '{path}' is empty; give at least MODEL.name (or "
                          f"{BASE_KEY}), or leave out --cfg for the built-in defaults")
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{path}': expected a mapping at top level, "
                          f"got {type(data).__name__}")
    bases = data.pop(BASE_KEY, [])
    bases = [bases] if isinstance(bases, str) else bases
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"config file '{path}': {BASE_KEY} must be a file name or a list of "
                          f"them, got {bases!r}")
    merged = {}
    for base in bases:
        _deep_update(merged, read_yaml(p.parent / base, chain))
    return _deep_update(merged, data)


def load_config(path=None, opts=None) -> Config:
    """Defaults, then the YAML at ``path`` (bases first), then ``opts``; validated.

    MODEL.name is settled first (the last layer naming it wins), so every layer's MODEL
    options are checked against the model that will be built.
    """
    layers = [(read_yaml(path), str(path))] if path is not None else []
    layers += [(node, "--opts") for node in _opts_layers(opts)]
    name, name_source = DEFAULTS["MODEL"]["name"], "the defaults"
    for data, source in layers:
        model = data.get("MODEL")
        if isinstance(model, dict) and "name" in model:
            name, name_source = model["name"], source
    try:
        cfg = default_config(name)
    except ConfigError as exc:
        raise ConfigError(f"{name_source}: {exc}") from None
    for data, source in layers:
        merge(cfg, data, source, fixed_model=name)
    validate(cfg)
    return cfg


_FLOAT32_MAX = 3.4028234663852886e38

_CHOICES = {
    "DATASET.num_joints": (16, 17),
    "TRAIN.optimizer": ("adam", "sgd", "rmsprop"),
    "TRAIN.scheduler": ("step", "plateau", "none"),
    "TRAIN.step_unit": ("epoch", "iteration"),
    "TRAIN.select_on": ("val", "test"),
    "TRAIN.select_metric": ("headline", "frame_mean"),
}

# DATASET keys a format reads but cannot honour, with the reason (None is always allowed).
_IGNORED_BY_FORMAT = {
    ("npz", "distort_projection"): "the npz format reads every camera's 2D keypoints from "
    "data_2d_h36m_<keypoints>.npz and projects nothing, so distortion would change nothing "
    "(the public GT file is already projected with lens distortion); leave it null",
}


def _validate_dataset(cfg: Config):
    from lib.data.formats import get_format
    d = cfg.DATASET
    info = get_format(d.format).info(cfg)
    if d.keypoints not in info.keypoints:
        raise ConfigError(f"DATASET.keypoints '{d.keypoints}' is not available with "
                          f"format '{d.format}'; it has: {', '.join(info.keypoints)}")
    for (fmt, key), why in _IGNORED_BY_FORMAT.items():
        if d.format == fmt and d[key] is not None:
            raise ConfigError(f"DATASET.{key} cannot be set with format '{fmt}': {why}")
    if d.train_stride < 1 or d.test_stride < 1:
        raise ConfigError("DATASET.train_stride and DATASET.test_stride must be >= 1")
    if not 0 <= d.val_fraction < 1:
        raise ConfigError("DATASET.val_fraction must be in [0, 1)")
    if cfg.TRAIN.select_on == "val" and d.val_fraction == 0:
        raise ConfigError("TRAIN.select_on is 'val' but DATASET.val_fraction is 0, so there is no "
                          "validation split to select on. Set TRAIN.select_on: test (the "
                          "originals' protocol, see the *_official.yml configs) or "
                          "DATASET.val_fraction > 0 (e.g. 0.1).")


def _validate_model(cfg: Config):
    entry = _entry(cfg.MODEL.name)
    fields = entry.option_fields()
    extra = sorted(set(cfg.MODEL) - set(fields) - {"name"})
    missing = sorted(set(fields) - set(cfg.MODEL))
    if extra or missing:
        raise ConfigError(f"MODEL section does not match model '{cfg.MODEL.name}': "
                          f"unknown {extra}, missing {missing}; its options: {', '.join(fields)}")
    for key, f in fields.items():
        choices = f.metadata.get("choices")
        if choices is not None and cfg.MODEL[key] not in choices:
            raise ConfigError(f"config key 'MODEL.{key}' of model '{cfg.MODEL.name}' must be "
                              f"one of {list(choices)}, got {cfg.MODEL[key]!r}")
    levels = cfg.MODEL.get("graph_levels")
    if levels is not None and len(levels) != 2:
        raise ConfigError("MODEL.graph_levels must be [fine_level, mid_level] or null")


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
    if cfg.TRAIN.max_steps_per_epoch < 0:
        raise ConfigError("TRAIN.max_steps_per_epoch must be >= 0 (0: full epochs)")
    if not cfg.TRAIN.lr > 0:
        raise ConfigError(f"TRAIN.lr must be > 0, got {cfg.TRAIN.lr}")
    if not cfg.TRAIN.lr <= _FLOAT32_MAX:      # the optimisers compute in float32
        raise ConfigError(f"TRAIN.lr must be a finite float32 value (<= {_FLOAT32_MAX:.3g}), "
                          f"got {cfg.TRAIN.lr}")
    _validate_dataset(cfg)
    _validate_model(cfg)


def save_config(cfg: Config, path):
    """The fully resolved config (bases applied, every option of the model written out)."""
    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
