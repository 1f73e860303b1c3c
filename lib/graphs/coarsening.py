"""Heavy-edge-matching (HEM) coarsening of a triangle mesh, as HGN/Pose2Mesh build their graphs.

Why a re-implementation: the original's graphs depend on ``np.argsort`` tie-breaking and on
numpy 1.x scalar promotion, so they change with the numpy version and CPU. This module gives,
on any machine, exactly what the original gives under numpy <= 1.24 (docs/hgn.md):

* mesh graph: pairs (a,b), (b,c), (a,c) of every face, a directed pair seen k times weighs
  k - [k > 1] (so 1 on a manifold mesh), symmetrised by the larger of A and A^T, float32;
* visiting order: ``classic_argsort`` of the float32 column sums at every level;
* vertex weights d: column sums minus the diagonal at level 0, column sums at later levels;
* matching score (2 W_ij + W_ii + W_jj) / (d_i + d_j + 1e-9) evaluated in float64 as numpy 1.x
  promoted it, W_ii being the *first stored value* of row i; the strictly largest wins;
* the original's row-length bookkeeping is off by one entry at both ends: vertex 0 also scans
  the first stored entry of row 1, and the last vertex does not scan its last stored entry.
  Kept on purpose, because it changes which pairs are merged;
* coarse weights are sums of fine weights; binary-tree order with fake nodes (``compute_perm``);
* pooling matrices that average children into their cluster (1, or 0.5 / 0.5).

All matrices are scipy.sparse CSR with sorted indices; arrays are int64.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from lib.graphs.classic_argsort import classic_argsort

# Bump when anything here changes the graphs: it is part of the cache key.
ALGORITHM_VERSION = "hem-numpy124-v1"

# The original's tie-breaking epsilon in the matching score's denominator.
SCORE_EPSILON = 1e-9


def validate_faces(faces, num_vertices: int) -> np.ndarray:
    """Check a triangle list and return it as an (F, 3) int64 array.

    The original sizes the graph as ``faces.max() + 1`` and assumes every vertex has a
    neighbour, so a vertex that no face uses would silently shift its matching.
    """
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.shape[0] == 0:
        raise ValueError(f"body-model faces must be a non-empty (F, 3) triangle array, "
                         f"got shape {faces.shape}")
    if faces.dtype.kind not in "iu":
        if faces.dtype.kind != "f" or not np.all(faces == np.round(faces)):
            raise ValueError(f"body-model faces must hold integer vertex ids, got {faces.dtype}")
    faces = faces.astype(np.int64)
    num_vertices = int(num_vertices)
    if faces.min() < 0 or faces.max() >= num_vertices:
        raise ValueError(f"body-model faces reference vertex ids {faces.min()}..{faces.max()} "
                         f"but the model has {num_vertices} vertices")
    degenerate = (faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2]) \
        | (faces[:, 0] == faces[:, 2])
    if degenerate.any():
        k = int(np.flatnonzero(degenerate)[0])
        raise ValueError(f"body-model face {k} {faces[k].tolist()} repeats a vertex; "
                         f"remove degenerate triangles from the model's faces")
    used = np.zeros(num_vertices, dtype=bool)
    used[faces.reshape(-1)] = True
    if not used.all():
        missing = np.flatnonzero(~used)
        raise ValueError(f"{missing.size} body-model vertices (first: {missing[:5].tolist()}) "
                         f"belong to no face; the mesh graph needs every vertex in a triangle")
    return faces


def mesh_adjacency(faces, num_vertices: int) -> sp.csr_matrix:
    """The level-0 weight matrix of a triangle mesh (float32, symmetric, no self-loops)."""
    faces = validate_faces(faces, num_vertices)
    rows = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 0]])
    cols = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 2]])
    counts = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)),
                           shape=(num_vertices, num_vertices))
    counts.sum_duplicates()
    counts.data -= (counts.data > 1).astype(np.float32)  # a repeated pair counts once less
    weights = counts.maximum(counts.T).tocsr()
    return _canonical(weights)


def _canonical(matrix) -> sp.csr_matrix:
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    matrix.sort_indices()
    return matrix


def column_sums(weights: sp.csr_matrix) -> np.ndarray:
    """float32 column sums (exact here: all weights are small integers)."""
    return np.asarray(weights.sum(axis=0), dtype=np.float32).reshape(-1)


def visiting_order(weights: sp.csr_matrix) -> np.ndarray:
    """Order in which HEM visits the vertices: classic argsort of the column sums."""
    return classic_argsort(column_sums(weights))


def _scan_ranges(indptr: np.ndarray) -> tuple:
    """Start and end (exclusive) of the stored entries each row scans, with the original's quirk."""
    n = indptr.size - 1
    starts = indptr[:-1].copy()
    ends = indptr[1:].copy()
    if n > 1:
        ends[0] += 1    # vertex 0 also scans the first entry of row 1
        ends[-1] -= 1   # the last vertex misses its last entry
    return starts, ends


