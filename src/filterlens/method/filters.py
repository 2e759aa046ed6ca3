"""Per-filter definitions of docs/method.md §3: a filter's peak, sparse filters, scaling."""

from __future__ import annotations

import numpy as np

SPARSE_DIVISOR = 100.0  # a filter is sparse if max|F| <= max|W_layer| / 100


# --- §3 per-filter definitions -------------------------------------------------------------

def row_peaks(rows: np.ndarray) -> np.ndarray:
    """max |F| of each filter (row) of ``rows`` (n, 9).

    Column by column: numpy's reduction along a short last axis is several times slower.
    """
    magnitude = np.abs(rows)
    peaks = magnitude[:, 0].copy()
    for column in range(1, magnitude.shape[1]):
        np.maximum(peaks, magnitude[:, column], out=peaks)
    return peaks


def sparse_mask(rows: np.ndarray, layer_max_abs: float, peaks: np.ndarray | None = None) -> np.ndarray:
    """True for the sparse filters among ``rows`` (n, 9) of a layer with max |W| ``layer_max_abs``."""
    return (row_peaks(rows) if peaks is None else peaks) <= layer_max_abs / SPARSE_DIVISOR


def scale_filters(rows: np.ndarray, peaks: np.ndarray | None = None) -> np.ndarray:
    """F / max|F| in float64, in one pass over ``rows``; an all-zero filter stays as it is."""
    rows = np.asarray(rows)
    peaks = np.asarray(row_peaks(rows) if peaks is None else peaks, dtype=np.float64)
    return np.divide(rows, np.where(peaks == 0, 1.0, peaks)[:, None], dtype=np.float64)
