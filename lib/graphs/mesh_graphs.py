"""HGN's mesh graph hierarchy: build (or load from cache) and choose the two levels the model uses.

Why: the HGN branches run on coarsened body meshes (G96 and G48 for SMPL: 83 and 45 real nodes
padded to 96 and 48). Their sizes, adjacency patterns, tree orders and averaging matrices all
come from here, so any body model (the real SMPL or the synthetic one) works without constants.
The construction itself is in ``lib.graphs.coarsening``; this module packages its results,
caches them keyed by the body model's fingerprint, and picks the levels.
"""
from __future__ import annotations

import hashlib
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from lib.fileio import atomic_write
from lib.graphs import coarsening

DEFAULT_NUM_LEVELS = 9
DEFAULT_TARGET_SIZES = (96, 48)
CACHE_PREFIX = "mesh_graphs"


@dataclass(eq=False)
class MeshLevel:
    """One coarsening level in binary-tree order (real clusters plus isolated fake nodes).

    ``perm[p]`` is the cluster id at tree position p (ids >= real_size are fake);
    ``weights`` holds the HEM weights in tree order (padded x padded, float32, self-loops kept).
    """
    index: int
    real_size: int
    padded_size: int
    perm: np.ndarray
    weights: sp.csr_matrix

    @property
    def nnz(self) -> int:
        """Stored entries of the adjacency (self-loops included): SemGCN's edge-parameter count."""
        return int(self.weights.nnz)

    @property
    def real_positions(self) -> torch.Tensor:
        """Tree position of each real cluster id: ``out[:, real_positions]`` gives cluster order."""
        rev = coarsening.inverse_permutation(self.perm)
        return torch.from_numpy(rev[:self.real_size].copy())

    @property
    def fake_positions(self) -> np.ndarray:
        """Tree positions of the padding nodes (they have no edges)."""
        return np.flatnonzero(self.perm >= self.real_size)

    def adjacency_sparse(self) -> sp.csr_matrix:
        """(weights > 0) row-normalised, no identity added; fake nodes keep empty rows.

        Normalised in float64 and stored as float32, as the original did before handing the
        dense matrix to torch.
        """
        pattern = (self.weights > 0).astype(np.float64).tocsr()
        row_sums = np.asarray(pattern.sum(axis=1)).reshape(-1)
        inverse = np.zeros_like(row_sums)
        np.divide(1.0, row_sums, out=inverse, where=row_sums > 0)
        normalised = (sp.diags(inverse) @ pattern).tocsr()
        normalised.sort_indices()
        return normalised.astype(np.float32)

    @property
    def adjacency(self) -> torch.Tensor:
        """The dense (padded x padded) float32 adjacency the graph convolutions take."""
        return torch.from_numpy(self.adjacency_sparse().toarray())


@dataclass(eq=False)
class MeshHierarchy:
    """All levels of a body mesh, from the full mesh (level 0) to the coarsest.

    ``parents[l][i]`` is the level-(l+1) cluster of real node i of level l;
    ``pooling[l]`` (real_l x real_{l+1}) averages children into clusters (P_l);
    ``full_to_level[l]`` = P_0 ... P_{l-1} (V x real_l), identity for l = 0, so that
    ``full_to_level[l].T @ vertices`` is the level-l coarse mesh in cluster order.
    """
    levels: list
    parents: list
    pooling: list
    full_to_level: list
    fingerprint: str
    num_vertices: int
    algorithm_version: str = coarsening.ALGORITHM_VERSION

    @property
    def num_levels(self) -> int:
        """Coarsening steps (levels holds num_levels + 1 graphs)."""
        return len(self.levels) - 1

    def describe(self) -> str:
        return "; ".join(f"level {lv.index}: {lv.real_size} real / {lv.padded_size} padded"
                         for lv in self.levels)


