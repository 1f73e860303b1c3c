"""Model names -> builders and their options. A config names its model (MODEL.name).

Each model module in ``lib/models`` registers itself beside its builder::

    @dataclass
    class MyOptions:
        hid_dim: int = option(64, "width")
        p_dropout: float = option(0.0, "dropout rate", training_only=True)

    @register_model("Mine", options=MyOptions, num_joints=(16, 17))
    def build_mine(opts: MyOptions, cfg, ctx): ...

The options class is the single place of the MODEL.* defaults: lib.config validates a YAML's
MODEL section against it and writes the full set to a run's config.yml. Model modules are
imported on the first look-up (every module of the lib.models package), so importing this
module stays light and adding a model is one new file plus one YAML.
"""
from __future__ import annotations

import dataclasses
import importlib
import logging
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Tuple

from lib.config import ConfigError
from lib.geometry.skeleton import H36M16, H36M17

log = logging.getLogger("pose")


def option(default, help: str = "", *, training_only: bool = False, choices=None,
           item_type: Optional[type] = None):
    """A dataclass field with what the config layer checks: choices, list item type, and
    ``training_only`` for options that change training but not the built module (e.g. a loss
    or schedule knob), which the option-coverage test then does not expect to alter the model."""
    meta = {"help": help, "training_only": training_only,
            "choices": tuple(choices) if choices is not None else None, "item_type": item_type}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass
class ModelEntry:
    builder: Callable               # builder(options, cfg, ctx) -> nn.Module
    options: type                   # dataclass of the model's MODEL.* options
    needs_mesh: bool = False        # trains with the coarse-mesh targets
    num_joints: Tuple[int, ...] = (16, 17)   # joint counts the model accepts
    # load_weights(model, ckpt, source) -> description, for a model that also reads
    # checkpoints of its original code (HGN's official final.pth.tar); None: strict load
    load_weights: Optional[Callable] = None

    def option_fields(self) -> dict:
        return {f.name: f for f in dataclasses.fields(self.options)}

    def defaults(self) -> dict:
        """name -> default of every declared option, in declaration order."""
        return dataclasses.asdict(self.options())


MODELS: dict = {}


def register_model(name, options, needs_mesh=False, num_joints=(16, 17), load_weights=None):
    """Decorator registering ``builder(options, cfg, ctx)`` under ``name``; ``load_weights``
    is the model's own checkpoint adapter (see :class:`ModelEntry`)."""
    if not dataclasses.is_dataclass(options):
        raise TypeError(f"model {name}: options must be a dataclass, got {options!r}")
    if "name" in {f.name for f in dataclasses.fields(options)}:
        raise TypeError(f"model {name}: 'name' is reserved for MODEL.name")

    def deco(fn):
        MODELS[name] = ModelEntry(fn, options, needs_mesh, tuple(num_joints), load_weights)
        return fn
    return deco


def model_entry(name) -> ModelEntry:
    _load_builtin_models()
    if name not in MODELS:
        raise ConfigError(f"unknown model '{name}' in MODEL.name; registered: "
                         f"{', '.join(sorted(MODELS))}")
    return MODELS[name]


def model_names() -> list:
    _load_builtin_models()
    return sorted(MODELS)


class ModelContext:
    """Lazily built resources shared by a model and its dataset (graphs, body model)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self._body = None
        self._mesh = None

    @property
    def skeleton(self):
        return H36M17 if self.cfg.DATASET.num_joints == 17 else H36M16

    def body_model(self):
        if self._body is None:
            from lib.body.smpl import BodyModel
            self._body = BodyModel.from_dir(self.cfg.smpl_dir, gender="neutral")
        return self._body

    def mesh_levels(self):
        """(hierarchy, fine_level, mid_level) of the body model's HEM coarsening."""
        if self._mesh is None:
            from lib.graphs.mesh_graphs import build_mesh_hierarchy, select_levels
            body = self.body_model()
            m = self.cfg.MODEL
            hierarchy = build_mesh_hierarchy(
                body.faces, body.num_vertices, num_levels=m.num_coarsening_levels,
                cache_dir=Path(self.cfg.cache_dir) / "graphs", fingerprint=body.fingerprint)
            fine, mid = select_levels(hierarchy, targets=tuple(m.graph_targets),
                                      explicit=m.graph_levels)
            self._mesh = (hierarchy, fine, mid)
        return self._mesh

    def mesh_targets(self):
        """What lib.data.lifting needs to compute the coarse-mesh targets."""
        from lib.data.lifting import MeshTargets
        hierarchy, fine, mid = self.mesh_levels()
        return MeshTargets(body=self.body_model(),
                           pool_fine=hierarchy.full_to_level[fine.index],
                           pool_mid=hierarchy.full_to_level[mid.index],
                           fingerprint=f"{hierarchy.fingerprint}:{fine.index}:{mid.index}")


def model_options(entry: ModelEntry, cfg):
    """The entry's options dataclass filled from cfg.MODEL (validated by lib.config)."""
    values = {k: cfg.MODEL[k] for k in entry.option_fields() if k in cfg.MODEL}
    return entry.options(**values)


def build_model(cfg, ctx: ModelContext | None = None):
    entry = model_entry(cfg.MODEL.name)
    if cfg.DATASET.num_joints not in entry.num_joints:
        raise ConfigError(f"model {cfg.MODEL.name} takes {entry.num_joints} joints, but "
                         f"DATASET.num_joints is {cfg.DATASET.num_joints}")
    return entry.builder(model_options(entry, cfg), cfg, ctx or ModelContext(cfg))


_LOADED = False


def _load_builtin_models():
    """Import every module of lib.models once; each registers the models it defines."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import lib.models as pkg
    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg.__name__}.{info.name}")
