"""GraphSH: Graph Stacked Hourglass network (Xu & Takano, CVPR 2021); facts in docs/graphsh.md.

Input graph conv (2 -> C), ``num_stacks`` graph hourglasses on the 16 -> 8 -> 4 skeleton
scales (widths C, 1.5C, 2C), a 1x1 projection of every hourglass output to C/num_stacks
channels, their concatenation, a squeeze-and-excitation block and a 1x1 output layer.

Differences from the public code, on purpose:
* the 8 -> 16 unpooling map is derived from the pooling groups, so the lower legs are not
  swapped (lib/graphs/hourglass_graphs.py);
* the SE block averages over joints without ``squeeze()``, so a batch of one works.

Everything runs node-major, on (N, B, C) tensors: per-node weights become one ``bmm`` over
nodes, BatchNorm1d over channels is applied to the (N*B, C) view (the same statistics as
BatchNorm1d on the usual (B, C, N) layout), and pooling/unpooling are gathers on axis 0. A
1x1 Conv1d over channels is a per-node ``nn.Linear`` with the same parameters.
"""
from __future__ import annotations

import logging

import torch
import torch.nn as nn
import torch.nn.functional as F

from lib.graphs.hourglass_graphs import (NUM_JOINTS, SUPPORTED_JOINTS, HourglassGraphs,
                                         build_hourglass_graphs)
from lib.models.gconv import build_gconv, check_gconv_name
from lib.models.utils import describe_model

logger = logging.getLogger("pose.models.graph_sh")