def faces_fingerprint(faces, num_vertices: int) -> str:
    """A stable digest of the triangle list, used when the body model gives no fingerprint."""
    h = hashlib.sha256(np.int64(num_vertices).tobytes())
    h.update(np.ascontiguousarray(np.asarray(faces), dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def _assemble(graphs_in_tree_order: list, perms: list, parents: list, fingerprint: str,
              num_vertices: int) -> MeshHierarchy:
    levels = [MeshLevel(index=i, real_size=int(len(parents[i])) if i < len(parents)
                        else int(perms[i].size),
                        padded_size=int(perms[i].size), perm=perms[i], weights=weights)
              for i, weights in enumerate(graphs_in_tree_order)]
    return MeshHierarchy(levels=levels, parents=parents,
                         pooling=[coarsening.pooling_matrix(p) for p in parents],
                         full_to_level=coarsening.full_to_level_matrices(parents),
                         fingerprint=fingerprint, num_vertices=int(num_vertices))


def _construct(faces, num_vertices: int, num_levels: int, fingerprint: str) -> MeshHierarchy:
    weights = coarsening.mesh_adjacency(faces, num_vertices)
    graphs, parents = coarsening.heavy_edge_matching(weights, num_levels)
    perms = coarsening.compute_perm(parents)
    permuted = [coarsening.permute_weights(g, p) for g, p in zip(graphs, perms)]
    return _assemble(permuted, perms, parents, fingerprint, num_vertices)


def cache_path(cache_dir, fingerprint: str, num_levels: int) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", str(fingerprint))
    return Path(cache_dir) / f"{CACHE_PREFIX}_{safe}_L{int(num_levels)}_{coarsening.ALGORITHM_VERSION}.npz"


def _save(path: Path, hierarchy: MeshHierarchy, faces_digest: str) -> None:
    levels = hierarchy.levels
    arrays = {
        "algorithm_version": np.array(hierarchy.algorithm_version),
        "faces_sha256": np.array(faces_digest),
        "fingerprint": np.array(hierarchy.fingerprint),
        "num_vertices": np.int64(hierarchy.num_vertices),
        "parent_sizes": np.array([p.size for p in hierarchy.parents], dtype=np.int64),
        "parents": np.concatenate(hierarchy.parents).astype(np.int64),
        "padded_sizes": np.array([lv.padded_size for lv in levels], dtype=np.int64),
        "perms": np.concatenate([lv.perm for lv in levels]).astype(np.int64),
        "nnz": np.array([lv.nnz for lv in levels], dtype=np.int64),
        "indptr": np.concatenate([lv.weights.indptr for lv in levels]).astype(np.int64),
        "indices": np.concatenate([lv.weights.indices for lv in levels]).astype(np.int64),
        "data": np.concatenate([lv.weights.data for lv in levels]).astype(np.float32),
    }
    # atomic: readers never see a half-written cache
    atomic_write(path, lambda tmp: np.savez_compressed(tmp, **arrays))


def _load(path: Path, faces_digest: str):
    """The cached hierarchy, or None when the file is for other faces or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if (str(f["algorithm_version"]) != coarsening.ALGORITHM_VERSION
                    or str(f["faces_sha256"]) != faces_digest):
                return None
            parent_sizes, padded = f["parent_sizes"], f["padded_sizes"]
            parents = np.split(f["parents"], np.cumsum(parent_sizes)[:-1])
            perms = np.split(f["perms"], np.cumsum(padded)[:-1])
            indptrs = np.split(f["indptr"], np.cumsum(padded + 1)[:-1])
            cuts = np.cumsum(f["nnz"])[:-1]
            indices, data = np.split(f["indices"], cuts), np.split(f["data"], cuts)
            weights = [sp.csr_matrix((d, i.astype(np.int32), p.astype(np.int32)), shape=(n, n))
                       for d, i, p, n in zip(data, indices, indptrs, padded.tolist())]
            return _assemble(weights, perms, parents, str(f["fingerprint"]), int(f["num_vertices"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        warnings.warn(f"ignoring unreadable mesh-graph cache {path} ({error}); rebuilding it")
        return None


def build_mesh_hierarchy(faces, num_vertices: int, num_levels: int = DEFAULT_NUM_LEVELS,
                         cache_dir=None, fingerprint: str | None = None) -> MeshHierarchy:
    """Coarsen a body mesh ``num_levels`` times (HGN's graphs), using a cache when given.

    ``fingerprint`` should identify the body model (e.g. a digest of its file); without it a
    digest of the faces is used. The cache file also stores the faces' digest, so a wrong
    fingerprint can only cost a rebuild, never return another mesh's graphs.
    """
    faces = coarsening.validate_faces(faces, num_vertices)
    num_levels = int(num_levels)
    if num_levels < 1:
        raise ValueError(f"MODEL.num_coarsening_levels must be >= 1, got {num_levels}")
    digest = faces_fingerprint(faces, num_vertices)
    fingerprint = digest if fingerprint is None else str(fingerprint)
    path = None if cache_dir is None else cache_path(cache_dir, fingerprint, num_levels)
    if path is not None and path.is_file():
        cached = _load(path, digest)
        if cached is not None:
            return cached
    hierarchy = _construct(faces, num_vertices, num_levels, fingerprint)
    if path is not None:
        _save(path, hierarchy, digest)
    return hierarchy


def select_levels(hierarchy: MeshHierarchy, targets=DEFAULT_TARGET_SIZES, explicit=None) -> tuple:
    """(fine, mid) MeshLevels that feed HGN's two mesh branches.

    By default the levels whose padded sizes are closest to ``targets`` (ties go to the larger
    graph); ``explicit`` (MODEL.graph_levels) names two level indices instead. The fine level
    must come before the mid level and be a different graph.
    """
    available = hierarchy.describe()
    if explicit is not None:
        try:
            fine_index, mid_index = (int(i) for i in explicit)
        except (TypeError, ValueError):
            raise ValueError(f"MODEL.graph_levels must be two level indices [fine, mid], "
                             f"got {explicit!r}; available: {available}") from None
        if not (0 <= fine_index < mid_index <= hierarchy.num_levels):
            raise ValueError(f"MODEL.graph_levels={list(explicit)} must satisfy 0 <= fine < mid <= "
                             f"{hierarchy.num_levels} (MODEL.num_coarsening_levels); "
                             f"available: {available}")
        return hierarchy.levels[fine_index], hierarchy.levels[mid_index]
    fine_target, mid_target = (int(t) for t in targets)

    def closest(target):
        return min(hierarchy.levels, key=lambda lv: (abs(lv.padded_size - target), -lv.padded_size))

    fine, mid = closest(fine_target), closest(mid_target)
    if fine.index >= mid.index:
        raise ValueError(
            f"this body mesh cannot give two distinct graph levels near {fine_target} and "
            f"{mid_target} nodes (both pick level {fine.index}); available: {available}. "
            f"Set MODEL.graph_levels to two level indices [fine, mid], or change "
            f"MODEL.num_coarsening_levels (or use a body model with more vertices)")
    return fine, mid
