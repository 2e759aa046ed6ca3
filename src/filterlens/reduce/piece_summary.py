"""Pass 1's statistics of one piece (rows of one layer) in one compiled pass over its rows.

The same definitions as the numpy functions of :mod:`filterlens.method` and
:mod:`filterlens.method.filter_measures` (row_peaks, sparse_mask, scale_filters, Moments.of,
filter_measure_sums), which stay the reference the tests compare with. Through those, a
piece takes about ten passes over float64 temporaries and holds the GIL between the numpy
calls, so a second thread gains little; this kernel reads each float32 row once and
releases the GIL (per-filter costs of both: docs/benchmarks.md).

Every piece is summed in float64, by one thread, in blocks that start at the piece's start:
the results are the same bits whatever the segmenting or the number of threads. The scaled
filter is divided by its peak (as scale_filters does), so passes 2 and 3 see the same scaled
values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from filterlens.method.filters import SPARSE_DIVISOR
from filterlens.method.pca import N_COMPONENTS, Moments


@dataclass
class PieceSummary:
    n_filters: int
    n_sparse: int
    peak: float  # max |W| over the piece (0 for an empty piece)
    unscaled: Moments  # of the non-sparse filters
    scaled: Moments  # of the non-sparse filters divided by their peaks
    measure_sums: np.ndarray  # sums over the non-sparse filters of the L1/L2 ratio and high-frequency share


def summarize_piece(rows: np.ndarray, layer_reference: float) -> PieceSummary:
    """Statistics of ``rows`` (n, 9), filters of a layer whose sparse reference
    (:func:`filterlens.method.filters.layer_reference`: max |W| by default) is ``layer_reference``."""
    rows = np.ascontiguousarray(rows)
    sums = np.zeros((2, N_COMPONENTS))  # unscaled, scaled
    grams = np.zeros((2, N_COMPONENTS, N_COMPONENTS))  # upper triangles, mirrored below
    measure_sums = np.zeros(2)
    n_sparse, peak = _summarize_rows(rows, layer_reference / SPARSE_DIVISOR, sums, grams, measure_sums)
    upper = np.triu(grams, 1)
    grams += upper.transpose(0, 2, 1)
    n_nonsparse = len(rows) - n_sparse
    return PieceSummary(len(rows), n_sparse, peak, Moments(n_nonsparse, sums[0], grams[0]),
                        Moments(n_nonsparse, sums[1], grams[1]), measure_sums)


# Rows per block: the block's non-sparse rows, unscaled and scaled, one component per row of
# two (9, BLOCK_ROWS) float64 buffers (36 KiB), stay in the L1 cache while their moments are taken.
BLOCK_ROWS = 256


# fastmath: reassociation lets the sums along a block vectorise (their order is then fixed by
# the compiled code, the same for every run); no other fast-math flag, so NaN and Inf keep
# their meaning.
@numba.njit(nogil=True, cache=True, fastmath={"reassoc", "contract"})
def _summarize_rows(rows, sparse_at_most, sums, grams, measure_sums):  # pragma: no cover (compiled)
    """Adds the non-sparse rows' sums and Gram upper triangles (unscaled in [0], scaled in
    [1]) and their L1/L2 ratios and high-frequency shares; returns the sparse count and the
    largest peak. A filter is sparse when its peak is at most ``sparse_at_most``.

    Row by row, a block's non-sparse filters are found and written one component per buffer
    row; then the block's sums and Gram entries are sums along those buffer rows, which
    vectorise (row by row, the 90 Gram entries would be scalar updates)."""
    d = N_COMPONENTS
    v = np.empty(d)
    unscaled = np.empty((d, BLOCK_ROWS))
    scaled = np.empty((d, BLOCK_ROWS))
    n_sparse = 0
    top = 0.0
    for block_start in range(0, rows.shape[0], BLOCK_ROWS):
        m = 0  # non-sparse rows of this block so far
        for i in range(block_start, min(rows.shape[0], block_start + BLOCK_ROWS)):
            peak = 0.0
            for j in range(d):
                v[j] = np.float64(rows[i, j])
                if abs(v[j]) > peak:
                    peak = abs(v[j])
            if peak > top:
                top = peak
            if peak <= sparse_at_most:
                n_sparse += 1
                continue
            l1 = 0.0
            l2_squared = 0.0
            total = 0.0
            for j in range(d):
                unscaled[j, m] = v[j]
                scaled[j, m] = v[j] / peak
                l1 += abs(v[j])
                l2_squared += v[j] * v[j]
                total += v[j]
            measure_sums[0] += (l1 * l1 / l2_squared - 1.0) / (d - 1)
            measure_sums[1] += 1.0 - total * total / (d * l2_squared)
            m += 1
        for j in range(d):
            u_j, s_j = unscaled[j, :m], scaled[j, :m]
            sum_u = sum_s = 0.0
            for r in range(m):
                sum_u += u_j[r]
                sum_s += s_j[r]
            sums[0, j] += sum_u
            sums[1, j] += sum_s
            for k in range(j, d):
                u_k, s_k = unscaled[k, :m], scaled[k, :m]
                gram_u = gram_s = 0.0
                for r in range(m):
                    gram_u += u_j[r] * u_k[r]
                    gram_s += s_j[r] * s_k[r]
                grams[0, j, k] += gram_u
                grams[1, j, k] += gram_s
    return n_sparse, top
