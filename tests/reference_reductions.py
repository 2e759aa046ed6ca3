"""The plain way (the authors' approach): every filter in memory, scikit-learn PCA, numpy
histograms. It is the reference the streamed reductions are tested against
(tests/unit/test_reductions_equivalence.py) and the in-memory side of the scale comparison
(dev/perf/benchmark_in_memory.py, dev/perf/orthogonality_precision.py); nothing in the workflow uses it.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from filterlens.method.distributions import EMPTY_BIN
from filterlens.method.filters import SPARSE_DIVISOR
from filterlens.method.pca import N_COMPONENTS


def split_layer(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A layer's (n, 9) filters: the sparse mask and the non-sparse filters scaled by their peaks."""
    peak = np.abs(rows).max(axis=1)
    sparse = peak <= np.abs(rows).max() / SPARSE_DIVISOR
    nonsparse = rows[~sparse].astype(np.float64)
    return sparse, nonsparse / np.abs(nonsparse).max(axis=1, keepdims=True)


def scaled_filters(layers: list[np.ndarray]) -> np.ndarray:
    """The scaled non-sparse filters of a model given as its layers' rows."""
    parts = [split_layer(rows)[1] for rows in layers if len(rows)]
    return np.concatenate(parts) if parts else np.zeros((0, N_COMPONENTS))


def all_scaled_filters(layers: list[np.ndarray]) -> np.ndarray:
    """Every filter of a model (sparse ones included) divided by its own max |F| (an all-zero
    filter stays zero): the set the coefficient range runs over."""
    parts = [np.asarray(rows, dtype=np.float64) for rows in layers if len(rows)]
    if not parts:
        return np.zeros((0, N_COMPONENTS))
    x = np.concatenate(parts)
    peak = np.linalg.norm(x, np.inf, axis=1)
    return x / np.where(peak == 0, 1, peak)[:, None]


def fit_pca(scaled: np.ndarray) -> PCA:
    return PCA(n_components=N_COMPONENTS, svd_solver="full").fit(scaled)


def histograms(coefficients: np.ndarray, low: float, high: float, bins: int) -> np.ndarray:
    """Counts (9, bins) per component over [low, high], by np.histogram."""
    return np.stack([np.histogram(coefficients[:, c], bins, (low, high))[0] for c in range(coefficients.shape[1])])


def distributions(coefficients: np.ndarray, low: float, high: float, bins: int) -> np.ndarray:
    """Per column of ``coefficients`` (n, 9), the distribution the KL compares (9, bins), the
    authors' way: ``np.histogram(..., density=True)``, bins of density 0 set to float32 eps,
    then divided by the sum."""
    out = []
    for c in range(coefficients.shape[1]):
        v = np.histogram(coefficients[:, c], bins, (low, high), density=True)[0].astype(np.float64)
        v[v == 0] = EMPTY_BIN
        out.append(v / v.sum())
    return np.stack(out)


def orthogonality(filterbanks: np.ndarray) -> float:
    """1 - sum|Wn Wn^T - I| / (c_out (c_out - 1)) of (c_out, width) filterbanks, the whole
    Gram at once in float64."""
    w = np.asarray(filterbanks, dtype=np.float64)
    c_out = len(w)
    norms = np.linalg.norm(w, axis=1)
    w = w / np.where(norms == 0, 1, norms)[:, None]
    return float(1 - np.abs(w @ w.T - np.eye(c_out)).sum() / (c_out * (c_out - 1)))
