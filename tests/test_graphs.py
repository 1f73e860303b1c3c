"""Graphs: classic argsort, HEM coarsening, binary-tree order, pooling, cache, level choice, G17."""
import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from lib.geometry.skeleton import H36M17
from lib.graphs import coarsening
from lib.graphs.classic_argsort import argsort_keys, classic_argsort, classic_heapsort_argsort
from lib.graphs.mesh_graphs import (MeshHierarchy, build_mesh_hierarchy, cache_path,
                                    select_levels)
from lib.graphs.skeleton_graph import skeleton_adjacency
from tools.record_numpy124_vectors import (ARGSORT_FILE, HEM_FILE, FULL_PERM_MAX_SIZE,
                                           faces_digest, grid_faces, icosphere_faces,
                                           reference_hem, reference_permuted,
                                           reference_tree_orders, scrambled, recorded_meshes,
                                           uses_heapsort_vectors, weights_digest)

DATA = Path(__file__).resolve().parent / "data"
SMPL_DIR = Path(__file__).resolve().parents[1] / "smplpytorch" / "smplpytorch" / "native" / "models"

TETRAHEDRON = np.array([(0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)])
# A strip of four triangles over vertices 0..5 (top 0, 2, 4; bottom 1, 3, 5).
STRIP = np.array([(0, 1, 2), (1, 3, 2), (2, 3, 4), (3, 5, 4)])
OCTAHEDRON = np.array([(0, 1, 2), (0, 2, 3), (0, 3, 4), (0, 4, 1),
                       (5, 2, 1), (5, 3, 2), (5, 4, 3), (5, 1, 4)])


# ------------------------------------------------------------------ classic argsort

def _argsort_cases():
    rec = np.load(DATA / ARGSORT_FILE)
    assert str(rec["numpy_version"]) == "1.24.4"
    offsets = {}
    quick_at = heap_at = 0
    cases = []
    for name, dtype, n in zip(rec["names"].tolist(), rec["dtypes"].tolist(), rec["lengths"].tolist()):
        start = offsets.get(dtype, 0)
        values = rec[f"values_{dtype}"][start:start + n]
        offsets[dtype] = start + n
        quick = rec["argsort"][quick_at:quick_at + n].astype(np.int64)
        quick_at += n
        heap = None
        if uses_heapsort_vectors(name, n):
            heap = rec["heapsort"][heap_at:heap_at + n].astype(np.int64)
            heap_at += n
        cases.append((name, values, quick, heap))
    assert quick_at == rec["argsort"].size and heap_at == rec["heapsort"].size
    return cases


ARGSORT_CASES = _argsort_cases()


def test_classic_argsort_matches_numpy_124_on_recorded_vectors():
    sizes, dtypes = set(), set()
    for name, values, expected, _ in ARGSORT_CASES:
        got = classic_argsort(values)
        assert got.dtype == np.int64
        assert np.array_equal(got, expected), name
        sizes.add(values.size)
        dtypes.add(values.dtype.str)
    assert {1, 16, 17, 1000, 7000} <= sizes
    assert {"<f4", "<f8", "<i8", "|b1"} <= dtypes


def test_classic_heapsort_matches_numpy_124_and_killers_reach_it():
    checked = 0
    for name, values, _, heap in ARGSORT_CASES:
        if heap is not None:
            assert np.array_equal(classic_heapsort_argsort(values), heap), name
            checked += 1
        if name.startswith("killer"):
            hits = []
            argsort_keys(np.unique(values, return_inverse=True)[1].tolist(), heapsorted=hits)
            assert hits, f"{name} no longer drives the introsort into its heapsort fallback"
    assert checked > 90


def test_classic_argsort_small_inputs_and_errors():
    assert classic_argsort(np.array([], dtype=np.float32)).tolist() == []
    assert classic_argsort(np.array([5.0])).tolist() == [0]
    # Up to 16 elements it is an insertion sort: stable.
    assert classic_argsort(np.array([2, 1, 2, 1, 0])).tolist() == [4, 1, 3, 0, 2]
    # NaNs are equal to each other and sort last; -0.0 equals 0.0.
    assert classic_argsort(np.array([np.nan, 0.0, -0.0, np.nan, -1.0])).tolist() == [4, 1, 2, 0, 3]
    with pytest.raises(ValueError, match="1-D"):
        classic_argsort(np.zeros((2, 2)))
    with pytest.raises(TypeError, match="dtype"):
        classic_argsort(np.array([1j, 2j]))


