"""The compiled pass-1 kernel against the numpy definitions it implements for the streamed pass."""

import numpy as np
import pytest

from filterlens.method.filter_measures import filter_measure_sums
from filterlens.method.filters import row_peaks, scale_filters, sparse_mask
from filterlens.method.pca import Moments
from filterlens.reduce.piece_summary import summarize_piece


def _reference(rows: np.ndarray, layer_max_abs: float):
    peaks = row_peaks(rows)
    sparse = sparse_mask(rows, layer_max_abs, peaks)
    nonsparse = rows[~sparse].astype(np.float64)
    return (int(sparse.sum()), float(peaks.max(initial=0.0)), Moments.of(nonsparse),
            Moments.of(scale_filters(nonsparse, peaks[~sparse])), np.array(filter_measure_sums(nonsparse)))


def _rows(kind: str) -> np.ndarray:
    rng = np.random.default_rng(7)
    rows = rng.standard_normal((1000, 9)).astype(np.float32)
    if kind == "mixed":  # sparse filters, exact zeros, one filter at exactly the threshold
        rows[::7] *= 1e-4
        rows[::11] = 0
        rows[5] = 0
        rows[5, 3] = np.abs(rows).max() / 100
    elif kind == "all_zero":
        rows[:] = 0
    elif kind == "empty":
        rows = rows[:0]
    elif kind == "one":
        rows = rows[:1]
    return rows


@pytest.mark.parametrize("kind", ["gaussian", "mixed", "all_zero", "empty", "one"])
def test_kernel_agrees_with_the_numpy_definitions(kind):
    rows = _rows(kind)
    layer_max_abs = float(np.abs(rows).max(initial=0.0))
    got = summarize_piece(rows, layer_max_abs)
    n_sparse, peak, unscaled, scaled, measures = _reference(rows, layer_max_abs)
    assert (got.n_filters, got.n_sparse, got.peak) == (len(rows), n_sparse, peak)
    for mine, theirs in ((got.unscaled, unscaled), (got.scaled, scaled)):
        assert mine.n == theirs.n == len(rows) - n_sparse
        np.testing.assert_allclose(mine.total, theirs.total, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(mine.gram, theirs.gram, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(mine.gram, mine.gram.T)
    np.testing.assert_allclose(got.measure_sums, measures, rtol=1e-12, atol=1e-12)


def test_a_filter_at_the_threshold_is_sparse_and_the_next_float_up_is_not():
    rows = np.zeros((2, 9), np.float32)
    rows[0, 0] = 100.0  # the layer's max |W|: the threshold is exactly 1
    rows[1, 4] = -1.0
    assert summarize_piece(rows, 100.0).n_sparse == 1
    rows[1, 4] = -np.nextafter(np.float32(1), np.float32(2))
    assert summarize_piece(rows, 100.0).n_sparse == 0
