"""Record numpy 1.24.4's own outputs as test vectors for the mesh-graph construction.

Why: HGN's official graphs are what its code produced under numpy <= 1.24. Our
``lib.graphs.classic_argsort`` and ``lib.graphs.coarsening`` must reproduce them under any
numpy, so the tests compare them with outputs recorded under numpy 1.24.4 itself:

* ``tests/data/numpy124_argsort.npz``: ``np.argsort`` (default kind, and kind='heapsort') of
  arrays full of ties: small integers, float32 degree-like values, sorted / reversed /
  all-equal inputs, sizes 1..40, 100, 1000, 7000, and quicksort-killer inputs (built with
  McIlroy's adversary) that push the introsort into its heapsort fallback.
* ``tests/data/hem_numpy124_reference.npz``: an independent, plain-loop reference of the
  original HEM coarsening (``reference_hem`` below, using ``np.argsort``) run on deterministic
  test meshes (icosphere, torus, UV sphere, open grid with flipped and duplicated faces):
  per-level real/padded sizes, cluster ids, tree orders and digests of the permuted weights.

numpy 1.24.4 has no SIMD argsort (the AVX-512 argsort arrived in 1.25), so every dtype here
(float32, float64, int64, int32, int16, uint8, bool) goes through the classic ``aquicksort``.

How to regenerate (from the repository root; numpy 1.24.4 installs on Python 3.11)::

    python3 -m venv /tmp/np124
    /tmp/np124/bin/pip install numpy==1.24.4 scipy
    /tmp/np124/bin/python tools/record_numpy124_vectors.py

The mesh generators are pure integer code, so the tests import them from here and check
the faces against the digests stored with the vectors. Needs numpy (and scipy) only.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATA_DIR = ROOT / "tests" / "data"
ARGSORT_FILE = "numpy124_argsort.npz"
HEM_FILE = "hem_numpy124_reference.npz"
RECORDING_NUMPY = "1.24.4"
HEM_LEVELS = 9
# Levels whose tree order is stored in full (all are stored as digests too).
FULL_PERM_MAX_SIZE = 1024


# ---------------------------------------------------------------------------------------
# Deterministic test meshes (topology only: integer code, identical on every machine)
# ---------------------------------------------------------------------------------------

def icosphere_faces(subdivisions: int) -> tuple:
    """Faces of an icosahedron whose triangles are split in four ``subdivisions`` times."""
    faces = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11),
             (1, 5, 9), (5, 11, 4), (11, 10, 2), (10, 7, 6), (7, 1, 8),
             (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9),
             (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    count = 12
    for _ in range(subdivisions):
        midpoint = {}

        def mid(a, b):
            nonlocal count
            key = (min(a, b), max(a, b))
            if key not in midpoint:
                midpoint[key] = count
                count += 1
            return midpoint[key]

        finer = []
        for a, b, c in faces:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            finer += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = finer
    return np.array(faces, dtype=np.int64), count


def torus_faces(rings: int, segments: int) -> tuple:
    """A closed torus grid: every vertex has degree 6 (maximal ties)."""
    faces = []
    for i in range(rings):
        for j in range(segments):
            a = i * segments + j
            b = i * segments + (j + 1) % segments
            c = ((i + 1) % rings) * segments + j
            d = ((i + 1) % rings) * segments + (j + 1) % segments
            faces += [(a, b, d), (a, d, c)]
    return np.array(faces, dtype=np.int64), rings * segments


def uv_sphere_faces(rings: int, segments: int) -> tuple:
    """A UV sphere: two poles of high degree, ``rings`` latitude rings of ``segments`` vertices."""
    north, south = 0, 1 + rings * segments

    def ring(i, j):
        return 1 + i * segments + j % segments

    faces = [(north, ring(0, j), ring(0, j + 1)) for j in range(segments)]
    for i in range(rings - 1):
        for j in range(segments):
            faces += [(ring(i, j), ring(i + 1, j), ring(i + 1, j + 1)),
                      (ring(i, j), ring(i + 1, j + 1), ring(i, j + 1))]
    faces += [(south, ring(rings - 1, j + 1), ring(rings - 1, j)) for j in range(segments)]
    return np.array(faces, dtype=np.int64), south + 1


def grid_faces(rows: int, cols: int) -> tuple:
    """An open grid (boundary vertices of degree 2..4), alternating diagonals."""
    faces = []
    for i in range(rows - 1):
        for j in range(cols - 1):
            a, b = i * cols + j, i * cols + j + 1
            c, d = a + cols, b + cols
            faces += [(a, b, d), (a, d, c)] if (i + j) % 2 == 0 else [(a, b, c), (b, d, c)]
    return np.array(faces, dtype=np.int64), rows * cols


def scrambled(faces: np.ndarray, duplicate_every: int = 0) -> np.ndarray:
    """Reorder faces, rotate / flip some of them and optionally repeat some faces.

    Flipped orientations change which directed pairs a face contributes and repeated faces
    give pairs seen three times (weight 2 in the original), so the level-0 rules are used.
    """
    faces = np.array(faces, dtype=np.int64)
    count = len(faces)
    step = 7919 % count or 1
    while np.gcd(step, count) != 1:
        step += 1
    faces = faces[(np.arange(count) * step) % count]
    k = np.arange(count)
    rotate = k % 3 == 1
    faces[rotate] = faces[rotate][:, [1, 2, 0]]
    flip = k % 5 == 2
    faces[flip] = faces[flip][:, [0, 2, 1]]
    if duplicate_every:
        faces = np.concatenate([faces, faces[::duplicate_every]])
    return faces


def recorded_meshes() -> dict:
    """name -> (faces, num_vertices) of the recorded meshes."""
    ico = icosphere_faces(4)
    grid = grid_faces(40, 50)
    return {
        "icosphere4": (scrambled(ico[0]), ico[1]),
        "torus50x70": torus_faces(50, 70),
        "uvsphere69x100": uv_sphere_faces(69, 100),
        "grid40x50_dup": (scrambled(grid[0], duplicate_every=97), grid[1]),
    }


def faces_digest(faces: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(faces, dtype=np.int64).tobytes()).hexdigest()


def weights_digest(rows, cols, values, size: int) -> str:
    """Digest of a sparse weight matrix given as (row, col, value) triples in any order."""
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    values = np.asarray(values, dtype=np.float32)
    order = np.lexsort((cols, rows))
    h = hashlib.sha256(np.int64(size).tobytes())
    for part in (rows[order], cols[order], values[order]):
        h.update(np.ascontiguousarray(part).tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------
# Plain-loop reference of the original HEM coarsening (independent of lib.graphs.coarsening)
# ---------------------------------------------------------------------------------------

def reference_mesh_weights(faces, num_vertices: int) -> dict:
    """{(r, c): weight}: directed face pairs counted, a repeat counted once less, then max(A, A^T)."""
    counts = {}
    for a, b, c in np.asarray(faces).tolist():
        for pair in ((a, b), (b, c), (a, c)):
            counts[pair] = counts.get(pair, 0) + 1
    directed = {pair: float(n - 1 if n > 1 else n) for pair, n in counts.items()}
    weights = {}
    for (r, c), w in directed.items():
        w_max = max(w, directed.get((c, r), 0.0))
        weights[(r, c)] = w_max
        weights[(c, r)] = w_max
    return {pair: np.float32(w) for pair, w in weights.items()}


def reference_one_level(weights: dict, size: int, degree: np.ndarray, argsort) -> list:
    """One greedy matching pass, written as the original's loops behave under numpy 1.x."""
    entries = sorted(weights.items())  # by row, then column
    rows = [rc[0] for rc, _ in entries]
    cols = [rc[1] for rc, _ in entries]
    vals = [w for _, w in entries]
    # The original's row bookkeeping: each entry is counted into the current row *before*
    # the row change is noticed, so a row's count includes the next row's first entry.
    row_start = [0] * size
    row_count = [0] * size
    current, previous_row = 0, rows[0]
    for position, r in enumerate(rows):
        row_count[current] += 1
        if r > previous_row:
            previous_row = r
            row_start[current + 1] = position
            current += 1
    column_sums = np.zeros(size, dtype=np.float32)
    for (r, c), w in weights.items():
        column_sums[c] += w
    order = argsort(column_sums)
    marked = [False] * size
    cluster = [0] * size
    clusters = 0
    for vertex in [int(v) for v in order]:
        if marked[vertex]:
            continue
        marked[vertex] = True
        best, best_score = -1, 0.0
        first = row_start[vertex]
        for position in range(first, first + row_count[vertex]):
            other = cols[position]
            if marked[other]:
                score = 0.0
            else:
                numerator = 2.0 * float(vals[position]) + float(vals[first]) \
                    + float(vals[row_start[other]])
                denominator = float(np.float32(degree[vertex]) + np.float32(degree[other])) + 1e-9
                score = numerator * 1.0 / denominator
            if score > best_score:
                best, best_score = other, score
        cluster[vertex] = clusters
        if best > -1:
            cluster[best] = clusters
            marked[best] = True
        clusters += 1
    return cluster