def test_classic_argsort_sorts_random_ties():
    rng = np.random.default_rng(3)
    for n in (17, 50, 513, 4000):
        values = rng.integers(0, 5, n).astype(np.float32)
        order = classic_argsort(values)
        assert sorted(order.tolist()) == list(range(n))
        assert np.all(np.diff(values[order]) >= 0)


# ------------------------------------------------------------------ mesh graph and HEM on hand-made meshes

def _dense(matrix):
    return np.asarray(matrix.toarray())


def test_mesh_adjacency_pair_rules():
    # K4 from a tetrahedron: every directed pair appears twice and counts once.
    tet = _dense(coarsening.mesh_adjacency(TETRAHEDRON, 4))
    assert tet.dtype == np.float32
    assert np.array_equal(tet, np.ones((4, 4)) - np.eye(4))
    # A directed pair seen three times weighs 2 (the original subtracts 1 once).
    triple = _dense(coarsening.mesh_adjacency(np.array([(0, 1, 2)] * 3), 3))
    assert np.array_equal(triple, 2 * (np.ones((3, 3)) - np.eye(3)))
    # Opposite orientations (1,2) and (2,1) are symmetrised by the max, not summed.
    flipped = _dense(coarsening.mesh_adjacency(np.array([(0, 1, 2), (2, 1, 3)]), 4))
    assert flipped[1, 2] == flipped[2, 1] == 1.0
    assert flipped[0, 3] == 0.0 and np.array_equal(flipped, flipped.T)


@pytest.mark.parametrize("faces, num_vertices, message", [
    (np.array([(0, 1, 1)]), 2, "repeats a vertex"),
    (np.array([(0, 1, 2)]), 4, "belong to no face"),
    (np.array([(0, 1, 5)]), 3, "reference vertex ids"),
    (np.array([0, 1, 2]), 3, r"\(F, 3\)"),
    (np.array([(0.5, 1, 2)]), 3, "integer vertex ids"),
])
def test_bad_faces_are_rejected_clearly(faces, num_vertices, message):
    with pytest.raises(ValueError, match=message):
        build_mesh_hierarchy(faces, num_vertices, num_levels=1)


def test_hem_tetrahedron_by_hand():
    graphs, parents = coarsening.heavy_edge_matching(coarsening.mesh_adjacency(TETRAHEDRON, 4), 2)
    # All degrees 3, visiting order 0..3; 0 takes its first best neighbour 1, then 2 takes 3.
    assert parents[0].tolist() == [0, 0, 1, 1]
    assert np.array_equal(_dense(graphs[1]), [[2, 4], [4, 2]])
    assert parents[1].tolist() == [0, 0]
    assert np.array_equal(_dense(graphs[2]), [[12]])
    # A single node cannot be coarsened again: a clear error names the config key.
    with pytest.raises(ValueError, match="MODEL.num_coarsening_levels to at most 2"):
        coarsening.heavy_edge_matching(coarsening.mesh_adjacency(TETRAHEDRON, 4), 3)


def test_hem_strip_by_hand_including_the_row_length_quirk():
    weights = coarsening.mesh_adjacency(STRIP, 6)
    # Degrees [2, 3, 4, 4, 3, 2]: classic (insertion) order 0, 5, 1, 4, 2, 3.
    assert coarsening.visiting_order(weights).tolist() == [0, 5, 1, 4, 2, 3]
    graphs, parents = coarsening.heavy_edge_matching(weights, 2)
    # 0 pairs with 1 (score 4/5). 5 would prefer 4 (4/5) over 3 (4/6), but the original's row
    # bookkeeping hides the last vertex's last entry, so 5 pairs with 3. Then 4 takes 2.
    assert parents[0].tolist() == [0, 0, 2, 1, 2, 1]
    assert np.array_equal(_dense(graphs[1]), [[2, 1, 2], [1, 2, 3], [2, 3, 2]])
    # Level 1: cluster 0 scores 1 at 5/11 (W_jj is row 1's first value, 1) and 2 at 8/12.
    assert parents[1].tolist() == [0, 1, 0]
    assert np.array_equal(_dense(graphs[2]), [[8, 4], [4, 2]])


