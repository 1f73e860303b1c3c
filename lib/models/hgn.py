"""HGN: Hierarchical Graph Networks (Li et al., BMVC 2021) for 2D -> 3D pose lifting.

Three parallel SemGCN branches -- the skeleton graph from the start, the middle mesh graph from
stage 1, the fine mesh graph from stage 3 -- exchange features through learned node-mixing
units ("ChannelTrans", a dense Nb x Na matrix plus a per-node bias) at five fusion points, and
every branch ends in its own SemGraphConv head (docs/hgn.md).

Module names are those of the public code (gconv_input, gconv_layers_{s}_{k}, fc_{a}_{b}_{k},
gconv_output{,_48,_96}), so a ``final.pth.tar`` written by it loads with ``strict=True`` when the
graphs have the official sizes; the literal _48/_96 suffixes stay whatever the graph sizes are.
Every size is taken from the adjacency matrices.

Speed: the whole network runs in a node-major (N, B, C) layout, so that node mixing (adjacency,
ChannelTrans) is one (N, N) @ (N, B*C) GEMM and channel mixing is one (N*B, C) @ (C, C') GEMM,
with no transposes in between; BatchNorm works on the (N*B, C) view. Fusion is out of place
(the original's in-place ``+=`` breaks autograd on current PyTorch) and in the original order
17 -> 48 -> 96, later updates seeing earlier ones.

The SemGCN building blocks here (SemGraphConvBlock, ResSemGraphConv) are shared with the SemGCN
baseline in ``baselines.py``.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from lib.models.gconv import SemGraphConv
from lib.models.nonlocal_block import GraphNonLocal


# ---------------------------------------------------------------------------------------------
# SemGCN building blocks (node-major fast path + the original (B, N, C) interface)
# ---------------------------------------------------------------------------------------------

def sem_gconv_nm(gc: SemGraphConv, x: torch.Tensor) -> torch.Tensor:
    """SemGraphConv on a node-major (N, B, Cin) tensor -> (N, B, Cout), same maths as gc(x).

    Y = diag(A) X W0 + offdiag(A) X W1 + b. The node mixing is applied on the narrower side:
    before the channel GEMMs when Cin <= Cout (input layer, hidden layers), after them otherwise
    (the 128 -> 3 heads).
    """
    n, b, c_in = x.shape
    if n != gc.num_nodes or c_in != gc.in_features:
        raise ValueError(f"graph conv expects (N={gc.num_nodes}, B, C={gc.in_features}), "
                         f"got {tuple(x.shape)}")
    c_out = gc.out_features
    att = gc.attention()
    d = att.diagonal()
    off = att - torch.diag(d)
    x2 = x.reshape(n, b * c_in)
    if c_in <= c_out:
        self_part = (x2 * d.unsqueeze(1)).view(n * b, c_in)
        neigh_part = torch.mm(off, x2).view(n * b, c_in)
        out = torch.mm(self_part, gc.W[0]) if gc.bias is None else torch.addmm(gc.bias, self_part, gc.W[0])
        # In place on the fresh accumulator: AddmmBackward keeps its inputs, never its output.
        # (.to: autocast does not cover in-place ops; a no-op otherwise.)
        return out.addmm_(neigh_part.to(out.dtype), gc.W[1].to(out.dtype)).view(n, b, c_out)
    xf = x2.view(n * b, c_in)
    h0 = torch.mm(xf, gc.W[0]).view(n, b * c_out)
    h1 = torch.mm(xf, gc.W[1]).view(n, b * c_out)
    out = torch.addmm(h0 * d.unsqueeze(1), off, h1).view(n, b, c_out)
    return out if gc.bias is None else out + gc.bias


class SemGraphConvBlock(nn.Module):
    """SemGCN's ``_GraphConv``: SemGraphConv -> BatchNorm1d over channels -> ReLU (-> dropout)."""

    def __init__(self, adj, in_dim: int, out_dim: int, p_dropout: float | None = None):
        super().__init__()
        self.gconv = SemGraphConv(in_dim, out_dim, adj)
        self.bn = nn.BatchNorm1d(out_dim)
        self.dropout = nn.Dropout(p_dropout) if p_dropout else None

    def forward(self, x):
        """(B, N, C) -> (B, N, C')."""
        return self.forward_nm(x.transpose(0, 1)).transpose(0, 1)

    def forward_nm(self, x):
        """(N, B, C) -> (N, B, C')."""
        n, b, _ = x.shape
        y = sem_gconv_nm(self.gconv, x)
        y = torch.relu_(self.bn(y.view(n * b, -1))).view(n, b, -1)   # BN keeps its input, not output
        return y if self.dropout is None else self.dropout(y)