def reference_hem(faces, num_vertices: int, num_levels: int = HEM_LEVELS,
                  argsort=np.argsort) -> tuple:
    """(graphs as {(r, c): weight} dicts with sizes, parents) of the original HEM."""
    weights = reference_mesh_weights(faces, num_vertices)
    size = num_vertices
    degree = np.zeros(size, dtype=np.float32)
    for (r, c), w in weights.items():
        if r != c:
            degree[c] += w
    graphs, parents = [(weights, size)], []
    for _ in range(num_levels):
        cluster = reference_one_level(weights, size, degree, argsort)
        merged = {}
        for (r, c), w in weights.items():
            key = (cluster[r], cluster[c])
            merged[key] = np.float32(merged.get(key, np.float32(0)) + w)
        weights, size = merged, max(cluster) + 1
        degree = np.zeros(size, dtype=np.float32)
        for (r, c), w in weights.items():
            degree[c] += w
        graphs.append((weights, size))
        parents.append(cluster)
    return graphs, parents


def reference_tree_orders(parents: list) -> list:
    """Binary-tree order of every level, finest first (position -> node id, fakes >= real)."""
    orders = [list(range(max(parents[-1]) + 1))]
    for parent in reversed(parents):
        next_fake = len(parent)
        children = {}
        for child, p in enumerate(parent):
            children.setdefault(p, []).append(child)
        order = []
        for node in orders[-1]:
            kids = list(children.get(node, []))
            while len(kids) < 2:
                kids.append(next_fake)
                next_fake += 1
            order += kids
        orders.append(order)
    return orders[::-1]