def test_hem_octahedron_by_hand():
    graphs, parents = coarsening.heavy_edge_matching(coarsening.mesh_adjacency(OCTAHEDRON, 6), 2)
    # All scores tie at 1/2: first neighbours win. 2 prefers 3 over 5 (listed first).
    assert parents[0].tolist() == [0, 0, 1, 1, 2, 2]
    assert np.array_equal(_dense(graphs[1]), [[2, 3, 3], [3, 2, 3], [3, 3, 2]])
    assert parents[1].tolist() == [0, 0, 1]


def test_row_length_quirk_lets_vertex_zero_reach_row_one():
    # Two separate edges 0-2 (weight 1) and 1-3 (weight 2). The original's bookkeeping makes
    # vertex 0 also scan row 1's first entry (column 3): score (4 + 1 + 2) / 3 beats its real
    # neighbour 2 at (2 + 1 + 1) / 2, so 0 and 3 merge although they share no edge.
    weights = sp.csr_matrix(np.array([[0, 0, 1, 0], [0, 0, 0, 2], [1, 0, 0, 0], [0, 2, 0, 0]],
                                     dtype=np.float32))
    order = coarsening.visiting_order(weights)
    assert order.tolist() == [0, 2, 1, 3]
    cluster = coarsening.match_one_level(weights, coarsening.column_sums(weights), order)
    assert cluster.tolist() == [0, 2, 1, 0]


# ------------------------------------------------------------------ binary-tree order, pooling

def test_compute_perm_documented_example():
    perms = coarsening.compute_perm([np.array([4, 1, 1, 2, 2, 3, 0, 0, 3]), np.array([2, 1, 0, 1, 0])])
    assert [p.tolist() for p in perms] == [[3, 4, 0, 9, 1, 2, 5, 8, 6, 7, 10, 11],
                                           [2, 4, 1, 3, 0, 5], [0, 1, 2]]


def test_strip_hierarchy_tree_adjacency_and_pooling_by_hand():
    h = build_mesh_hierarchy(STRIP, 6, num_levels=2)
    assert [lv.real_size for lv in h.levels] == [6, 3, 2]
    assert [lv.padded_size for lv in h.levels] == [8, 4, 2]
    assert h.levels[1].perm.tolist() == [0, 2, 1, 3]
    assert h.levels[0].perm.tolist() == [0, 1, 2, 4, 3, 5, 6, 7]
    level1 = h.levels[1]
    assert level1.real_positions.tolist() == [0, 2, 1]
    assert level1.real_positions.dtype == torch.int64
    assert level1.fake_positions.tolist() == [3]
    assert np.array_equal(_dense(level1.weights), [[2, 2, 1, 0], [2, 2, 3, 0], [1, 3, 2, 0], [0, 0, 0, 0]])
    assert level1.nnz == 9
    adjacency = level1.adjacency
    assert adjacency.dtype == torch.float32 and adjacency.shape == (4, 4)
    assert torch.allclose(adjacency[:3, :3], torch.full((3, 3), 1 / 3))
    assert adjacency[3].abs().sum() == 0 and adjacency[:, 3].abs().sum() == 0
    # Averaging: P0 pairs {0,1}, {3,5}, {2,4}; P1 pairs {0,2} and keeps 1 alone.
    assert np.array_equal(_dense(h.pooling[0]), [[.5, 0, 0], [.5, 0, 0], [0, 0, .5],
                                                 [0, .5, 0], [0, 0, .5], [0, .5, 0]])
    assert np.array_equal(_dense(h.pooling[1]), [[.5, 0], [0, 1], [.5, 0]])
    assert np.array_equal(_dense(h.full_to_level[2]), [[.25, 0], [.25, 0], [.25, 0],
                                                       [0, .5], [.25, 0], [0, .5]])
    vertices = np.arange(18, dtype=np.float64).reshape(6, 3)
    assert np.allclose(h.full_to_level[2].T @ vertices, [(vertices[[0, 1, 2, 4]]).mean(0),
                                                        (vertices[[3, 5]]).mean(0)])


