"""Pass 1's statistics of one piece (rows of one layer) in one compiled pass over its rows.

The same definitions as the numpy functions of :mod:`filterlens.metrics` and
:mod:`filterlens.filter_measures` (row_peaks, sparse_mask, scale_filters, Moments.of,
filter_measure_sums), which stay the reference the tests compare with. Written as those,
a piece took about ten passes over float64 temporaries and held the GIL between the numpy
calls, so a second Dask thread gained little (measured on this project's 2-core machine:
81-120 ns per filter on one thread, 70-81 on two); this kernel reads each float32 row once,
releases the GIL and takes 54-60 ns per filter on one thread, 26-33 on two.

Every filter is summed in row order, in float64, by one thread: the results are the same
bits whatever the segmenting or the number of threads. The scaled filter is divided by its
peak (as scale_filters does), so passes 2 and 3 see the same scaled values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from filterlens.metrics import N_COMPONENTS, SPARSE_DIVISOR, Moments


@dataclass
class PieceSummary:
    n_filters: int
    n_sparse: int
    peak: float  # max |W| over the piece (0 for an empty piece)
    unscaled: Moments  # of the non-sparse filters
    scaled: Moments  # of the non-sparse filters divided by their peaks
    measure_sums: np.ndarray  # sums over the non-sparse filters of the L1/L2 ratio and high-frequency share


def summarize_piece(rows: np.ndarray, layer_max_abs: float) -> PieceSummary:
    """Statistics of ``rows`` (n, 9), filters of a layer whose max |W| is ``layer_max_abs``."""
    rows = np.ascontiguousarray(rows)
    sums = np.zeros((2, N_COMPONENTS))  # unscaled, scaled
    grams = np.zeros((2, N_COMPONENTS, N_COMPONENTS))  # upper triangles, mirrored below
    measure_sums = np.zeros(2)
    n_sparse, peak = _summarize_rows(rows, layer_max_abs / SPARSE_DIVISOR, sums, grams, measure_sums)
    upper = np.triu(grams, 1)
    grams += upper.transpose(0, 2, 1)
    n_nonsparse = len(rows) - n_sparse
    return PieceSummary(len(rows), n_sparse, peak, Moments(n_nonsparse, sums[0], grams[0]),
                        Moments(n_nonsparse, sums[1], grams[1]), measure_sums)


@numba.njit(nogil=True, cache=True)
def _summarize_rows(rows, sparse_at_most, sums, grams, measure_sums):  # pragma: no cover (compiled)
    """Adds the non-sparse rows' sums and Gram upper triangles (unscaled in [0], scaled in
    [1]) and their L1/L2 ratios and high-frequency shares; returns the sparse count and the
    largest peak. A filter is sparse when its peak is at most ``sparse_at_most``."""
    d = rows.shape[1]
    v = np.empty(d)
    s = np.empty(d)
    n_sparse = 0
    top = 0.0
    for i in range(rows.shape[0]):
        peak = 0.0
        for j in range(d):
            a = abs(np.float64(rows[i, j]))
            if a > peak:
                peak = a
        if peak > top:
            top = peak
        if peak <= sparse_at_most:
            n_sparse += 1
            continue
        l1 = 0.0
        l2_squared = 0.0
        total = 0.0
        for j in range(d):
            v[j] = np.float64(rows[i, j])
            s[j] = v[j] / peak
            l1 += abs(v[j])
            l2_squared += v[j] * v[j]
            total += v[j]
        measure_sums[0] += (l1 * l1 / l2_squared - 1.0) / (d - 1)
        measure_sums[1] += 1.0 - total * total / (d * l2_squared)
        for j in range(d):
            sums[0, j] += v[j]
            sums[1, j] += s[j]
            for k in range(j, d):
                grams[0, j, k] += v[j] * v[k]
                grams[1, j, k] += s[j] * s[k]
    return n_sparse, top