def reference_permuted(weights: dict, order: list) -> tuple:
    """(rows, cols, values) of the weights with node order[p] moved to position p."""
    position = {node: p for p, node in enumerate(order)}
    rows = [position[r] for r, _ in weights]
    cols = [position[c] for _, c in weights]
    return rows, cols, [weights[key] for key in weights]


# ---------------------------------------------------------------------------------------
# Recording
# ---------------------------------------------------------------------------------------

def killer_values(n: int) -> np.ndarray:
    """McIlroy's adversary against the classic introsort: a permutation that degenerates it."""
    from lib.graphs.classic_argsort import argsort_keys

    gas = n
    value = [gas] * n
    state = {"solid": 0, "candidate": None}

    def freeze(item):
        value[item] = state["solid"]
        state["solid"] += 1

    class Adversary:
        __slots__ = ("item",)

        def __init__(self, item):
            self.item = item

        def __lt__(self, other):
            x, y = self.item, other.item
            if value[x] == gas and value[y] == gas:
                freeze(x if x == state["candidate"] else y)
            if value[x] == gas:
                state["candidate"] = x
            elif value[y] == gas:
                state["candidate"] = y
            return value[x] < value[y]

    argsort_keys([Adversary(i) for i in range(n)])
    for item in range(n):
        if value[item] == gas:
            freeze(item)
    return np.array(value, dtype=np.int64)