class ResSemGraphConv(nn.Module):
    """SemGCN's ``_ResGraphConv``: x + block(block(x))."""

    def __init__(self, adj, dim: int, hid_dim: int | None = None, p_dropout: float | None = None):
        super().__init__()
        hid_dim = dim if hid_dim is None else hid_dim
        self.gconv1 = SemGraphConvBlock(adj, dim, hid_dim, p_dropout)
        self.gconv2 = SemGraphConvBlock(adj, hid_dim, dim, p_dropout)

    def forward(self, x):
        return self.forward_nm(x.transpose(0, 1)).transpose(0, 1)

    def forward_nm(self, x):
        return x + self.gconv2.forward_nm(self.gconv1.forward_nm(x))


class NodeMajorSequential(nn.Sequential):
    """nn.Sequential whose children all have ``forward_nm``; keeps the original's .0/.1 key names."""

    def forward(self, x):
        return self.forward_nm(x.transpose(0, 1)).transpose(0, 1)

    def forward_nm(self, x):
        for module in self:
            x = module.forward_nm(x)
        return x


# ---------------------------------------------------------------------------------------------
# HGN
# ---------------------------------------------------------------------------------------------

class ChannelTrans(nn.Module):
    """HGN's ``_ChannelTrans``: Conv1d(Na, Nb, 1) along the node axis, i.e. Y = M X + b per node."""

    def __init__(self, in_nodes: int, out_nodes: int):
        super().__init__()
        self.conv = nn.Conv1d(in_nodes, out_nodes, kernel_size=1)

    @property
    def matrix(self) -> torch.Tensor:
        return self.conv.weight.view(self.conv.out_channels, self.conv.in_channels)

    def forward(self, x):
        """(B, Na, C) -> (B, Nb, C), exactly the original Conv1d call."""
        return self.conv(x)

    def forward_nm(self, x):
        """(Na, B, C) -> (Nb, B, C)."""
        return fuse_nm(None, [(self, x)])


def fuse_nm(target: torch.Tensor | None, sources) -> torch.Tensor:
    """target + sum_k ChannelTrans_k(source_k) as a new tensor, node-major; ``target=None`` spawns.

    Neither ``target`` nor any source is modified (they are saved for backward); only the fresh
    accumulator is updated in place.
    """
    first_ct, first_src = sources[0]
    rest_shape = first_src.shape[1:]
    bias = first_ct.conv.bias
    for ct, _ in sources[1:]:
        bias = bias + ct.conv.bias
    first = first_src.reshape(first_src.shape[0], -1)
    if target is None:
        acc = torch.addmm(bias.unsqueeze(1), first_ct.matrix, first)
    else:
        acc = torch.addmm(target.reshape(target.shape[0], -1), first_ct.matrix, first)
        acc.add_(bias.unsqueeze(1).to(acc.dtype))
    for ct, src in sources[1:]:
        acc.addmm_(ct.matrix.to(acc.dtype), src.reshape(src.shape[0], -1).to(acc.dtype))
    return acc.view(acc.shape[0], *rest_shape)


