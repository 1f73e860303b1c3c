"""SemGCN's concatenation-form non-local block over graph nodes, computed without the (B, 2C, N, N) tensor.

The original (Zhao et al., CVPR 2019; re-used by HGN) scores every node pair with
``f_ij = ReLU(w · [theta_i ; phi_j]) / N`` by expanding theta and phi to (B, 2C', N, N), concatenating
them and applying a 1x1 Conv2d. Since ``w · [theta_i ; phi_j] = w_theta · theta_i + w_phi · phi_j``, we
project each node to two scalars and add them by broadcasting: (B, N, 1) + (B, 1, N). Because theta
and phi are only ever used through those dot products, the projection is folded further:
``w_theta · (W_theta x + b_theta) = (W_theta^T w_theta) · x + w_theta · b_theta``, so theta and phi
cost one extra output column each instead of 2 x 64 channels. The 1/N is folded in as well
(ReLU(z)/N = ReLU(z/N)). Autograd still reaches every original parameter through the fold.

Parameter names and shapes are those of the original module (g, theta, phi, concat_project.0, W.0,
W.1), so public SemGCN/HGN weights load unchanged.

Layouts: ``forward`` takes (B, N, C) like the original's callers; ``forward_nm`` takes the
node-major (N, B, C) layout our fast SemGCN/HGN forward passes use throughout.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class NonLocalBlock(nn.Module):
    """Concatenation-form non-local block with residual output: z = x + BN(W(f · g(x))).

    ``sub_sample > 1`` max-pools phi and g over consecutive groups of that many nodes (SemGCN's
    grouped variant; its keys are then ``g.0``/``phi.0`` as in SemGCN). Initialised as in SemGCN:
    Kaiming-normal convolutions, zero biases, BN gamma = beta = 0, so the block starts as identity.
    """

    def __init__(self, in_channels: int, inter_channels: int | None = None, sub_sample: int = 1):
        super().__init__()
        if inter_channels is None:
            inter_channels = in_channels // 2
        if inter_channels <= 0 or sub_sample < 1:
            raise ValueError(f"non-local block needs inter_channels > 0 and sub_sample >= 1, "
                             f"got {inter_channels} and {sub_sample}")
        self.in_channels = in_channels
        self.inter_channels = inter_channels
        self.sub_sample = sub_sample

        g = nn.Conv1d(in_channels, inter_channels, kernel_size=1)
        theta = nn.Conv1d(in_channels, inter_channels, kernel_size=1)
        phi = nn.Conv1d(in_channels, inter_channels, kernel_size=1)
        self.concat_project = nn.Sequential(
            nn.Conv2d(2 * inter_channels, 1, kernel_size=1, bias=False), nn.ReLU())
        self.W = nn.Sequential(nn.Conv1d(inter_channels, in_channels, kernel_size=1),
                               nn.BatchNorm1d(in_channels))
        for conv in (g, theta, phi, self.concat_project[0], self.W[0]):
            nn.init.kaiming_normal_(conv.weight)
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)
        nn.init.zeros_(self.W[1].weight)
        nn.init.zeros_(self.W[1].bias)

        self.theta = theta
        if sub_sample > 1:
            self.g = nn.Sequential(g, nn.MaxPool1d(sub_sample))
            self.phi = nn.Sequential(phi, nn.MaxPool1d(sub_sample))
        else:
            self.g = g
            self.phi = phi

    def _conv(self, name: str) -> nn.Conv1d:
        module = getattr(self, name)
        return module[0] if isinstance(module, nn.Sequential) else module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C) -> (B, N, C)."""
        return self.forward_nm(x.transpose(0, 1)).transpose(0, 1)

    def forward_nm(self, x: torch.Tensor) -> torch.Tensor:
        """(N, B, C) -> (N, B, C), node-major."""
        n, b, c = x.shape
        if c != self.in_channels:
            raise ValueError(f"non-local block expects {self.in_channels} channels, got {c}")
        inter, s = self.inter_channels, self.sub_sample
        n_keys = n // s
        if n_keys == 0:
            raise ValueError(f"non-local block: {n} nodes cannot be pooled in groups of {s}")
        g_conv, theta_conv, phi_conv = self._conv("g"), self._conv("theta"), self._conv("phi")
        w_theta, w_phi = self.concat_project[0].weight.view(2, inter)
        # Folded scalar projections (scaled by 1/N_keys so that ReLU(.) already is f/N).
        v_theta = (w_theta @ theta_conv.weight.view(inter, c)) / n_keys
        c_theta = (w_theta @ theta_conv.bias) / n_keys
        if s == 1:
            v_phi = (w_phi @ phi_conv.weight.view(inter, c)) / n_keys
            c_phi = (w_phi @ phi_conv.bias) / n_keys
            weight = torch.cat([g_conv.weight.view(inter, c), v_theta[None], v_phi[None]], 0)
            bias = torch.cat([g_conv.bias, c_theta[None], c_phi[None]])
            proj = F.linear(x.reshape(n * b, c), weight, bias)          # (N*B, inter + 2)
            g_val = proj[:, :inter].view(n, b, inter)
            a = proj[:, inter].view(n, b)
            key = proj[:, inter + 1].view(n, b)
        else:
            weight = torch.cat([g_conv.weight.view(inter, c), phi_conv.weight.view(inter, c),
                                v_theta[None]], 0)
            bias = torch.cat([g_conv.bias, phi_conv.bias, c_theta[None]])
            proj = F.linear(x.reshape(n * b, c), weight, bias)          # (N*B, 2 inter + 1)
            a = proj[:, 2 * inter].view(n, b)
            pooled = proj[: n_keys * s * b, : 2 * inter].reshape(n_keys, s, b, 2 * inter).amax(1)
            g_val = pooled[..., :inter]
            key = (pooled[..., inter:] @ w_phi) / n_keys              # (N_keys, B)
        # (B, N, 1) + (B, 1, N_keys) -> (B, N, N_keys) = f / N. The (B, N) operands are made
        # contiguous first so that the broadcast result is too (else bmm copies it matrix by matrix).
        f = torch.relu_(a.t().contiguous().unsqueeze(2) + key.t().contiguous().unsqueeze(1))
        y = torch.bmm(f, g_val.transpose(0, 1))                        # (B, N, inter)
        y = y.transpose(0, 1).reshape(n * b, inter)                    # node-major (copy of inter)
        w_conv, bn = self.W
        wy = bn(F.linear(y, w_conv.weight.view(c, inter), w_conv.bias))
        return x + wy.view(n, b, c)


