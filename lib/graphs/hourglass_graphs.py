"""The three skeleton scales of GraphSH (16 -> 8 -> 4 nodes) and the maps between them.

Pooling takes the channel-wise max over each group (pair) of fine nodes; unpooling copies
each coarse node back to the fine nodes of its group. Both are written as index arrays so
the network only gathers. The unpooling maps are *derived* from the groups (never typed in),
which is what keeps the left leg on the left: the public GraphSH code hand-wrote the 8 -> 16
table and swapped the two lower legs (see docs/graphsh.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from lib.geometry.skeleton import H36M16
from lib.graphs.skeleton_graph import adjacency_from_edges

NUM_JOINTS = 16

# Level 1 -> 2: pairs of H36M-16 joints, in the order of the 8 coarse nodes:
# m0 R lower leg, m1 L lower leg, m2 hips, m3 Hip+Spine, m4 Thorax+Head,
# m5 R forearm, m6 L forearm, m7 shoulders.
GROUPS_16_TO_8 = ((2, 3), (5, 6), (1, 4), (0, 7), (8, 9), (14, 15), (11, 12), (10, 13))
EDGES_8 = ((0, 2), (1, 2), (2, 3), (3, 7), (4, 7), (5, 7), (6, 7))

# Level 2 -> 3: pairs of coarse nodes: l0 legs, l1 pelvis/low torso, l2 forearms, l3 upper body.
GROUPS_8_TO_4 = ((0, 1), (2, 3), (5, 6), (4, 7))
EDGES_4 = ((0, 1), (1, 2), (2, 3))


def pool_order(groups) -> list:
    """Fine-node indices in group order: gathering them puts each group's members side by side."""
    return [node for group in groups for node in group]


def unpool_map(groups, num_fine: int) -> list:
    """For every fine node, the index of the coarse node (group) that contains it."""
    parent = [-1] * num_fine
    for coarse, group in enumerate(groups):
        for node in group:
            if not 0 <= node < num_fine:
                raise ValueError(f"group {coarse} names node {node}, outside 0..{num_fine - 1}")
            if parent[node] != -1:
                raise ValueError(f"node {node} is in groups {parent[node]} and {coarse}")
            parent[node] = coarse
    missing = [i for i, p in enumerate(parent) if p == -1]
    if missing:
        raise ValueError(f"nodes {missing} belong to no pooling group")
    return parent


def check_unpool_map(mapping, groups) -> None:
    """Raise if some fine node would read a coarse node whose group does not contain it."""
    for fine, coarse in enumerate(mapping):
        if fine not in groups[coarse]:
            raise ValueError(f"unpool map sends fine node {fine} to coarse node {coarse} "
                             f"(group {tuple(groups[coarse])}), which does not contain it")


@dataclass(frozen=True)
class HourglassGraphs:
    """Adjacency per level (fine to coarse) and the index maps between consecutive levels."""
    adjacency: tuple      # (16x16, 8x8, 4x4) row-normalised D^-1 (A + I)
    pool_orders: tuple    # (16->8, 8->4) gather orders; consecutive pairs are max-pooled
    unpool_maps: tuple    # (8->16, 4->8) fine node -> coarse node

    @property
    def num_nodes(self) -> tuple:
        return tuple(a.shape[0] for a in self.adjacency)


def build_hourglass_graphs(adj16: torch.Tensor | None = None) -> HourglassGraphs:
    """The GraphSH graphs; ``adj16`` replaces the 16-joint skeleton adjacency if given."""
    if adj16 is None:
        adj16 = adjacency_from_edges(NUM_JOINTS, H36M16.bones)
    adj16 = torch.as_tensor(adj16, dtype=torch.float32)
    if tuple(adj16.shape) != (NUM_JOINTS, NUM_JOINTS):
        raise ValueError(f"GraphSH needs a {NUM_JOINTS}x{NUM_JOINTS} adjacency (H36M-16 order), "
                         f"got shape {tuple(adj16.shape)}")
    adj8 = adjacency_from_edges(len(GROUPS_16_TO_8), EDGES_8)
    adj4 = adjacency_from_edges(len(GROUPS_8_TO_4), EDGES_4)
    up16 = unpool_map(GROUPS_16_TO_8, NUM_JOINTS)
    up8 = unpool_map(GROUPS_8_TO_4, len(GROUPS_16_TO_8))
    return HourglassGraphs(
        adjacency=(adj16, adj8, adj4),
        pool_orders=(pool_order(GROUPS_16_TO_8), pool_order(GROUPS_8_TO_4)),
        unpool_maps=(up16, up8),
    )
