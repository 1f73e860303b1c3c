"""Baselines that show what HGN's hierarchy buys: Martinez's fully connected lifter and SemGCN.

* ``LinearModel`` (Martinez et al., ICCV 2017): Linear -> BN -> ReLU -> dropout, ``num_stage``
  residual stages of two such layers, a linear output. Names as the public PyTorch port
  (w1, batch_norm1, linear_stages.{i}.{w1,batch_norm1,w2,batch_norm2}, w2).
* ``SemGCN`` (Zhao et al., CVPR 2019): input SemGraphConv block 2 -> hid, ``num_layers``
  residual blocks, an optional non-local layer after the input block and after every residual
  block, a SemGraphConv 128 -> 3 head. Names as the public code (gconv_input, gconv_layers,
  gconv_output), except that the non-local wrapper's child is ``nonlocal1`` as in HGN (the public
  SemGCN calls it ``nonlocal``, a Python keyword). With ``nodes_group`` (``SEMGCN_GROUPS_H36M16``
  for the 16-joint skeleton) the non-local layers reorder the joints group by group and max-pool
  phi/g per group as SemGCN does; without it they act on all nodes (HGN's variant).

Both map (B, J, 2) to {'pose': (B, J_out, 3)}.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from lib.graphs.hourglass_graphs import GROUPS_16_TO_8
from lib.models.gconv import SemGraphConv
from lib.models.hgn import NodeMajorSequential, ResSemGraphConv, SemGraphConvBlock, sem_gconv_nm
from lib.models.nonlocal_block import GraphNonLocal

# SemGCN's joint pairs for its non-local layers: the pairs GraphSH pools 16 -> 8 by.
SEMGCN_GROUPS_H36M16 = GROUPS_16_TO_8


def _check_pose_input(x: torch.Tensor, joints: int, dim: int, name: str):
    if x.dim() != 3 or x.shape[1] != joints or x.shape[2] != dim:
        raise ValueError(f"{name} expects poses of shape (B, {joints}, {dim}), got {tuple(x.shape)}")


class _LinearStage(nn.Module):
    """Martinez's residual stage: x + (Linear-BN-ReLU-Dropout) twice."""

    def __init__(self, size: int, p_dropout: float):
        super().__init__()
        self.w1 = nn.Linear(size, size)
        self.batch_norm1 = nn.BatchNorm1d(size)
        self.w2 = nn.Linear(size, size)
        self.batch_norm2 = nn.BatchNorm1d(size)
        self.dropout = nn.Dropout(p_dropout)

    def forward(self, x):
        y = self.dropout(torch.relu(self.batch_norm1(self.w1(x))))
        y = self.dropout(torch.relu(self.batch_norm2(self.w2(y))))
        return x + y


class LinearModel(nn.Module):
    """Martinez et al.'s fully connected 2D -> 3D lifter (Kaiming-normal weights, as the port)."""

    def __init__(self, num_joints_in: int = 17, num_joints_out: int = 17, linear_size: int = 1024,
                 num_stage: int = 2, p_dropout: float = 0.5, in_dim: int = 2, out_dim: int = 3):
        super().__init__()
        self.num_joints_in, self.num_joints_out = num_joints_in, num_joints_out
        self.in_dim, self.out_dim = in_dim, out_dim
        self.w1 = nn.Linear(num_joints_in * in_dim, linear_size)
        self.batch_norm1 = nn.BatchNorm1d(linear_size)
        self.linear_stages = nn.ModuleList(_LinearStage(linear_size, p_dropout) for _ in range(num_stage))
        self.w2 = nn.Linear(linear_size, num_joints_out * out_dim)
        self.dropout = nn.Dropout(p_dropout)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.kaiming_normal_(module.weight)

    def forward(self, x: torch.Tensor) -> dict:
        _check_pose_input(x, self.num_joints_in, self.in_dim, "LinearModel")
        y = self.dropout(torch.relu(self.batch_norm1(self.w1(x.reshape(x.shape[0], -1)))))
        for stage in self.linear_stages:
            y = stage(y)
        return {"pose": self.w2(y).view(x.shape[0], self.num_joints_out, self.out_dim)}


class SemGCN(nn.Module):
    """SemGCN(adj): (B, N, 2) -> {'pose': (B, N, 3)}; hid 128 and 4 blocks as published."""

    def __init__(self, adj, hid_dim: int = 128, num_layers: int = 4, non_local: bool = False,
                 nodes_group=None, p_dropout: float | None = None, in_dim: int = 2, out_dim: int = 3):
        super().__init__()
        adj = torch.as_tensor(adj, dtype=torch.float32)
        if adj.dim() != 2 or adj.shape[0] != adj.shape[1]:
            raise ValueError(f"SemGCN: adj must be a square (N, N) adjacency, got {tuple(adj.shape)}")
        if nodes_group is not None and not non_local:
            raise ValueError("SemGCN: nodes_group only applies with non_local=True")
        self.num_nodes, self.in_dim = adj.shape[0], in_dim

        def nonlocal_layer():
            return GraphNonLocal(hid_dim, nodes_group=nodes_group)

        inputs = [SemGraphConvBlock(adj, in_dim, hid_dim, p_dropout)]
        layers = []
        if non_local:
            inputs.append(nonlocal_layer())
        for _ in range(num_layers):
            layers.append(ResSemGraphConv(adj, hid_dim, p_dropout=p_dropout))
            if non_local:
                layers.append(nonlocal_layer())
        self.gconv_input = NodeMajorSequential(*inputs)
        self.gconv_layers = NodeMajorSequential(*layers)
        self.gconv_output = SemGraphConv(hid_dim, out_dim, adj)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def forward(self, x: torch.Tensor) -> dict:
        _check_pose_input(x, self.num_nodes, self.in_dim, "SemGCN")
        h = self.gconv_layers.forward_nm(self.gconv_input.forward_nm(x.transpose(0, 1)))
        return {"pose": sem_gconv_nm(self.gconv_output, h).transpose(0, 1).contiguous()}


# ----------------------------------------------------------------------------- registration
from dataclasses import dataclass  # noqa: E402

from lib.registry import option, register_model  # noqa: E402


@dataclass
class SemGCNOptions:
    """MODEL.* of SemGCN (p_dropout 0 means no dropout layers, as the public code's None)."""
    hid_dim: int = option(128, "channels of every graph convolution")
    num_layers: int = option(4, "residual blocks")
    non_local: bool = option(False, "a non-local layer after the input and after every block")
    p_dropout: float = option(0.0, "dropout rate; 0: none")


@register_model("SemGCN", options=SemGCNOptions)
def build_semgcn(opts: SemGCNOptions, cfg, ctx) -> SemGCN:
    from lib.graphs.skeleton_graph import skeleton_adjacency
    return SemGCN(skeleton_adjacency(ctx.skeleton), hid_dim=opts.hid_dim,
                  num_layers=opts.num_layers, non_local=opts.non_local,
                  p_dropout=opts.p_dropout or None)


@dataclass
class MartinezOptions:
    """MODEL.* of the Martinez baseline (LinearModel)."""
    linear_size: int = option(1024, "width of every linear layer")
    num_stage: int = option(2, "residual stages")
    p_dropout: float = option(0.0, "dropout rate")


@register_model("Martinez", options=MartinezOptions)
def build_martinez(opts: MartinezOptions, cfg, ctx) -> LinearModel:
    j = cfg.DATASET.num_joints
    return LinearModel(num_joints_in=j, num_joints_out=j, linear_size=opts.linear_size,
                       num_stage=opts.num_stage, p_dropout=opts.p_dropout)