@pytest.fixture(scope="module")
def ico_hierarchy():
    faces, num_vertices = icosphere_faces(3)
    return build_mesh_hierarchy(faces, num_vertices, num_levels=6)


def test_binary_tree_invariants(ico_hierarchy):
    h = ico_hierarchy
    for fine, coarse, parent in zip(h.levels[:-1], h.levels[1:], h.parents):
        assert fine.padded_size == 2 * coarse.padded_size
        assert sorted(fine.perm.tolist()) == list(range(fine.padded_size))
        children = fine.perm.reshape(-1, 2)
        for k, node in enumerate(coarse.perm.tolist()):
            real_children = [c for c in children[k].tolist() if c < fine.real_size]
            if node >= coarse.real_size:
                assert real_children == []
            else:
                assert real_children == sorted(np.flatnonzero(parent == node).tolist())
                assert children[k][0] < fine.real_size  # a real child comes first
    for level in h.levels:
        w = level.weights
        assert (w != w.T).nnz == 0
        row_nnz = np.diff(w.indptr)
        fake = level.perm >= level.real_size
        assert np.all(row_nnz[fake] == 0) and np.all(row_nnz[~fake] > 0)
        assert w[:, np.flatnonzero(fake)].nnz == 0
    # Coarsening conserves the total weight; after level 0 every real node has a self-loop
    # or a neighbour, and the adjacency rows of real nodes sum to one.
    totals = [lv.weights.sum() for lv in h.levels]
    assert np.allclose(totals, totals[0])
    adjacency = h.levels[4].adjacency
    real = torch.from_numpy(h.levels[4].perm < h.levels[4].real_size)
    assert torch.allclose(adjacency.sum(1)[real], torch.ones(int(real.sum())))
    assert int((adjacency != 0).sum()) == h.levels[4].nnz


def test_pooling_columns_average_and_products(ico_hierarchy):
    h = ico_hierarchy
    assert len(h.pooling) == h.num_levels and len(h.full_to_level) == h.num_levels + 1
    assert np.array_equal(_dense(h.full_to_level[0]), np.eye(h.num_vertices))
    product = sp.identity(h.num_vertices, format="csr")
    ancestor = np.arange(h.num_vertices)
    for level, pool in enumerate(h.pooling):
        assert pool.shape == (h.levels[level].real_size, h.levels[level + 1].real_size)
        assert np.allclose(np.asarray(pool.sum(axis=0)).ravel(), 1.0)
        assert set(np.unique(pool.data).tolist()) <= {0.5, 1.0}
        product = product @ pool
        ancestor = h.parents[level][ancestor]
        full = h.full_to_level[level + 1]
        assert np.array_equal(_dense(full), _dense(product))
        assert np.allclose(np.asarray(full.sum(axis=0)).ravel(), 1.0)
        rows, cols = full.nonzero()
        assert np.array_equal(cols[np.argsort(rows)], ancestor)


# ------------------------------------------------------------------ numpy 1.24.4 reference reproduction

HEM_RECORD = np.load(DATA / HEM_FILE)
MESHES = recorded_meshes()