def match_one_level(weights: sp.csr_matrix, vertex_weights: np.ndarray,
                    order: np.ndarray) -> np.ndarray:
    """One HEM pass: cluster id of every vertex, ids given in visiting order."""
    n = weights.shape[0]
    indptr, cols, data = weights.indptr, weights.indices, weights.data
    if np.any(np.diff(indptr) == 0):
        empty = int(np.flatnonzero(np.diff(indptr) == 0)[0])
        raise ValueError(f"graph node {empty} has no edges; HEM needs every node connected")
    starts, ends = _scan_ranges(indptr)
    lengths = np.maximum(ends - starts, 0)
    scan_rows = np.repeat(np.arange(n), lengths)
    scan_pos = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths) \
        + np.repeat(starts, lengths)
    scan_cols = cols[scan_pos]
    # numpy 1.x promoted float32 scalars with Python floats to float64: keep that arithmetic.
    w_ij = data[scan_pos].astype(np.float64)
    w_ii = data[indptr[scan_rows]].astype(np.float64)
    w_jj = data[indptr[scan_cols]].astype(np.float64)
    d = np.asarray(vertex_weights, dtype=np.float32)
    denominator = (d[scan_rows] + d[scan_cols]).astype(np.float64) + SCORE_EPSILON
    scores = ((2.0 * w_ij + w_ii) + w_jj) * 1.0 / denominator

    col_list = scan_cols.tolist()
    score_list = scores.tolist()
    bounds = np.concatenate([[0], np.cumsum(lengths)]).tolist()
    marked = bytearray(n)
    cluster = [0] * n
    next_id = 0
    for vertex in order.tolist():
        if marked[vertex]:
            continue
        marked[vertex] = 1
        best, best_score = -1, 0.0
        for k in range(bounds[vertex], bounds[vertex + 1]):
            neighbour = col_list[k]
            if not marked[neighbour] and score_list[k] > best_score:
                best, best_score = neighbour, score_list[k]
        cluster[vertex] = next_id
        if best >= 0:
            cluster[best] = next_id
            marked[best] = 1
        next_id += 1
    return np.asarray(cluster, dtype=np.int64)


def coarse_weights(weights: sp.csr_matrix, cluster: np.ndarray) -> sp.csr_matrix:
    """W'[p(r), p(c)] = sum of W[r, c]: merged pairs become self-loops."""
    coo = weights.tocoo()
    size = int(cluster.max()) + 1
    merged = sp.csr_matrix((coo.data, (cluster[coo.row], cluster[coo.col])), shape=(size, size))
    return _canonical(merged)


