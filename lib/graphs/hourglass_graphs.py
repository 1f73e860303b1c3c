"""The three skeleton scales of GraphSH (16 -> 8 -> 4 nodes) and the maps between them.

Pooling takes the channel-wise max over each group of fine nodes (pairs on the 16-joint
skeleton); unpooling copies each coarse node back to the fine nodes of its group. Both are
written as index arrays so the network only gathers.

The public GraphSH runs on 16 joints only (its README: the Neck/Nose joint "is reserved" for
detected 2D). A 17-joint input graph is offered as well, for detections that carry Neck/Nose
(CPN): Neck/Nose is its own node at full resolution and pools with the group of its parent
(Thorax + Head), so the coarse levels are the same 8 and 4 nodes. The unpooling maps are *derived* from the groups (never typed in),
which is what keeps the left leg on the left: the public GraphSH code hand-wrote the 8 -> 16
table and swapped the two lower legs (see docs/graphsh.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from lib.geometry.skeleton import H36M16, H36M17, KEEP_17_TO_16
from lib.graphs.skeleton_graph import adjacency_from_edges

NUM_JOINTS = 16                     # the public GraphSH skeleton
SUPPORTED_JOINTS = (16, 17)         # 17: Neck/Nose kept as its own node (see module docstring)

# Level 1 -> 2: pairs of H36M-16 joints, in the order of the 8 coarse nodes:
# m0 R lower leg, m1 L lower leg, m2 hips, m3 Hip+Spine, m4 Thorax+Head,
# m5 R forearm, m6 L forearm, m7 shoulders.
GROUPS_16_TO_8 = ((2, 3), (5, 6), (1, 4), (0, 7), (8, 9), (14, 15), (11, 12), (10, 13))
EDGES_8 = ((0, 2), (1, 2), (2, 3), (3, 7), (4, 7), (5, 7), (6, 7))

# Level 2 -> 3: pairs of coarse nodes: l0 legs, l1 pelvis/low torso, l2 forearms, l3 upper body.
GROUPS_8_TO_4 = ((0, 1), (2, 3), (5, 6), (4, 7))
EDGES_4 = ((0, 1), (1, 2), (2, 3))


def groups_17_to_8() -> tuple:
    """The 16-joint groups in H36M-17 indices, each dropped joint added to its parent's group."""
    groups = [[KEEP_17_TO_16[j] for j in group] for group in GROUPS_16_TO_8]
    for joint in sorted(set(range(H36M17.num_joints)) - set(KEEP_17_TO_16)):
        parent = H36M17.parents[joint]
        next(g for g in groups if parent in g).append(joint)
    return tuple(tuple(sorted(g)) for g in groups)


def fine_groups(num_joints: int) -> tuple:
    """Pooling groups of the full-resolution skeleton (16 or 17 joints) into the 8 coarse nodes."""
    if num_joints == 16:
        return GROUPS_16_TO_8
    if num_joints == 17:
        return groups_17_to_8()
    raise ValueError(f"GraphSH's pooling groups exist for {SUPPORTED_JOINTS} joints, "
                     f"got {num_joints}")


def pool_groups(groups) -> tuple:
    """Equal-length index rows, one per group, for a gather-then-max pool. Shorter groups repeat
    their first member, which leaves the max unchanged."""
    width = max(len(g) for g in groups)
    return tuple(tuple(g) + (g[0],) * (width - len(g)) for g in groups)


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
    adjacency: tuple      # (JxJ, 8x8, 4x4) row-normalised D^-1 (A + I), J = 16 or 17
    pool_groups: tuple    # (J->8, 8->4) equal-length index rows; each row is max-pooled
    unpool_maps: tuple    # (8->J, 4->8) fine node -> coarse node

    @property
    def num_nodes(self) -> tuple:
        return tuple(a.shape[0] for a in self.adjacency)


def build_hourglass_graphs(adj: torch.Tensor | None = None,
                           num_joints: int = NUM_JOINTS) -> HourglassGraphs:
    """The GraphSH graphs on 16 (H36M-16) or 17 (H36M-17) joints; ``adj`` replaces the
    full-resolution skeleton adjacency if given."""
    groups = fine_groups(num_joints)
    if adj is None:
        skeleton = H36M16 if num_joints == 16 else H36M17
        adj = adjacency_from_edges(num_joints, skeleton.bones)
    adj = torch.as_tensor(adj, dtype=torch.float32)
    if tuple(adj.shape) != (num_joints, num_joints):
        raise ValueError(f"GraphSH on {num_joints} joints needs a {num_joints}x{num_joints} "
                         f"adjacency, got shape {tuple(adj.shape)}")
    adj8 = adjacency_from_edges(len(groups), EDGES_8)
    adj4 = adjacency_from_edges(len(GROUPS_8_TO_4), EDGES_4)
    return HourglassGraphs(
        adjacency=(adj, adj8, adj4),
        pool_groups=(pool_groups(groups), pool_groups(GROUPS_8_TO_4)),
        unpool_maps=(unpool_map(groups, num_joints), unpool_map(GROUPS_8_TO_4, len(groups))),
    )