@pytest.mark.parametrize("name", sorted(MESHES))
def test_reproduces_numpy_124_reference_bit_for_bit(name):
    rec = HEM_RECORD
    assert str(rec["numpy_version"]) == "1.24.4"
    faces, num_vertices = MESHES[name]
    assert faces_digest(faces) == str(rec[f"{name}/faces_sha256"]), "mesh generator changed"
    h = build_mesh_hierarchy(faces, num_vertices, num_levels=int(rec["num_levels"]))
    assert [lv.real_size for lv in h.levels] == rec[f"{name}/real_sizes"].tolist()
    assert [lv.padded_size for lv in h.levels] == rec[f"{name}/padded_sizes"].tolist()
    assert np.array_equal(np.concatenate(h.parents), rec[f"{name}/parents"])
    coarse = [lv.perm for lv in h.levels if lv.padded_size <= FULL_PERM_MAX_SIZE]
    assert np.array_equal(np.concatenate(coarse), rec[f"{name}/coarse_perms"])
    perm_digests = [hashlib.sha256(lv.perm.astype(np.int64).tobytes()).hexdigest() for lv in h.levels]
    assert perm_digests == rec[f"{name}/perm_sha256"].tolist()
    weight_digests = []
    for lv in h.levels:
        coo = lv.weights.tocoo()
        weight_digests.append(weights_digest(coo.row, coo.col, coo.data, lv.padded_size))
    assert weight_digests == rec[f"{name}/weights_sha256"].tolist()


@pytest.mark.parametrize("faces_and_size", [
    (scrambled(grid_faces(9, 13)[0], duplicate_every=11), 9 * 13),
    icosphere_faces(2),
])
def test_matches_plain_reference_with_classic_argsort(faces_and_size):
    faces, num_vertices = faces_and_size
    graphs, parents = reference_hem(faces, num_vertices, 4, argsort=classic_argsort)
    orders = reference_tree_orders(parents)
    h = build_mesh_hierarchy(faces, num_vertices, num_levels=4)
    assert [p.tolist() for p in h.parents] == [list(p) for p in parents]
    for level, (weights, _), order in zip(h.levels, graphs, orders):
        assert level.perm.tolist() == order
        coo = level.weights.tocoo()
        assert weights_digest(coo.row, coo.col, coo.data, level.padded_size) == \
            weights_digest(*reference_permuted(weights, order), len(order))


# ------------------------------------------------------------------ cache

def _assert_same_hierarchy(a: MeshHierarchy, b: MeshHierarchy):
    assert (a.fingerprint, a.num_vertices, a.algorithm_version) == \
        (b.fingerprint, b.num_vertices, b.algorithm_version)
    assert len(a.levels) == len(b.levels)
    for x, y in zip(a.levels, b.levels):
        assert (x.index, x.real_size, x.padded_size, x.nnz) == (y.index, y.real_size, y.padded_size, y.nnz)
        assert x.perm.dtype == y.perm.dtype == np.int64 and np.array_equal(x.perm, y.perm)
        for part in ("indptr", "indices", "data"):
            u, v = getattr(x.weights, part), getattr(y.weights, part)
            assert u.dtype == v.dtype and np.array_equal(u, v)
        assert torch.equal(x.real_positions, y.real_positions)
    for u, v in zip(a.parents + a.pooling + a.full_to_level, b.parents + b.pooling + b.full_to_level):
        if sp.issparse(u):
            assert u.dtype == v.dtype and (u != v).nnz == 0
        else:
            assert u.dtype == v.dtype and np.array_equal(u, v)


def test_cache_round_trip_and_keying(tmp_path):
    faces, num_vertices = icosphere_faces(2)
    built = build_mesh_hierarchy(faces, num_vertices, num_levels=5, cache_dir=tmp_path,
                                 fingerprint="body/v1")
    path = cache_path(tmp_path, "body/v1", 5)
    assert path.is_file() and path.parent == tmp_path
    stamp = (path.stat().st_ino, path.stat().st_mtime_ns)
    loaded = build_mesh_hierarchy(faces, num_vertices, num_levels=5, cache_dir=tmp_path,
                                  fingerprint="body/v1")
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == stamp  # read, not rewritten
    _assert_same_hierarchy(built, loaded)
    _assert_same_hierarchy(built, build_mesh_hierarchy(faces, num_vertices, num_levels=5,
                                                       fingerprint="body/v1"))
    # Another level count is another cache entry.
    assert build_mesh_hierarchy(faces, num_vertices, num_levels=3, cache_dir=tmp_path,
                                fingerprint="body/v1").num_levels == 3
    assert cache_path(tmp_path, "body/v1", 3).is_file()
    # The same fingerprint on other faces cannot return the wrong graphs.
    other_faces, other_n = icosphere_faces(1)
    other = build_mesh_hierarchy(other_faces, other_n, num_levels=5, cache_dir=tmp_path,
                                 fingerprint="body/v1")
    assert other.num_vertices == other_n == 42
    # A damaged file is rebuilt with a warning.
    path.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="unreadable mesh-graph cache"):
        rebuilt = build_mesh_hierarchy(faces, num_vertices, num_levels=5, cache_dir=tmp_path,
                                       fingerprint="body/v1")
    _assert_same_hierarchy(built, rebuilt)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp.npz")]