# Stages each branch runs, and the fusion points: before stage k, each (target, sources) in this
# order; ``fc_{source}_{target}_{k}`` maps source scale to target scale. Scale 1 = skeleton,
# 2 = middle mesh graph, 3 = fine mesh graph. Fusion point 1 only spawns branch 2.
BRANCH_STAGES = {1: (1, 2, 3, 4), 2: (1, 2, 3, 4), 3: (3, 4)}
FUSION_POINTS = {
    1: ((2, (1,)),),
    2: ((1, (2,)), (2, (1,))),
    3: ((1, (2,)), (2, (1,)), (3, (1, 2))),
    4: ((1, (2, 3)), (2, (1, 3)), (3, (1, 2))),
    5: ((1, (2, 3)), (2, (1, 3)), (3, (1, 2))),
}
HEAD_NAMES = {1: "gconv_output", 2: "gconv_output_48", 3: "gconv_output_96"}
NUM_STAGES = 4


def _check_adjacency(adj, name: str) -> torch.Tensor:
    adj = torch.as_tensor(adj, dtype=torch.float32)
    if adj.dim() != 2 or adj.shape[0] != adj.shape[1]:
        raise ValueError(f"HGN: {name} must be a square (N, N) adjacency, got shape {tuple(adj.shape)}")
    if not bool((adj > 0).any()):
        raise ValueError(f"HGN: {name} has no non-zero entry; pass the graph's adjacency matrix")
    return adj


def _check_index(index, num_nodes: int, name: str):
    if index is None:
        return None
    index = torch.as_tensor(index, dtype=torch.long).flatten()
    if index.numel() == 0 or int(index.min()) < 0 or int(index.max()) >= num_nodes:
        raise ValueError(f"HGN: {name} must index nodes 0..{num_nodes - 1} of its graph, "
                         f"got {index.numel()} entries in [{int(index.min()) if index.numel() else '-'}, "
                         f"{int(index.max()) if index.numel() else '-'}]")
    return index


class HGN(nn.Module):
    """HGN(adj17, adj_mid, adj_fine): (B, N17, 2) -> {'pose', 'mesh_mid', 'mesh_fine'}.

    ``mid_index`` / ``fine_index`` (positions of the real cluster nodes in the padded tree order,
    i.e. rev[:real]) gather the mesh heads into cluster order; None returns every padded node.
    No dropout (the original's p_dropout is None).
    """

    def __init__(self, adj17, adj_mid, adj_fine, hid_dim: int = 128, mid_index=None,
                 fine_index=None, nonlocal_inter: int | None = None, in_dim: int = 2, out_dim: int = 3,
                 eval_chunk: int | None = 64):
        super().__init__()
        adjs = {1: _check_adjacency(adj17, "adj17"), 2: _check_adjacency(adj_mid, "adj_mid"),
                3: _check_adjacency(adj_fine, "adj_fine")}
        self.num_nodes = {s: a.shape[0] for s, a in adjs.items()}
        self.hid_dim = hid_dim
        self.in_dim = in_dim
        if eval_chunk is not None and eval_chunk < 1:
            raise ValueError(f"HGN: eval_chunk must be a positive batch size or None, got {eval_chunk}")
        self.eval_chunk = eval_chunk

        self.gconv_input = NodeMajorSequential(SemGraphConvBlock(adjs[1], in_dim, hid_dim))
        for point, entries in FUSION_POINTS.items():
            for target, sources in entries:
                for source in sources:
                    setattr(self, f"fc_{source}_{target}_{point}",
                            ChannelTrans(self.num_nodes[source], self.num_nodes[target]))
        for scale, stages in BRANCH_STAGES.items():
            for k in stages:
                setattr(self, f"gconv_layers_{scale}_{k}", NodeMajorSequential(
                    ResSemGraphConv(adjs[scale], hid_dim),
                    GraphNonLocal(hid_dim, inter_channels=nonlocal_inter)))
        for scale, name in HEAD_NAMES.items():
            setattr(self, name, SemGraphConv(hid_dim, out_dim, adjs[scale]))

        for scale, index, name in ((2, mid_index, "mid_index"), (3, fine_index, "fine_index")):
            index = _check_index(index, self.num_nodes[scale], name)
            if index is None:
                self.register_buffer(name, None, persistent=False)
            else:
                self.register_buffer(name, index, persistent=False)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def describe(self) -> str:
        """The start-up line of the original code, with the graph sizes."""
        n = self.num_nodes
        return (f"# of model parameters: {self.num_parameters():,} "
                f"(HGN, hidden {self.hid_dim}, graphs {n[1]}/{n[2]}/{n[3]} nodes)")

    def forward(self, x: torch.Tensor) -> dict:
        """(B, N17, 2) -> {'pose': (B, N17, 3), 'mesh_mid': (B, M, 3), 'mesh_fine': (B, F, 3)}.

        In eval mode large batches run in chunks of ``eval_chunk`` poses: BatchNorm then uses its
        running statistics, so poses are independent and chunking is exact, and chunks of ~64
        poses keep the activations in the L2 cache (inference at batch 1024 is ~1.5x faster).
        """
        if x.dim() != 3 or x.shape[1] != self.num_nodes[1] or x.shape[2] != self.in_dim:
            raise ValueError(f"HGN expects 2D poses of shape (B, {self.num_nodes[1]}, {self.in_dim}), "
                             f"got {tuple(x.shape)}")
        if not self.training and self.eval_chunk is not None and x.shape[0] > self.eval_chunk:
            parts = [self._forward(chunk) for chunk in torch.split(x, self.eval_chunk)]
            return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> dict:
        h = {1: self.gconv_input.forward_nm(x.transpose(0, 1))}
        for point in range(1, NUM_STAGES + 2):
            if point > 1:
                stage = point - 1
                for scale, stages in BRANCH_STAGES.items():
                    if stage in stages:
                        h[scale] = getattr(self, f"gconv_layers_{scale}_{stage}").forward_nm(h[scale])
            for target, sources in FUSION_POINTS[point]:
                h[target] = fuse_nm(h.get(target), [
                    (getattr(self, f"fc_{source}_{target}_{point}"), h[source]) for source in sources])
        out = {scale: sem_gconv_nm(getattr(self, name), h[scale]) for scale, name in HEAD_NAMES.items()}
        if self.mid_index is not None:
            out[2] = out[2].index_select(0, self.mid_index)
        if self.fine_index is not None:
            out[3] = out[3].index_select(0, self.fine_index)
        return {"pose": out[1].transpose(0, 1).contiguous(),
                "mesh_mid": out[2].transpose(0, 1).contiguous(),
                "mesh_fine": out[3].transpose(0, 1).contiguous()}


