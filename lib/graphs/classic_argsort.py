"""numpy's pre-1.25 default ``argsort`` order, written out so it no longer depends on numpy.

Why: HGN's mesh graphs visit vertices in ``np.argsort`` order of heavily tied degrees. numpy
1.25 replaced the classic introsort (``aquicksort``) by SIMD sorts on some CPUs, and tied
values then come out in another order, which changes the graphs. This module reproduces the
classic order element for element (docs/hgn.md) on any numpy and any CPU:

* quicksort on an index array while a partition [l, r] has r - l > 15: median of three
  (l/m, m/r, l/m swaps with m = l + (r - l) // 2), pivot v[m] parked at r - 1, Hoare scan
  that stops on equal keys, pivot put back, the larger side pushed on a stack with the
  decremented depth budget and the smaller side continued;
* the depth budget starts at 2 * floor(log2 n) and is only checked when a partition is
  (re)entered: a partition whose budget is negative is heap-sorted;
* partitions of at most 16 elements are finished by insertion sort (shift while strictly less).

Only the relative order of the values matters, so values are first replaced by their dense
ranks (equal values share a rank; NaNs are equal to each other and larger than everything,
as numpy's float comparison has it). The sorts then compare small Python ints, which keeps the
pure-Python loops fast (~10 ms for 7000 values).
"""
from __future__ import annotations

import numpy as np

# numpy's SMALL_QUICKSORT: a partition is split while r - l exceeds this.
SMALL_QUICKSORT = 15


def _dense_ranks(values: np.ndarray) -> list:
    """Replace values by ranks that compare exactly as numpy's ``less`` compares the values."""
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"classic_argsort sorts 1-D arrays, got shape {values.shape}")
    if values.dtype.kind not in "biuf":
        raise TypeError(f"classic_argsort supports bool, integer and real float arrays, "
                        f"got dtype {values.dtype}")
    if values.size == 0:
        return []
    # np.unique merges equal values (-0.0 == 0.0) and all NaNs, and puts NaN last.
    _, ranks = np.unique(values, return_inverse=True)
    return ranks.reshape(-1).tolist()


def _heapsort_range(keys, idx, lo: int, hi: int) -> None:
    """numpy's ``aheapsort`` on idx[lo..hi] (inclusive), comparing keys[idx[.]]."""
    n = hi - lo + 1
    off = lo - 1  # heap position k (1-based) lives at idx[off + k]
    # Build the max-heap, sifting down from the last parent to the root.
    for start in range(n >> 1, 0, -1):
        item = idx[off + start]
        key = keys[item]
        i, j = start, start << 1
        while j <= n:
            if j < n and keys[idx[off + j]] < keys[idx[off + j + 1]]:
                j += 1
            if key < keys[idx[off + j]]:
                idx[off + i] = idx[off + j]
                i, j = j, j << 1
            else:
                break
        idx[off + i] = item
    # Move the maximum to the end, shrink the heap, sift the displaced item down.
    while n > 1:
        item = idx[off + n]
        key = keys[item]
        idx[off + n] = idx[off + 1]
        n -= 1
        i, j = 1, 2
        while j <= n:
            if j < n and keys[idx[off + j]] < keys[idx[off + j + 1]]:
                j += 1
            if key < keys[idx[off + j]]:
                idx[off + i] = idx[off + j]
                i, j = j, j << 1
            else:
                break
        idx[off + i] = item


def argsort_keys(keys, heapsorted: list | None = None) -> list:
    """Classic introsort argsort of a list of mutually comparable keys (uses only ``<``).

    ``heapsorted``, when given, receives an (l, r) pair for every partition that fell back to
    heapsort (used by the tests and the vector recorder to check that path is exercised).
    """
    n = len(keys)
    idx = list(range(n))
    if n < 2:
        return idx
    stack = []
    lo, hi = 0, n - 1
    depth = 2 * (n.bit_length() - 1)  # 2 * floor(log2 n)
    while True:
        if depth < 0:
            _heapsort_range(keys, idx, lo, hi)
            if heapsorted is not None:
                heapsorted.append((lo, hi))
        else:
            while hi - lo > SMALL_QUICKSORT:
                mid = lo + ((hi - lo) >> 1)
                # Median of three: afterwards keys[idx[lo]] <= keys[idx[mid]] <= keys[idx[hi]].
                if keys[idx[mid]] < keys[idx[lo]]:
                    idx[mid], idx[lo] = idx[lo], idx[mid]
                if keys[idx[hi]] < keys[idx[mid]]:
                    idx[hi], idx[mid] = idx[mid], idx[hi]
                if keys[idx[mid]] < keys[idx[lo]]:
                    idx[mid], idx[lo] = idx[lo], idx[mid]
                pivot = keys[idx[mid]]
                i, j = lo, hi - 1
                idx[mid], idx[j] = idx[j], idx[mid]
                while True:
                    i += 1
                    while keys[idx[i]] < pivot:
                        i += 1
                    j -= 1
                    while pivot < keys[idx[j]]:
                        j -= 1
                    if i >= j:
                        break
                    idx[i], idx[j] = idx[j], idx[i]
                idx[i], idx[hi - 1] = idx[hi - 1], idx[i]
                depth -= 1
                # Push the larger side, keep splitting the smaller one.
                if i - lo < hi - i:
                    stack.append((i + 1, hi, depth))
                    hi = i - 1
                else:
                    stack.append((lo, i - 1, depth))
                    lo = i + 1
            for i in range(lo + 1, hi + 1):
                item = idx[i]
                key = keys[item]
                j = i
                while j > lo and key < keys[idx[j - 1]]:
                    idx[j] = idx[j - 1]
                    j -= 1
                idx[j] = item
        if not stack:
            return idx
        lo, hi, depth = stack.pop()


def classic_argsort(values: np.ndarray) -> np.ndarray:
    """``np.argsort(values)`` exactly as numpy < 1.25 returned it (default kind), as int64."""
    return np.asarray(argsort_keys(_dense_ranks(values)), dtype=np.int64)


def classic_heapsort_argsort(values: np.ndarray) -> np.ndarray:
    """``np.argsort(values, kind='heapsort')`` of numpy < 1.25: the introsort's fallback alone."""
    keys = _dense_ranks(values)
    idx = list(range(len(keys)))
    if len(keys) > 1:
        _heapsort_range(keys, idx, 0, len(keys) - 1)
    return np.asarray(idx, dtype=np.int64)
