"""PCA of 3x3 filters from mergeable moments, and the variance entropy (docs/method.md §3-§4).

Moments (count, sum, 9x9 Gram, float64) of any set of filters are sums of the moments of its
parts, so the streaming passes compute them per piece and the analyses merge them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

N_COMPONENTS = 9


# --- §4 PCA from sufficient statistics -----------------------------------------------------

@dataclass
class Moments:
    """Count, sum and 9x9 Gram (float64) of a set of filters: additive over any split."""

    n: int = 0
    total: np.ndarray = field(default_factory=lambda: np.zeros(N_COMPONENTS))
    gram: np.ndarray = field(default_factory=lambda: np.zeros((N_COMPONENTS, N_COMPONENTS)))

    @classmethod
    def of(cls, rows: np.ndarray) -> "Moments":
        rows = np.asarray(rows, dtype=np.float64)
        # Column sums as a matrix-vector product: several times faster than sum(axis=0)
        # on (n, 9) rows, and as deterministic (one BLAS thread per task).
        return cls(len(rows), np.ones(len(rows)) @ rows, rows.T @ rows)

    def __add__(self, other: "Moments") -> "Moments":
        return Moments(self.n + other.n, self.total + other.total, self.gram + other.gram)

    @classmethod
    def sum(cls, parts) -> "Moments":
        result = cls()
        for part in parts:
            result = result + part
        return result


@dataclass(frozen=True)
class Basis:
    """A PCA basis: mean (9,), components (9, 9) as rows, explained variance and its ratio."""

    n: int
    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray
    ratio: np.ndarray

    def project(self, rows: np.ndarray) -> np.ndarray:
        """Coefficients of (centred) ``rows`` (n, 9) on the components, float64, one component
        per row: (9, n), so that each component's values are contiguous."""
        return self.components @ (np.asarray(rows, dtype=np.float64) - self.mean).T

    def project_scaled(self, rows: np.ndarray, peaks: np.ndarray) -> np.ndarray:
        """:meth:`project` of ``rows / peaks`` (filters scaled by their peaks; a zero peak leaves
        its row as it is), (9, n), without making the scaled rows: the projection is linear,
        C (x / p - mean) = (C x) / p - C mean, so each coefficient is divided instead of each
        filter value, and the float32 rows go to the product as they are (numpy converts them
        in its buffers). About half the time of the two steps; equal to them to rounding
        (a few 1e-16)."""
        peaks = np.asarray(peaks, dtype=np.float64)
        coefficients = self.components @ np.asarray(rows).T
        coefficients /= np.where(peaks == 0, 1.0, peaks)
        coefficients -= (self.components @ self.mean)[:, None]
        return coefficients


def fix_signs(components: np.ndarray) -> np.ndarray:
    """Make each component's entry of largest magnitude positive (as scikit-learn's PCA does)."""
    largest = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(len(components)), largest])
    return components * np.where(signs == 0, 1.0, signs)[:, None]


def pca(moments: Moments) -> Basis:
    """PCA of the filters behind ``moments``: the eigen-decomposition of their covariance (n - 1).

    With fewer than two filters the covariance is undefined and everything but the mean is NaN.
    """
    n = moments.n
    mean = moments.total / n if n else np.full(N_COMPONENTS, np.nan)
    if n < 2:
        nan = np.full(N_COMPONENTS, np.nan)
        return Basis(n, mean, np.full((N_COMPONENTS, N_COMPONENTS), np.nan), nan, nan)
    covariance = (moments.gram - n * np.outer(mean, mean)) / (n - 1)
    covariance = (covariance + covariance.T) / 2
    values, vectors = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1]
    values = np.clip(values[order], 0.0, None)  # round-off can make a zero variance slightly negative
    components = fix_signs(vectors[:, order].T)
    total = values.sum()
    ratio = values / total if total > 0 else np.full(N_COMPONENTS, np.nan)
    return Basis(n, mean, components, values, ratio)


# --- §5 layer quality ----------------------------------------------------------------------

def variance_entropy(ratio: np.ndarray) -> float:
    """H = -sum a_i log10 a_i over explained variance ratios (0 log 0 = 0); NaN stays NaN."""
    ratio = np.asarray(ratio, dtype=np.float64)
    if np.isnan(ratio).any():
        return float("nan")
    positive = ratio[ratio > 0]
    return float(-(positive * np.log10(positive)).sum())
