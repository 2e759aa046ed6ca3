"""Per-filter definitions of docs/method.md §3: a filter's peak, sparse filters, scaling."""

from __future__ import annotations

import numpy as np

SPARSE_DIVISOR = 100.0  # a filter is sparse if max|F| <= (the layer's reference) / 100

# The layer's reference of the sparse threshold (config analysis.sparse_reference, docs/method.md §3):
# max_abs, the largest |w| of the layer (the paper's text); max_row_sum, the largest row sum of |w|
# of the layer's (n, 9) matrix, np.linalg.norm(W, np.inf) (the authors' sparsity notebook).
# Each is a column of a filter store's layer table.
SPARSE_REFERENCES = ("max_abs", "max_row_sum")
DEFAULT_SPARSE_REFERENCE = "max_abs"


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


def row_abs_sums(rows: np.ndarray) -> np.ndarray:
    """sum |F| of each filter (row) of ``rows`` (n, 9), in float64, column by column (as row_peaks)."""
    sums = np.abs(rows[:, 0]).astype(np.float64)
    for column in range(1, rows.shape[1]):
        sums += np.abs(rows[:, column])
    return sums


def check_sparse_reference(reference: str) -> None:
    """Raise ValueError unless ``reference`` names a sparse reference."""
    if reference not in SPARSE_REFERENCES:
        raise ValueError(f"sparse reference {reference!r}: expected one of {', '.join(SPARSE_REFERENCES)} "
                         "(config analysis.sparse_reference)")


def layer_reference(rows: np.ndarray, reference: str) -> float:
    """The sparse reference of a layer whose filters are ``rows`` (n, 9), all of them: its largest
    |w| (``max_abs``) or its largest row sum of |w| (``max_row_sum``); 0 for no rows."""
    check_sparse_reference(reference)
    if not len(rows):
        return 0.0
    values = row_peaks(rows) if reference == "max_abs" else row_abs_sums(rows)
    return float(values.max())


def sparse_mask(rows: np.ndarray, reference: float, peaks: np.ndarray | None = None) -> np.ndarray:
    """True for the sparse filters among ``rows`` (n, 9) of a layer whose sparse reference
    (:func:`layer_reference`, by default its max |W|) is ``reference``."""
    return (row_peaks(rows) if peaks is None else peaks) <= reference / SPARSE_DIVISOR


def scale_filters(rows: np.ndarray, peaks: np.ndarray | None = None) -> np.ndarray:
    """F / max|F| in float64, in one pass over ``rows``; an all-zero filter stays as it is."""
    rows = np.asarray(rows)
    peaks = np.asarray(row_peaks(rows) if peaks is None else peaks, dtype=np.float64)
    return np.divide(rows, np.where(peaks == 0, 1.0, peaks)[:, None], dtype=np.float64)
