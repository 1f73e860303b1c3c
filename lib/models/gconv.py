"""Graph convolutions: one family, one interface.

Every class takes ``(in_features, out_features, adj)`` where ``adj`` is a dense (N, N) float
tensor (its non-zero pattern and, for some variants, its values), and maps (B, N, C_in) to
(B, N, C_out). ``GCONV_VARIANTS`` maps the ``--gcn`` names to classes.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn


class GraphConvBase(nn.Module):
    """Shared plumbing: the adjacency buffer and the bias, initialised as SemGCN/GraphSH do."""

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


GCONV_VARIANTS = {
    "semantic": SemGraphConv,
}


def build_gconv(name: str, in_features: int, out_features: int, adj, **kwargs) -> nn.Module:
    try:
        cls = GCONV_VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown graph convolution '{name}'; valid: "
                         f"{', '.join(sorted(GCONV_VARIANTS))}") from None
    return cls(in_features, out_features, adj, **kwargs)