class GraphNonLocal(nn.Module):
    """Non-local layer on a graph, as SemGCN/HGN wrap it (attribute ``nonlocal1``, as HGN names it).

    With ``nodes_group`` (SemGCN's joint pairs, e.g. [[2, 3], [5, 6], ...]) the nodes are reordered
    group by group and phi/g are max-pooled per group, as in SemGCN; without it (HGN) there is no
    grouping and no pooling.
    """

    def __init__(self, hid_dim: int, nodes_group=None, inter_channels: int | None = None):
        super().__init__()
        if nodes_group is None:
            self.nonlocal1 = NonLocalBlock(hid_dim, inter_channels, sub_sample=1)
            self.grouped_order = None
        else:
            sizes = {len(group) for group in nodes_group}
            if len(sizes) != 1 or min(sizes) < 2:
                raise ValueError(f"nodes_group must be groups of one common size >= 2, got {nodes_group}")
            order = [int(i) for group in nodes_group for i in group]
            if sorted(order) != list(range(len(order))):
                raise ValueError(f"nodes_group must list every node exactly once, got {nodes_group}")
            self.nonlocal1 = NonLocalBlock(hid_dim, inter_channels, sub_sample=sizes.pop())
            grouped = torch.tensor(order, dtype=torch.long)
            self.register_buffer("grouped_order", grouped, persistent=False)
            self.register_buffer("restored_order", torch.argsort(grouped), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C) -> (B, N, C)."""
        return self.forward_nm(x.transpose(0, 1)).transpose(0, 1)

    def forward_nm(self, x: torch.Tensor) -> torch.Tensor:
        """(N, B, C) -> (N, B, C)."""
        if self.grouped_order is None:
            return self.nonlocal1.forward_nm(x)
        if x.shape[0] != self.grouped_order.numel():
            raise ValueError(f"non-local grouping covers {self.grouped_order.numel()} nodes, "
                             f"the input has {x.shape[0]}")
        out = self.nonlocal1.forward_nm(x.index_select(0, self.grouped_order))
        return out.index_select(0, self.restored_order)