class BitDropout(nn.Module):
    """Inverted dropout whose mask comes from 16 random bits per element.

    Same semantics as ``nn.Dropout`` (zero with probability p, scale the rest by 1/(1-p),
    identity in eval mode), with p rounded to a multiple of 1/65536. On CPU it is about four
    times faster than ``nn.Dropout``, whose per-element Bernoulli draws were a quarter of a
    GraphSH training step; the bits come from torch's global generator, so seeding holds.
    Off the CPU (where Bernoulli draws are cheap) it is plain ``F.dropout``.
    """
    LEVELS = 1 << 16

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.threshold = round(p * self.LEVELS) - self.LEVELS // 2   # on signed 16-bit draws

    def extra_repr(self):
        return f"p={self.p}"

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        words = -(-x.numel() // 4)                                     # 4 int16 per int64
        bits = torch.empty(words, dtype=torch.int64).random_(-2 ** 63, None)
        keep = bits.view(torch.int16)[:x.numel()].view(x.shape) >= self.threshold
        return x * (keep * (1.0 / (1.0 - self.p)))               # bool * float -> float mask


class GraphConvBlock(nn.Module):
    """GConv -> BatchNorm over channels -> ReLU -> Dropout, on (N, B, C)."""

    def __init__(self, gcn: str, in_features: int, out_features: int, adj: torch.Tensor,
                 p_dropout: float):
        super().__init__()
        self.gconv = build_gconv(gcn, in_features, out_features, adj)
        self.bn = nn.BatchNorm1d(out_features)
        self.dropout = BitDropout(p_dropout)

    def forward(self, x):
        y = self.gconv.forward_node_major(x)
        n, b, c = y.shape
        y = self.bn(y.reshape(n * b, c)).view(n, b, c)
        return self.dropout(F.relu(y, inplace=True))


class SkeletalPool(nn.Module):
    """Channel-wise max over each group of fine nodes: (N_fine, B, C) -> (N_coarse, B, C).

    ``groups``: one equal-length row of fine-node indices per coarse node
    (``hourglass_graphs.pool_groups``)."""

    def __init__(self, groups):
        super().__init__()
        rows = torch.as_tensor(groups, dtype=torch.long)
        if rows.dim() != 2:
            raise ValueError("pooling groups must be equal-length rows (use pool_groups())")
        self.num_coarse, self.group_size = rows.shape
        self.register_buffer("order", rows.reshape(-1), persistent=False)

    def forward(self, x):
        _, b, c = x.shape
        grouped = x.index_select(0, self.order).view(self.num_coarse, self.group_size, b, c)
        return grouped.amax(dim=1)


class SkeletalUnpool(nn.Module):
    """Copy each coarse node to the fine nodes of its group: (N_coarse, B, C) -> (N_fine, B, C)."""

    def __init__(self, mapping):
        super().__init__()
        self.register_buffer("mapping", torch.as_tensor(mapping, dtype=torch.long), persistent=False)

    def forward(self, x):
        return x.index_select(0, self.mapping)


class GraphHourglass(nn.Module):
    """One 16 -> 8 -> 4 -> 8 -> 16 hourglass; skips are added before the up-convolutions and
    a residual wraps the whole hourglass (as in the public GraphSH code)."""

    def __init__(self, graphs: HourglassGraphs, gcn: str, dim: int, mid_dim: int, low_dim: int,
                 p_dropout: float):
        super().__init__()
        adj_fine, adj_mid, adj_low = graphs.adjacency
        self.down_fine = GraphConvBlock(gcn, dim, mid_dim, adj_fine, p_dropout)
        self.down_mid = GraphConvBlock(gcn, mid_dim, low_dim, adj_mid, p_dropout)
        self.bottom = GraphConvBlock(gcn, low_dim, low_dim, adj_low, p_dropout)
        self.up_mid = GraphConvBlock(gcn, low_dim, mid_dim, adj_mid, p_dropout)
        self.up_fine = GraphConvBlock(gcn, mid_dim, dim, adj_fine, p_dropout)
        self.pool_fine = SkeletalPool(graphs.pool_groups[0])
        self.pool_mid = SkeletalPool(graphs.pool_groups[1])
        self.unpool_mid = SkeletalUnpool(graphs.unpool_maps[0])   # 8 -> 16 (or 17)
        self.unpool_low = SkeletalUnpool(graphs.unpool_maps[1])   # 4 -> 8

    def forward(self, x):
        skip_fine = self.down_fine(x)
        skip_mid = self.down_mid(self.pool_fine(skip_fine))
        out = self.bottom(self.pool_mid(skip_mid))
        out = self.up_mid(self.unpool_low(out) + skip_mid)
        out = self.up_fine(self.unpool_mid(out) + skip_fine)
        return out + x


class SqueezeExcitation(nn.Module):
    """Channel gates from the joint-averaged features (Hu et al.), on (N, B, C)."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x):
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=0)))))   # (B, C)
        return x * gate


class GraphSH(nn.Module):
    """2D joints (B, J, in_features) -> {'pose': (B, J, out_features)} root-relative 3D;
    J = 16 (the public GraphSH skeleton) or 17 (Neck/Nose kept, for detections that have it)."""

    def __init__(self, adj: torch.Tensor | None = None, hid_dim: int = 64, num_stacks: int = 4,
                 gcn: str = "dc_preagg", p_dropout: float = 0.25, num_joints: int = NUM_JOINTS,
                 in_features: int = 2, out_features: int = 3, se_reduction: int = 8):
        super().__init__()
        check_gconv_name(gcn)
        if num_joints not in SUPPORTED_JOINTS:
            raise ValueError(f"GraphSH runs on {SUPPORTED_JOINTS} joints (H36M-16, or H36M-17 "
                             f"with Neck/Nose), got num_joints={num_joints}")
        if num_stacks < 1 or hid_dim < num_stacks:
            raise ValueError(f"need num_stacks >= 1 and hid_dim >= num_stacks, got "
                             f"hid_dim={hid_dim}, num_stacks={num_stacks}")
        graphs = build_hourglass_graphs(adj, num_joints)
        self.gcn, self.hid_dim, self.num_stacks = gcn, hid_dim, num_stacks
        self.num_joints, self.in_features, self.p_dropout = num_joints, in_features, p_dropout
        mid_dim, low_dim = int(hid_dim * 1.5), hid_dim * 2
        stack_dim = hid_dim // num_stacks

        self.input_block = GraphConvBlock(gcn, in_features, hid_dim, graphs.adjacency[0], p_dropout)
        self.hourglasses = nn.ModuleList(
            GraphHourglass(graphs, gcn, hid_dim, mid_dim, low_dim, p_dropout) for _ in range(num_stacks))
        self.stack_projections = nn.ModuleList(nn.Linear(hid_dim, stack_dim) for _ in range(num_stacks))
        self.se = SqueezeExcitation(stack_dim * num_stacks, se_reduction)
        self.output_layer = nn.Linear(stack_dim * num_stacks, out_features)
        logger.info(describe_model(self))

    def extra_repr(self):
        return (f"gcn={self.gcn}, hid_dim={self.hid_dim}, num_stacks={self.num_stacks}, "
                f"joints={self.num_joints}, p_dropout={self.p_dropout}")

    def forward(self, x: torch.Tensor) -> dict:
        if x.dim() != 3 or x.shape[1] != self.num_joints or x.shape[2] != self.in_features:
            raise ValueError(f"GraphSH expects 2D joints of shape (B, {self.num_joints}, "
                             f"{self.in_features}), got {tuple(x.shape)}")
        h = self.input_block(x.transpose(0, 1).contiguous())
        features = []
        for hourglass, projection in zip(self.hourglasses, self.stack_projections):
            h = hourglass(h)
            features.append(projection(h))
        f = self.se(torch.cat(features, dim=-1))
        return {"pose": self.output_layer(f).transpose(0, 1).contiguous()}


# ----------------------------------------------------------------------------- registration
from dataclasses import dataclass  # noqa: E402

from lib.models.gconv import GCONV_VARIANTS  # noqa: E402
from lib.registry import option, register_model  # noqa: E402


@dataclass
class GraphSHOptions:
    """MODEL.* of GraphSH. The defaults are this framework's historical ones (hid 128, no
    dropout); the shipped GraphSH YAMLs set the public recipe (hid_dim 64, p_dropout 0.25)."""
    hid_dim: int = option(128, "channels at full resolution")
    gcn: str = option("dc_preagg", "graph convolution variant", choices=sorted(GCONV_VARIANTS))
    num_stacks: int = option(4, "stacked hourglasses")
    p_dropout: float = option(0.0, "BitDropout rate after every graph convolution block")


@register_model("GraphSH", options=GraphSHOptions, num_joints=SUPPORTED_JOINTS)
def build_graph_sh(opts: GraphSHOptions, cfg, ctx) -> GraphSH:
    """DATASET.num_joints picks the input graph: 16 (public GraphSH) or 17 (Neck/Nose kept)."""
    return GraphSH(None, hid_dim=opts.hid_dim, num_stacks=opts.num_stacks, gcn=opts.gcn,
                   p_dropout=opts.p_dropout, num_joints=cfg.DATASET.num_joints)