# ----------------------------------------------------------------------------- registration
from dataclasses import dataclass  # noqa: E402
from typing import List, Optional  # noqa: E402

from lib.registry import option, register_model  # noqa: E402


@dataclass
class HGNOptions:
    """MODEL.* of HGN: its width and the mesh-graph levels its mid/fine branches run on."""
    hid_dim: int = option(128, "channels of every graph convolution")
    num_coarsening_levels: int = option(9, "HEM levels built from the body model's faces")
    graph_levels: Optional[List[int]] = option(
        None, "[fine, mid] level indices, or null: the levels closest to graph_targets",
        item_type=int)
    graph_targets: List[int] = option([96, 48], "padded sizes the default level choice aims at",
                                      item_type=int)


def load_hgn_checkpoint(model, ckpt, source) -> str:
    """HGN's checkpoint adapter: the public code's final.pth.tar loads too, and a graph-size
    mismatch is explained (lib.models.official_hgn)."""
    from lib.experiment import CheckpointError
    from lib.models.official_hgn import load_hgn_weights
    try:
        return load_hgn_weights(model, ckpt, source).describe()
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None


@register_model("HGN", options=HGNOptions, needs_mesh=True, num_joints=(17,),
                load_weights=load_hgn_checkpoint)
def build_hgn(opts: HGNOptions, cfg, ctx) -> HGN:
    """The graphs come from ctx (which reads the level options from cfg.MODEL)."""
    from lib.geometry.skeleton import H36M17
    from lib.graphs.skeleton_graph import skeleton_adjacency
    _, fine, mid = ctx.mesh_levels()
    return HGN(skeleton_adjacency(H36M17), mid.adjacency, fine.adjacency, hid_dim=opts.hid_dim,
               mid_index=mid.real_positions, fine_index=fine.real_positions)
