"""Model names -> builders. A config names its model (MODEL.name); the registry builds it.

Builders receive the config and a :class:`ModelContext`, which loads the body model and its
mesh-graph hierarchy only for models that need them (HGN).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from lib.geometry.skeleton import H36M16, H36M17

log = logging.getLogger("pose")


@dataclass
class ModelEntry:
    builder: Callable
    needs_mesh: bool = False       # trains with the coarse-mesh targets
    num_joints: tuple = (16, 17)   # joint counts the model accepts


MODELS: dict = {}


def register(name, needs_mesh=False, num_joints=(16, 17)):
    def deco(fn):
        MODELS[name] = ModelEntry(fn, needs_mesh, tuple(num_joints))
        return fn
    return deco


def model_entry(name) -> ModelEntry:
    _load_builtin_models()
    if name not in MODELS:
        raise ValueError(f"unknown model '{name}' in MODEL.name; registered: "
                         f"{', '.join(sorted(MODELS))}")
    return MODELS[name]


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


def build_model(cfg, ctx: ModelContext | None = None) -> torch.nn.Module:
    entry = model_entry(cfg.MODEL.name)
    if cfg.DATASET.num_joints not in entry.num_joints:
        raise ValueError(f"model {cfg.MODEL.name} takes {entry.num_joints} joints, but "
                         f"DATASET.num_joints is {cfg.DATASET.num_joints}")
    return entry.builder(cfg, ctx or ModelContext(cfg))


_LOADED = False


def _load_builtin_models():
    """Register the built-in models (imported here so the registry itself stays light)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    from lib.graphs.skeleton_graph import skeleton_adjacency

    @register("HGN", needs_mesh=True, num_joints=(17,))
    def _hgn(cfg, ctx):
        from lib.models.hgn import HGN
        _, fine, mid = ctx.mesh_levels()
        return HGN(skeleton_adjacency(H36M17), mid.adjacency, fine.adjacency,
                   hid_dim=cfg.MODEL.hid_dim, mid_index=mid.real_positions,
                   fine_index=fine.real_positions)

    @register("GraphSH", num_joints=(16,))
    def _graphsh(cfg, ctx):
        from lib.models.graph_sh import GraphSH
        return GraphSH(None, hid_dim=cfg.MODEL.hid_dim, num_stacks=cfg.MODEL.num_stacks,
                       gcn=cfg.MODEL.gcn, p_dropout=cfg.MODEL.p_dropout, num_joints=16)

    @register("SemGCN")
    def _semgcn(cfg, ctx):
        from lib.models.baselines import SemGCN
        return SemGCN(skeleton_adjacency(ctx.skeleton), hid_dim=cfg.MODEL.hid_dim,
                      num_layers=cfg.MODEL.num_layers, non_local=cfg.MODEL.non_local,
                      p_dropout=cfg.MODEL.p_dropout or None)

    @register("Martinez")
    def _martinez(cfg, ctx):
        from lib.models.baselines import LinearModel
        j = cfg.DATASET.num_joints
        return LinearModel(num_joints_in=j, num_joints_out=j,
                           linear_size=cfg.MODEL.linear_size, num_stage=cfg.MODEL.num_stage,
                           p_dropout=cfg.MODEL.p_dropout)