def argsort_cases(rng: np.random.Generator) -> list:
    """(name, array) pairs with heavy ties in every dtype the graphs or the tests use."""
    cases = []
    for n in list(range(1, 41)) + [100, 1000]:
        for high in (2, 3, 8):
            cases.append((f"int{high}_n{n}", rng.integers(0, high, n).astype(np.int64)))
        cases.append((f"deg32_n{n}", rng.integers(3, 9, n).astype(np.float32)))
    for n in (100, 1000, 7000):
        degree = rng.choice([3, 4, 5, 6, 6, 6, 6, 7, 8, 9], size=n).astype(np.float32)
        cases.append((f"mesh_degree32_n{n}", degree))
        cases.append((f"coarse_degree32_n{n}", (rng.integers(4, 40, n) * 0.5).astype(np.float32)))
        cases.append((f"sorted_ties_n{n}", np.sort(rng.integers(0, 9, n)).astype(np.float32)))
        cases.append((f"all_equal_n{n}", np.full(n, 6.0, dtype=np.float32)))
    for n in (100, 1000):
        cases.append((f"reversed_ties_n{n}", np.sort(rng.integers(0, 9, n))[::-1].astype(np.int64)))
        cases.append((f"random64_n{n}", np.round(rng.normal(size=n), 1)))
    cases.append(("int32_n500", rng.integers(-3, 3, 500).astype(np.int32)))
    cases.append(("int16_n500", rng.integers(0, 4, 500).astype(np.int16)))
    cases.append(("uint8_n500", rng.integers(0, 3, 500).astype(np.uint8)))
    cases.append(("bool_n300", rng.integers(0, 2, 300).astype(bool)))
    signed_zero = rng.choice([-0.0, 0.0, 1.0, np.nan, -np.inf], size=200)
    cases.append(("nan_zero64_n200", signed_zero))
    for n in (100, 300, 1000):
        killer = killer_values(n)
        cases.append((f"killer_n{n}", killer))
        cases.append((f"killer_pairs_n{n}", killer // 2))
    return cases


def uses_heapsort_vectors(name: str, size: int) -> bool:
    """Cases whose kind='heapsort' order is recorded too (the introsort's fallback alone)."""
    return size <= 1000 and name.startswith(("int3_", "deg32_", "killer", "all_equal",
                                             "coarse_degree32"))


def record_argsort(path: Path, seed: int = 124) -> None:
    """All cases packed into a few arrays: names, dtypes, lengths, values per dtype, outputs."""
    from lib.graphs.classic_argsort import argsort_keys

    rng = np.random.default_rng(seed)
    cases = argsort_cases(rng)
    values_by_dtype, quick, heap = {}, [], []
    for name, values in cases:
        values_by_dtype.setdefault(values.dtype.str, []).append(values)
        quick.append(np.argsort(values).astype(np.int16))
        if uses_heapsort_vectors(name, values.size):
            heap.append(np.argsort(values, kind="heapsort").astype(np.int16))
        if name.startswith("killer"):
            hits = []
            argsort_keys(values.tolist(), heapsorted=hits)
            assert hits, f"{name} does not reach the heapsort fallback"
    arrays = {
        "numpy_version": np.array(np.__version__),
        "names": np.array([name for name, _ in cases]),
        "dtypes": np.array([values.dtype.str for _, values in cases]),
        "lengths": np.array([values.size for _, values in cases], dtype=np.int64),
        "argsort": np.concatenate(quick),
        "heapsort": np.concatenate(heap),
    }
    for dtype, parts in values_by_dtype.items():
        arrays[f"values_{dtype}"] = np.concatenate(parts)
    np.savez_compressed(path, **arrays)


def record_hem(path: Path, num_levels: int = HEM_LEVELS) -> None:
    """Per mesh: sizes, all cluster ids (concatenated), coarse tree orders, digests of the rest."""
    arrays = {"numpy_version": np.array(np.__version__), "num_levels": np.int64(num_levels)}
    for name, (faces, num_vertices) in recorded_meshes().items():
        graphs, parents = reference_hem(faces, num_vertices, num_levels)
        orders = reference_tree_orders(parents)
        padded = [len(order) for order in orders]
        weight_digests, perm_digests = [], []
        for (weights, size), order in zip(graphs, orders):
            rows, cols, values = reference_permuted(weights, order)
            weight_digests.append(weights_digest(rows, cols, values, len(order)))
            perm_digests.append(hashlib.sha256(np.array(order, dtype=np.int64).tobytes()).hexdigest())
        arrays[f"{name}/faces_sha256"] = np.array(faces_digest(faces))
        arrays[f"{name}/num_vertices"] = np.int64(num_vertices)
        arrays[f"{name}/real_sizes"] = np.array([size for _, size in graphs], dtype=np.int64)
        arrays[f"{name}/padded_sizes"] = np.array(padded, dtype=np.int64)
        arrays[f"{name}/parents"] = np.concatenate(parents).astype(np.int16)
        arrays[f"{name}/coarse_perms"] = np.concatenate(
            [order for order in orders if len(order) <= FULL_PERM_MAX_SIZE]).astype(np.int16)
        arrays[f"{name}/perm_sha256"] = np.array(perm_digests)
        arrays[f"{name}/weights_sha256"] = np.array(weight_digests)
        print(f"{name}: real {arrays[f'{name}/real_sizes'].tolist()} padded {padded}")
    np.savez_compressed(path, **arrays)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DATA_DIR)
    parser.add_argument("--allow-other-numpy", action="store_true",
                        help="record with this numpy anyway (the vectors are then not numpy 1.24.4's)")
    args = parser.parse_args(argv)
    if np.__version__ != RECORDING_NUMPY and not args.allow_other_numpy:
        raise SystemExit(f"numpy {np.__version__} is running; the vectors must come from numpy "
                         f"{RECORDING_NUMPY}. Create the venv as the module docstring says.")
    args.out.mkdir(parents=True, exist_ok=True)
    record_argsort(args.out / ARGSORT_FILE)
    record_hem(args.out / HEM_FILE)
    for name in (ARGSORT_FILE, HEM_FILE):
        print(f"wrote {args.out / name} ({(args.out / name).stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
