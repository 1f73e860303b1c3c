"""Adjacency matrices of skeleton graphs (dense, small)."""
from __future__ import annotations

import numpy as np
import torch

from lib.geometry.skeleton import Skeleton


def adjacency_from_edges(num_nodes: int, edges, self_loops: bool = True,
                         normalize: str = "row") -> torch.Tensor:
    """Symmetric adjacency of an undirected edge list, optionally with I, row-normalised.

    ``normalize='row'`` gives D^-1 (A + I) as SemGCN and GraphSH do; ``None`` keeps 0/1.
    """
    a = np.zeros((num_nodes, num_nodes), dtype=np.float32)
    for i, j in edges:
        if not (0 <= i < num_nodes and 0 <= j < num_nodes):
            raise ValueError(f"edge ({i}, {j}) outside a graph of {num_nodes} nodes")
        a[i, j] = a[j, i] = 1.0
    if self_loops:
        a += np.eye(num_nodes, dtype=np.float32)
    if normalize == "row":
        a = a / a.sum(1, keepdims=True).clip(min=1e-12)
    elif normalize is not None:
        raise ValueError(f"unknown normalisation '{normalize}' (use 'row' or None)")
    return torch.from_numpy(a)


def skeleton_adjacency(skeleton: Skeleton, **kwargs) -> torch.Tensor:
    """The bone graph of a skeleton (its parent links), e.g. HGN's G17 with nnz 49."""
    return adjacency_from_edges(skeleton.num_joints, skeleton.bones, **kwargs)
