"""The plain way (the authors' approach): every filter in memory, scikit-learn PCA, numpy
histograms. It is the reference the streamed reductions are tested against
(tests/test_reductions_equivalence.py) and the in-memory side of the scale comparison
(tools/benchmark_in_memory.py); nothing in the workflow uses it.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from filterlens.metrics import N_COMPONENTS, SPARSE_DIVISOR


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


def fit_pca(scaled: np.ndarray) -> PCA:
    return PCA(n_components=N_COMPONENTS, svd_solver="full").fit(scaled)


def histograms(coefficients: np.ndarray, low: float, high: float, bins: int) -> np.ndarray:
    """Counts (9, bins) per component over [low, high], by np.histogram."""
    return np.stack([np.histogram(coefficients[:, c], bins, (low, high))[0] for c in range(coefficients.shape[1])])


def orthogonality(filterbanks: np.ndarray) -> float:
    """1 - sum|Wn Wn^T - I| / (c_out (c_out - 1)) of (c_out, width) filterbanks, the whole
    Gram at once in float64."""
    w = np.asarray(filterbanks, dtype=np.float64)
    c_out = len(w)
    norms = np.linalg.norm(w, axis=1)
    w = w / np.where(norms == 0, 1, norms)[:, None]
    return float(1 - np.abs(w @ w.T - np.eye(c_out)).sum() / (c_out * (c_out - 1)))
