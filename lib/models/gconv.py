"""Graph convolutions: one family, one interface.

Every class takes ``(in_features, out_features, adj, bias=True)`` where ``adj`` is a dense
(N, N) float tensor (its non-zero pattern and, for most variants, its values), and maps
(B, N, C_in) to (B, N, C_out). ``GCONV_VARIANTS`` maps the ``--gcn`` names to classes; the
formulas are those of docs/graphsh.md (E = identity, Â = ``adj``).

Speed: besides ``forward`` every class has ``forward_node_major`` on (N, B, C) tensors. In
that layout a per-node weight is one ``bmm`` over the node axis and the neighbour sum is one
plain matmul of an (N, K*N) matrix with the K transformed copies stacked node-major, so no
variant loops over nodes or weight kinds at run time. Networks that chain many graph
convolutions (GraphSH) stay node-major throughout; ``forward`` just transposes around it.
The adjacency parts each variant needs (self / neighbour split, triangles, edge lists) are
computed once at construction and kept as non-persistent buffers.

Initialisation follows the public GraphSH/SemGCN code: W is xavier-uniform (gain 1.414) in
the stacked shape listed per class (so the fans include the stacking axes, as there);
bias ~ U(±1/sqrt(C_out)).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

XAVIER_GAIN = 1.414


def _weight(*shape) -> nn.Parameter:
    w = nn.Parameter(torch.empty(*shape))
    nn.init.xavier_uniform_(w.data, gain=XAVIER_GAIN)
    return w


def self_neighbour_parts(adj: torch.Tensor) -> torch.Tensor:
    """(2, N, N): [Â∘E, Â∘(1-E)], the self-loop split off from the neighbours."""
    eye = torch.eye(adj.shape[0], dtype=adj.dtype, device=adj.device)
    return torch.stack([adj * eye, adj * (1 - eye)])


def conv_style_parts(adj: torch.Tensor) -> torch.Tensor:
    """(3, N, N): [Â∘E, Â∘triu_1, Â∘tril_-1] (self, higher index, lower index)."""
    eye = torch.eye(adj.shape[0], dtype=adj.dtype, device=adj.device)
    upper = torch.triu(torch.ones_like(adj), diagonal=1)
    lower = torch.tril(torch.ones_like(adj), diagonal=-1)
    return torch.stack([adj * eye, adj * upper, adj * lower])


def side_by_side(parts: torch.Tensor) -> torch.Tensor:
    """(K, N, N) -> (N, K*N) with column k*N + j = parts[k, :, j]; pairs with (K*N, ...) rows."""
    k, n, _ = parts.shape
    return parts.permute(1, 0, 2).reshape(n, k * n)


class GraphConvBase(nn.Module):
    """Shared plumbing: the adjacency buffer, the bias, and the batch-/node-major plumbing."""

    def __init__(self, in_features: int, out_features: int, adj: torch.Tensor, bias: bool = True):
        super().__init__()
        adj = torch.as_tensor(adj, dtype=torch.float32)
        if adj.dim() != 2 or adj.shape[0] != adj.shape[1]:
            raise ValueError(f"adjacency must be a square matrix, got shape {tuple(adj.shape)}")
        self.in_features = in_features
        self.out_features = out_features
        self.num_nodes = adj.shape[0]
        self.register_buffer("adj", adj, persistent=False)
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features))
            stdv = 1.0 / math.sqrt(out_features)
            nn.init.uniform_(self.bias, -stdv, stdv)
        else:
            self.register_parameter("bias", None)

    def _add_bias(self, out):
        return out if self.bias is None else out + self.bias

    def extra_repr(self):
        return f"{self.in_features} -> {self.out_features}, nodes={self.num_nodes}"

    def _check_nodes(self, x: torch.Tensor, axis: int) -> None:
        if x.dim() != 3 or x.shape[axis] != self.num_nodes or x.shape[-1] != self.in_features:
            want = ("(B, N, C)" if axis == 1 else "(N, B, C)")
            raise ValueError(f"{type(self).__name__} expects {want} with N={self.num_nodes}, "
                             f"C={self.in_features}; got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C_in) -> (B, N, C_out)."""
        self._check_nodes(x, axis=1)
        return self.forward_node_major(x.transpose(0, 1)).transpose(0, 1)

    def forward_node_major(self, x: torch.Tensor) -> torch.Tensor:
        """(N, B, C_in) -> (N, B, C_out); the fast path every variant implements."""
        raise NotImplementedError

    # -- building blocks of forward_node_major ------------------------------------------------
    @staticmethod
    def _transform_shared(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """x (N, B, Ci), weight (K, Ci, Co) -> (K, N, B, Co): every node through every W_k."""
        n, b, ci = x.shape
        k, _, co = weight.shape
        if k == 1:
            return torch.mm(x.reshape(n * b, ci), weight[0]).view(1, n, b, co)
        # an expanded (stride-0) batch: bmm reads x K times without copying it
        return torch.bmm(x.reshape(1, n * b, ci).expand(k, n * b, ci), weight).view(k, n, b, co)

    @staticmethod
    def _transform_per_node(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """x (N, B, Ci), weight (K, N, Ci, Co) -> (K, N, B, Co): node n through W_k[n]."""
        n, b, ci = x.shape
        k, _, _, co = weight.shape
        if k == 1:
            return torch.bmm(x, weight[0]).view(1, n, b, co)
        return torch.matmul(x.unsqueeze(0), weight)

    @staticmethod
    def _aggregate(a_cat: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """a_cat (N, K*N), h (K, N, B, C) -> (N, B, C): Σ_k A_k h_k as one matmul."""
        k, n, b, c = h.shape
        return torch.mm(a_cat, h.reshape(k * n, b * c)).view(a_cat.shape[0], b, c)


class _SharedWeightGraphConv(GraphConvBase):
    """Y = Σ_k P_k X W_k + b for fixed adjacency parts P_k and node-shared weights W (K, Ci, Co)."""

    def _parts(self, adj: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __init__(self, in_features, out_features, adj, bias=True):
        super().__init__(in_features, out_features, adj, bias)
        parts = self._parts(self.adj)
        self.W = _weight(parts.shape[0], in_features, out_features)
        self.register_buffer("adj_cat", side_by_side(parts), persistent=False)

    def forward_node_major(self, x):
        return self._add_bias(self._aggregate(self.adj_cat, self._transform_shared(x, self.W)))


class VanillaGraphConv(_SharedWeightGraphConv):
    """Vanilla GCN: Y = Â X W + b, one weight shared by all nodes. W: (1, Ci, Co)."""

    def _parts(self, adj):
        return adj.unsqueeze(0)


class DecoupledVanillaGraphConv(_SharedWeightGraphConv):
    """Decoupled vanilla: Y = (Â∘E) X W0 + (Â∘(1-E)) X W1 + b. W: (2, Ci, Co)."""

    def _parts(self, adj):
        return self_neighbour_parts(adj)


class ConvStyleGraphConv(_SharedWeightGraphConv):
    """Convolution-style (Liu et al. ECCV'20 as in GraphSH's code): one weight per position.

    Y = (Â∘E) X W0 + (Â∘triu_1) X W1 + (Â∘tril_-1) X W2 + b. With parents indexed before
    children, j > i are children and j < i the parent; the rule is applied by index even on
    graphs where that order does not hold (GraphSH's pooled 8/4-node graphs). W: (3, Ci, Co).
    """

    def _parts(self, adj):
        return conv_style_parts(adj)


class PreAggGraphConv(GraphConvBase):
    """Pre-aggregation: transform with the *source* node's weight, then sum.

    y_i = Σ_j Â_ij x_j W_j + b. W: (1, N, Ci, Co). ``decoupled`` subclasses split off the
    self-loop: y_i = Â_ii x_i W0_i + Σ_{j≠i} Â_ij x_j W1_j + b with W: (2, N, Ci, Co).
    """
    decoupled = False

    def __init__(self, in_features, out_features, adj, bias=True):
        super().__init__(in_features, out_features, adj, bias)
        parts = self_neighbour_parts(self.adj) if self.decoupled else self.adj.unsqueeze(0)
        self.W = _weight(parts.shape[0], self.num_nodes, in_features, out_features)
        self.register_buffer("adj_cat", side_by_side(parts), persistent=False)

    def forward_node_major(self, x):
        return self._add_bias(self._aggregate(self.adj_cat, self._transform_per_node(x, self.W)))


class DecoupledPreAggGraphConv(PreAggGraphConv):
    """Decoupled pre-aggregation (GraphSH's paper setting, 3.69M parameters at C=64)."""
    decoupled = True


class PostAggGraphConv(GraphConvBase):
    """Post-aggregation: sum the neighbours first, then apply the *destination* node's weight.

    y_i = (Σ_j Â_ij x_j) W_i + b. W: (1, N, Ci, Co). Decoupled:
    y_i = (Â_ii x_i) W0_i + (Σ_{j≠i} Â_ij x_j) W1_i + b with W: (2, N, Ci, Co).
    """
    decoupled = False

    def __init__(self, in_features, out_features, adj, bias=True):
        super().__init__(in_features, out_features, adj, bias)
        parts = self_neighbour_parts(self.adj) if self.decoupled else self.adj.unsqueeze(0)
        self.W = _weight(parts.shape[0], self.num_nodes, in_features, out_features)
        # rows k*N + i hold part k's row i, so one matmul aggregates for every part at once
        self.register_buffer("adj_stack", parts.reshape(-1, self.num_nodes), persistent=False)

    def forward_node_major(self, x):
        n, b, ci = x.shape
        k = self.W.shape[0]
        z = torch.mm(self.adj_stack, x.reshape(n, b * ci)).view(k * n, b, ci)
        y = torch.bmm(z, self.W.view(k * n, ci, self.out_features))
        if k > 1:
            y = y.view(k, n, b, self.out_features).sum(0)
        return self._add_bias(y)


class DecoupledPostAggGraphConv(PostAggGraphConv):
    decoupled = True


class NoSharingGraphConv(GraphConvBase):
    """No sharing: one weight per ordered node pair, y_w = Σ_h Â[h, w] x_h W[h, w] + b.

    W: (N, N, Ci, Co). As in GraphSH's code, Â is indexed **transposed** (h is the source,
    w the destination), so with a row-normalised Â the source h is weighted by 1/deg(h),
    not the destination's 1/deg(w). Only the pairs with Â[h, w] != 0 contribute, so the
    forward gathers just those weights (one ``bmm`` over the edges) and scatters them with
    an (N, E) matrix holding the Â values; the other W[h, w] exist, as in the original
    (and in its parameter count), but never receive a gradient.
    """

    def __init__(self, in_features, out_features, adj, bias=True):
        super().__init__(in_features, out_features, adj, bias)
        n = self.num_nodes
        self.W = _weight(n, n, in_features, out_features)
        src, dst = self.adj.nonzero(as_tuple=True)          # Â[src, dst] != 0
        scatter = torch.zeros(n, src.numel())
        scatter[dst, torch.arange(src.numel())] = self.adj[src, dst]
        self.register_buffer("edge_src", src, persistent=False)
        self.register_buffer("edge_weight_index", src * n + dst, persistent=False)
        self.register_buffer("edge_scatter", scatter, persistent=False)

    def forward_node_major(self, x):
        n, b, ci = x.shape
        w = self.W.view(n * n, ci, self.out_features).index_select(0, self.edge_weight_index)
        h = torch.bmm(x.index_select(0, self.edge_src), w)            # (E, B, Co)
        return self._add_bias(self._aggregate(self.edge_scatter, h.unsqueeze(0)))


class ModulatedGraphConv(GraphConvBase):
    """Modulated GCN (Zou & Tang, ICCV'21), as wired in GraphSH.

    h_k = X W_k; Ã = Â + Q, symmetrised (Ã + Ãᵀ)/2;
    Y = (Ã∘E)(M∘h0) + (Ã∘(1-E))(M∘h1) + b. W: (2, Ci, Co); M: (N, Co) weight modulation,
    initialised to ones; Q: (N, N) learnable affinity offset, initialised to 1e-6 everywhere
    (so every pair, not only the edges, can gain a weight).
    """
    Q_INIT = 1e-6

    def __init__(self, in_features, out_features, adj, bias=True):
        super().__init__(in_features, out_features, adj, bias)
        self.W = _weight(2, in_features, out_features)
        self.M = nn.Parameter(torch.ones(self.num_nodes, out_features))
        self.Q = nn.Parameter(torch.full((self.num_nodes, self.num_nodes), self.Q_INIT))
        self.register_buffer("eye", torch.eye(self.num_nodes), persistent=False)

    def affinity(self) -> torch.Tensor:
        """The symmetrised Â + Q."""
        a = self.adj + self.Q
        return (a + a.t()) / 2

    def forward_node_major(self, x):
        a = self.affinity()
        a_cat = torch.cat([a * self.eye, a * (1 - self.eye)], dim=1)
        h = self._transform_shared(x, self.W) * self.M.unsqueeze(1)      # M: (N, 1, Co)
        return self._add_bias(self._aggregate(a_cat, h))


class SemGraphConv(GraphConvBase):
    """SemGCN's semantic graph convolution (Zhao et al., CVPR 2019).

    One learnable scalar ``e`` per non-zero of the adjacency (values of ``adj`` are only a
    mask); A = row-softmax(e on the mask, -9e15 elsewhere); the self-loop and the neighbours
    get separate weights: Y = (A*I) X W0 + (A*(1-I)) X W1 + b. A row with no non-zero (a
    padding node of the HGN mesh graphs) becomes uniform 1/N, exactly as in the original.
    Parameter names (W, e, bias) match the public SemGCN/HGN checkpoints.
    """

    def __init__(self, in_features, out_features, adj, bias=True):
        super().__init__(in_features, out_features, adj, bias)
        self.W = nn.Parameter(torch.empty(2, in_features, out_features))
        nn.init.xavier_uniform_(self.W.data, gain=1.414)
        mask = self.adj > 0
        self.register_buffer("mask", mask, persistent=False)
        self.register_buffer("mask_index", mask.flatten().nonzero().squeeze(1), persistent=False)
        self.e = nn.Parameter(torch.ones(1, int(mask.sum())))
        self.register_buffer("eye", torch.eye(self.num_nodes), persistent=False)

    def attention(self) -> torch.Tensor:
        """The row-softmaxed (N, N) edge weights."""
        n = self.num_nodes
        logits = torch.full((n * n,), -9e15, dtype=self.e.dtype, device=self.e.device)
        logits = logits.index_put((self.mask_index,), self.e[0])
        return torch.softmax(logits.view(n, n), dim=1)

    def forward(self, x):
        a = self.attention()
        h0 = torch.matmul(x, self.W[0])
        h1 = torch.matmul(x, self.W[1])
        diag = torch.diagonal(a).unsqueeze(-1)            # (N, 1)
        off = a * (1 - self.eye)
        return self._add_bias(diag * h0 + torch.matmul(off, h1))

    def forward_node_major(self, x):
        a = self.attention()
        a_cat = torch.cat([a * self.eye, a * (1 - self.eye)], dim=1)
        return self._add_bias(self._aggregate(a_cat, self._transform_shared(x, self.W)))


GCONV_VARIANTS = {
    "vanilla": VanillaGraphConv,
    "dc_vanilla": DecoupledVanillaGraphConv,
    "preagg": PreAggGraphConv,
    "dc_preagg": DecoupledPreAggGraphConv,
    "postagg": PostAggGraphConv,
    "dc_postagg": DecoupledPostAggGraphConv,
    "convst": ConvStyleGraphConv,
    "nosharing": NoSharingGraphConv,
    "modulated": ModulatedGraphConv,
    "semantic": SemGraphConv,
}


def check_gconv_name(name: str) -> str:
    """Return ``name`` if it is a known variant, else raise listing the valid ones."""
    if name not in GCONV_VARIANTS:
        raise ValueError(f"unknown graph convolution '{name}' (--gcn / model.gcn); valid: "
                         f"{', '.join(sorted(GCONV_VARIANTS))}")
    return name


def build_gconv(name: str, in_features: int, out_features: int, adj, **kwargs) -> nn.Module:
    return GCONV_VARIANTS[check_gconv_name(name)](in_features, out_features, adj, **kwargs)