# ------------------------------------------------------------------ level selection

def test_select_levels_default_closest_padded_sizes():
    faces, num_vertices = MESHES["torus50x70"]
    h = build_mesh_hierarchy(faces, num_vertices)
    fine, mid = select_levels(h)
    assert (fine.index, mid.index, fine.padded_size, mid.padded_size) == (6, 7, 96, 48)
    assert (fine.real_size, mid.real_size) == (74, 40)
    faces, num_vertices = MESHES["icosphere4"]
    fine, mid = select_levels(build_mesh_hierarchy(faces, num_vertices))
    assert (fine.padded_size, mid.padded_size) == (80, 40)


def test_select_levels_ties_explicit_and_errors():
    h = build_mesh_hierarchy(STRIP, 6, num_levels=2)  # padded 8, 4, 2
    fine, mid = select_levels(h, targets=(6, 3))  # both targets tie: the larger graph wins
    assert (fine.index, mid.index) == (0, 1)
    fine, mid = select_levels(h, explicit=[0, 2])
    assert (fine.padded_size, mid.padded_size) == (8, 2)
    for bad in ([2, 1], [0, 3], [1, 1], "ab", [0]):
        with pytest.raises(ValueError, match="MODEL.graph_levels"):
            select_levels(h, explicit=bad)
    tiny = build_mesh_hierarchy(TETRAHEDRON, 4, num_levels=2)  # padded 4, 2, 1
    with pytest.raises(ValueError, match="MODEL.graph_levels.*MODEL.num_coarsening_levels"):
        select_levels(tiny)


def test_too_many_levels_is_a_clear_error():
    faces, num_vertices = icosphere_faces(0)
    with pytest.raises(ValueError, match="MODEL.num_coarsening_levels to at most"):
        build_mesh_hierarchy(faces, num_vertices, num_levels=9)
    with pytest.raises(ValueError, match="MODEL.num_coarsening_levels must be >= 1"):
        build_mesh_hierarchy(faces, num_vertices, num_levels=0)


# ------------------------------------------------------------------ skeleton and SMPL

def test_skeleton_graph_g17_has_49_entries():
    adjacency = skeleton_adjacency(H36M17)
    assert adjacency.shape == (17, 17)
    assert int((adjacency != 0).sum()) == 49


def _smpl_faces():
    for path in sorted(SMPL_DIR.glob("*.pkl")) if SMPL_DIR.is_dir() else []:
        with open(path, "rb") as f:
            model = pickle.load(f, encoding="latin1")
        return np.asarray(model["f"], dtype=np.int64), int(np.asarray(model["v_template"]).shape[0])
    pytest.skip(f"no SMPL model (*.pkl) in {SMPL_DIR}")


def test_official_smpl_graphs_when_the_model_is_present():
    faces, num_vertices = _smpl_faces()
    h = build_mesh_hierarchy(faces, num_vertices)
    assert [lv.real_size for lv in h.levels] == [6890, 3679, 1946, 1040, 552, 294, 155, 83, 45, 24]
    fine, mid = select_levels(h)
    assert (fine.index, mid.index, fine.padded_size, mid.padded_size) == (7, 8, 96, 48)
    assert (fine.nnz, mid.nnz) == (487, 241)
    assert fine.fake_positions.tolist() == [3, 7, 11, 15, 19, 23, 27, 46, 47, 70, 71, 78, 79]
    assert mid.fake_positions.tolist() == [23, 35, 39]
    assert h.full_to_level[7].shape == (6890, 83) and h.pooling[7].shape == (83, 45)
