"""Checkpoints of the original HGN code vs ours, and stand-in graphs with the official sizes.

Our HGN names its modules exactly as the public code does, so no key conversion is needed: an
official ``final.pth.tar`` ({epoch, model_state_dict, optim_state_dict, scheduler_state_dict,
train_log, test_log}) loads with ``strict=True`` provided the graphs have the official sizes. What
can go wrong is the graphs: the per-edge ``e`` parameters have exactly nnz(A) entries and the
``fc_*`` matrices are (N_target, N_source, 1), so graphs built differently (e.g. HEM coarsening
under numpy >= 1.25, see docs/hgn.md) give shape mismatches. ``diagnose_hgn_state_dict`` turns
those into messages that name the graph at fault.

``stand_in_graph`` makes random graphs with the official node/non-zero counts and fake-node
positions, for tests and benchmarks that need the official shapes before the real mesh graphs
are available.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lib.experiment import KIND_BARE, KIND_FRAMEWORK, KIND_OFFICIAL, checkpoint_kind  # noqa: F401
from lib.models.utils import strip_module_prefix

# Official graph sizes (docs/hgn.md): padded nodes, non-zeros with self-loops, fake nodes.
OFFICIAL_GRAPHS = {
    "skeleton": dict(num_nodes=17, nnz=49, fake=()),
    "mid": dict(num_nodes=48, nnz=241, fake=(23, 35, 39)),
    "fine": dict(num_nodes=96, nnz=487, fake=(3, 7, 11, 15, 19, 23, 27, 46, 47, 70, 71, 78, 79)),
}
OFFICIAL_NUM_PARAMETERS = 1_045_621



def stand_in_graph(num_nodes: int, nnz: int, fake=(), seed: int = 0) -> torch.Tensor:
    """A random connected graph with exactly ``nnz`` non-zeros (self-loops on real nodes, none on
    fake nodes, which get empty rows), row-normalised like the official adjacencies."""
    fake = sorted(set(int(i) for i in fake))
    real = [i for i in range(num_nodes) if i not in fake]
    n_edges, odd = divmod(nnz - len(real), 2)
    max_edges = len(real) * (len(real) - 1) // 2
    if odd or n_edges < len(real) - 1 or n_edges > max_edges:
        raise ValueError(f"cannot build a connected graph on {len(real)} real nodes with {nnz} non-zeros")
    rng = np.random.default_rng(seed)
    order = rng.permutation(real)
    edges = set()
    for k in range(1, len(order)):                      # random spanning tree: connected
        i, j = int(order[k]), int(order[rng.integers(k)])
        edges.add((min(i, j), max(i, j)))
    while len(edges) < n_edges:
        i, j = rng.choice(real, size=2, replace=False)
        edges.add((int(min(i, j)), int(max(i, j))))
    adj = np.zeros((num_nodes, num_nodes), dtype=np.float32)
    for i, j in edges:
        adj[i, j] = adj[j, i] = 1.0
    adj[real, real] = 1.0
    adj /= np.maximum(adj.sum(1, keepdims=True), 1.0)
    return torch.from_numpy(adj)


def official_size_graphs(seed: int = 0) -> tuple:
    """Stand-in (adj17, adj48, adj96) with the official sizes; adj17 is random too (use
    lib.graphs.skeleton_graph.skeleton_adjacency(H36M17) for the real skeleton)."""
    return tuple(stand_in_graph(g["num_nodes"], g["nnz"], g["fake"], seed + k)
                 for k, g in enumerate(OFFICIAL_GRAPHS.values()))


@dataclass
class CheckpointKind:
    kind: str            # KIND_OFFICIAL, KIND_FRAMEWORK or KIND_BARE
    epoch: int | None
    state_dict: dict

    def describe(self) -> str:
        epoch = "" if self.epoch is None else f", epoch {self.epoch}"
        return f"loaded {self.kind}{epoch} ({len(self.state_dict)} tensors)"


def classify_checkpoint(ckpt) -> CheckpointKind:
    """Which code wrote this checkpoint dict (lib.experiment.checkpoint_kind), and its state dict."""
    kind = checkpoint_kind(ckpt)
    if "model_state_dict" in ckpt or "state_dict" in ckpt:
        epoch, state_dict = ckpt.get("epoch"), ckpt.get("model_state_dict", ckpt.get("state_dict"))
    else:
        epoch, state_dict = None, ckpt
    return CheckpointKind(kind, None if epoch is None else int(epoch), strip_module_prefix(state_dict))


def diagnose_hgn_state_dict(model: torch.nn.Module, state_dict: dict) -> list:
    """Every way ``state_dict`` does not fit ``model``, explained; empty when it loads strictly."""
    own = model.state_dict()
    problems = []
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    if missing:
        problems.append(f"missing keys ({len(missing)}): {', '.join(missing[:8])}"
                        + (" ..." if len(missing) > 8 else ""))
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected[:8])}"
                        + (" ..." if len(unexpected) > 8 else ""))
    graph_of_head = {"gconv_output.": "skeleton graph", "gconv_output_48.": "middle mesh graph",
                     "gconv_output_96.": "fine mesh graph"}
    for key in sorted(set(own) & set(state_dict)):
        theirs, ours = tuple(state_dict[key].shape), tuple(own[key].shape)
        if theirs == ours:
            continue
        why = ""
        if key.endswith(".e"):
            graph = next((g for prefix, g in graph_of_head.items() if key.startswith(prefix)), None)
            why = (f": the checkpoint's graph has {theirs[-1]} non-zeros, ours {ours[-1]}"
                   + (f" ({graph})" if graph else "")
                   + "; build the graphs exactly as the original does under numpy <= 1.24 "
                      "(lib/graphs/coarsening.py, docs/hgn.md)")
        elif key.startswith("fc_") and key.endswith("conv.weight"):
            why = (f": node counts (target, source) differ, checkpoint {theirs[:2]} vs ours {ours[:2]}"
                   "; the mesh graphs have other sizes than those the checkpoint was trained with")
        problems.append(f"shape of {key}: checkpoint {theirs} vs model {ours}{why}")
    return problems


def load_hgn_weights(model: torch.nn.Module, ckpt, source: str = "checkpoint") -> CheckpointKind:
    """Strictly load an official or framework checkpoint dict into ``model``; say which it was."""
    info = classify_checkpoint(ckpt)
    problems = diagnose_hgn_state_dict(model, info.state_dict)
    if problems:
        raise ValueError(f"{source} ({info.kind}) does not fit {type(model).__name__}: "
                         + "; ".join(problems))
    model.load_state_dict(info.state_dict, strict=True)
    return info