def heavy_edge_matching(weights: sp.csr_matrix, num_levels: int) -> tuple:
    """Coarsen ``num_levels`` times: (graphs[0..L], parents[0..L-1]) with graphs[0] = weights.

    Raises when a level no longer shrinks (a mesh too small for the requested levels),
    because the binary-tree padding would then double without end.
    """
    if int(num_levels) < 1:
        raise ValueError(f"the number of coarsening levels must be >= 1, got {num_levels} "
                         f"(MODEL.num_coarsening_levels)")
    graphs, parents = [weights], []
    vertex_weights = column_sums(weights) - weights.diagonal().astype(np.float32)
    for level in range(int(num_levels)):
        cluster = match_one_level(weights, vertex_weights, visiting_order(weights))
        coarse = coarse_weights(weights, cluster)
        if coarse.shape[0] == weights.shape[0]:
            raise ValueError(
                f"the mesh cannot be coarsened past level {level} ({weights.shape[0]} nodes left): "
                f"{num_levels} levels were requested; set MODEL.num_coarsening_levels to at most "
                f"{level} or use a body model with more vertices")
        parents.append(cluster)
        graphs.append(coarse)
        weights = coarse
        vertex_weights = column_sums(weights)
    return graphs, parents


def compute_perm(parents: list) -> list:
    """Binary-tree orders, one per level (finest first): position -> node id, fakes >= real size.

    The coarsest level keeps its order; going down, each coarse node lists its children in
    ascending order, a single child gets one fake partner and a fake (or childless) node two
    fake children, fake ids counting up from the level's real size in order of appearance.
    """
    coarsest = int(parents[-1].max()) + 1
    perms = [np.arange(coarsest, dtype=np.int64)]
    for parent in parents[::-1]:
        parent = np.asarray(parent, dtype=np.int64)
        real = parent.size
        above = perms[-1]
        counts = np.bincount(parent, minlength=above.size)
        if counts.max() > 2:
            raise AssertionError("HEM produced a cluster with more than two children")
        children = np.argsort(parent, kind="stable")  # grouped by parent, ascending inside
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        slots = np.full((above.size, 2), -1, dtype=np.int64)
        one = counts[above] >= 1   # fake coarse nodes have count 0: two fake children
        two = counts[above] == 2
        slots[one, 0] = children[first[above[one]]]
        slots[two, 1] = children[first[above[two]] + 1]
        flat = slots.reshape(-1)
        fake = flat < 0
        flat[fake] = real + np.arange(int(fake.sum()))
        perms.append(flat)
    return perms[::-1]


def inverse_permutation(perm: np.ndarray) -> np.ndarray:
    """rev[node id] = position of that node in the tree order."""
    rev = np.empty_like(perm)
    rev[perm] = np.arange(perm.size, dtype=perm.dtype)
    return rev


def permute_weights(weights: sp.csr_matrix, perm: np.ndarray) -> sp.csr_matrix:
    """Weights in tree order, padded with isolated fake nodes (node j moves to rev[j])."""
    rev = inverse_permutation(np.asarray(perm, dtype=np.int64))
    coo = weights.tocoo()
    size = perm.size
    return _canonical(sp.csr_matrix((coo.data, (rev[coo.row], rev[coo.col])), shape=(size, size)))


def pooling_matrix(parent: np.ndarray) -> sp.csr_matrix:
    """P (fine real x coarse real, float64): each coarse column averages its 1 or 2 children."""
    parent = np.asarray(parent, dtype=np.int64)
    counts = np.bincount(parent)
    values = 1.0 / counts[parent]
    matrix = sp.csr_matrix((values, (np.arange(parent.size), parent)),
                           shape=(parent.size, counts.size))
    matrix.sort_indices()
    return matrix


def full_to_level_matrices(parents: list) -> list:
    """C_l = P_0 ... P_{l-1} (V x real_l), C_0 = identity: full mesh -> level-l averages."""
    num_vertices = len(parents[0])
    products = [sp.identity(num_vertices, dtype=np.float64, format="csr")]
    for parent in parents:
        product = (products[-1] @ pooling_matrix(parent)).tocsr()
        product.sort_indices()
        products.append(product)
    return products
