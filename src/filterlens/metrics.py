"""The definitions of docs/method.md §3-§5 on in-memory arrays: filters, PCA, distributions, quality.

Everything here is pure: arrays in, arrays or numbers out. The streaming code applies these
to pieces of a filter store and merges the pieces; the tests apply them to whole arrays.

Degenerate cases (the policy the tests pin down):
- a layer with no non-sparse filter, or with one, has no covariance: its variance entropy is
  NaN, and NaN layers are left out of weighted means;
- a layer whose non-sparse filters are all identical has zero variance: entropy NaN as well;
- orthogonality needs two filterbanks: a layer with c_out = 1 gets NaN; an all-zero layer
  follows the formula (zero rows stay zero): 1 - 1/(c_out - 1);
- an all-zero layer has max |W| = 0, so every filter is sparse (0 <= 0).

Precision policy: orthogonality's Gram is float32 for layers of 256 output channels or more
(where it costs; within 1e-7 absolute of the float64 formula, measured at most 6e-9) and
float64 below (see :func:`gram_dtype`); histogram bins are exactly numpy's (:class:`EqualBins`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

N_COMPONENTS = 9
SPARSE_DIVISOR = 100.0  # a filter is sparse if max|F| <= max|W_layer| / 100
EMPTY_BIN = float(np.finfo(np.float32).eps)  # replaces empty bins before KL (docs/method.md §4)


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


# Orthogonality is the one compute-bound metric: the Gram Wn Wn^T costs c_out * c_in * 9 / 2
# multiply-adds per output channel (numpy hands a @ a.T to BLAS as a symmetric rank-k
# update). It is computed in blocks of output channels fixed by the layer's shape, never by
# memory or threads, so a layer gives bitwise the same value whether it lies in one segment
# or is read block by block from the store; the blocks' sums are added exactly (math.fsum),
# so neither their order nor their grouping matters.
GRAM_BLOCK_WEIGHTS = 1 << 23  # weights per channel block (32 MiB in float32): few blocks, few rereads
FLOAT32_GRAM_MIN_C_OUT = 256  # precision policy: see gram_dtype


def gram_dtype(c_out: int) -> type:
    """float32 for layers of at least FLOAT32_GRAM_MIN_C_OUT output channels, float64 below.

    The rows are scaled to unit norm in float64, then rounded; float32 GEMM is about twice as
    fast, and the blocks' sums of |G| are taken in float64. The diagonal is exact either way.
    Measured against the float64 formula (tools/orthogonality_precision.py): on the 3x3
    layers of two trained RobustBench models (WRN-34-10 Wu2020Adversarial, WRN-70-16
    Gowal2020Uncovering_70_16_extra; 86 layers of c_out 256..1024) float32 moves the value by
    at most 7e-11; on synthetic layers of c_out 256..1024 (Gaussian, low-rank, positive,
    heavy-tailed with zero filterbanks, orthonormal) by at most 6e-9, the worst case being
    orthonormal filterbanks, whose every |cos| is rounding noise that the absolute value
    cannot cancel. The paper reports three decimals; the tests allow 1e-7 absolute for the
    float32 path. Smaller layers cost little (the Gram work per filter is proportional to
    c_out) and float32 would be off by up to 2e-8 there, so they stay in float64, within
    1e-15 of the formula (the equivalence tests hold them to 1e-9 relative).
    """
    return np.float32 if c_out >= FLOAT32_GRAM_MIN_C_OUT else np.float64


def channel_blocks(c_out: int, width: int) -> list[tuple[int, int]]:
    """Output channel ranges of about equal size, each of at most GRAM_BLOCK_WEIGHTS weights
    (at least one channel), for filterbanks of ``width`` weights."""
    n_blocks = max(1, -(-c_out * width // GRAM_BLOCK_WEIGHTS))
    size = -(-c_out // n_blocks)
    return [(o, min(c_out, o + size)) for o in range(0, c_out, size)]


def unit_rows(filterbanks: np.ndarray, dtype: type) -> tuple[np.ndarray, int]:
    """The rows scaled to unit L2 norm in float64, then rounded to ``dtype``; zero rows stay
    zero. Also returns the number of zero rows. A few rows at a time, so the float64
    temporaries stay small."""
    w = np.asarray(filterbanks)
    out = np.empty(w.shape, dtype)
    step = max(1, (1 << 18) // max(w.shape[1], 1))
    zero_rows = 0
    for r in range(0, len(w), step):
        part = w[r:r + step].astype(np.float64)
        norms = np.sqrt(np.einsum("ij,ij->i", part, part))
        zero = norms == 0
        zero_rows += int(zero.sum())
        np.divide(part, np.where(zero, 1.0, norms)[:, None], out=out[r:r + step], casting="same_kind")
    return out, zero_rows


def _abs_sum(g: np.ndarray) -> float:
    return float(np.abs(g, out=g).sum(dtype=np.float64))


def block_row_deviations(unit_block, n_blocks: int, i: int) -> list[float]:
    """The parts of sum |Wn Wn^T - I| from the Gram blocks (i, j >= i), blocks j > i counted
    twice (for their mirror images); ``unit_block(j)`` gives block j's unit rows and its
    number of zero rows."""
    wa, zero_rows = unit_block(i)
    g = wa @ wa.T
    # The diagonal of Wn Wn^T - I is exactly 0 for unit rows and -1 for zero rows: kept out
    # of the GEMM's rounding.
    np.fill_diagonal(g, 0.0)
    parts = [_abs_sum(g), float(zero_rows)]
    parts += [2.0 * _abs_sum(wa @ unit_block(j)[0].T) for j in range(i + 1, n_blocks)]
    return parts


def blocked_orthogonality(read_block, c_out: int, width: int, map_rows=map, hold_blocks: bool = True) -> float:
    """1 - sum|Wn Wn^T - I| / (c_out (c_out - 1)) of a layer of ``c_out`` filterbanks of
    ``width`` weights, from ``read_block(o0, o1)`` (the filterbanks of channels o0..o1).

    ``map_rows(f, block_indices)`` may run the block rows in parallel; ``hold_blocks`` keeps
    each block's unit rows once made (a layer in memory) rather than reading and scaling it
    again for every block row (a layer read from the store). Neither changes the result: the
    parts are the same numbers, added exactly.
    """
    if c_out < 2:
        return float("nan")
    blocks = channel_blocks(c_out, width)
    dtype = gram_dtype(c_out)

    def unit_block(j: int) -> tuple[np.ndarray, int]:
        return unit_rows(read_block(*blocks[j]), dtype)

    if hold_blocks:
        unit_block = functools.cache(unit_block)
    rows = map_rows(lambda i: block_row_deviations(unit_block, len(blocks), i), range(len(blocks)))
    return 1.0 - math.fsum(part for row in rows for part in row) / (c_out * (c_out - 1))


def orthogonality(filterbanks: np.ndarray) -> float:
    """Orthogonality of a layer given as (c_out, c_in/groups * 9) filterbanks."""
    w = np.asarray(filterbanks)
    return blocked_orthogonality(lambda o0, o1: w[o0:o1], *w.shape)


# --- §4 distributions and divergence -------------------------------------------------------

def bin_edges(low: float, high: float, bins: int) -> np.ndarray:
    return np.linspace(low, high, bins + 1)


class EqualBins:
    """``bins`` equal bins over [low, high], assigned exactly as ``np.histogram(column, bins,
    (low, high))`` does (its uniform-bin path): values outside the range are left out, the
    last bin includes the right edge, and an empty range is widened by 0.5 on each side.

    numpy estimates a value's bin as int((v - low) / (high - low) * bins), clips it to the
    last bin, then moves it down one if v < edges[i] and up one if v >= edges[i + 1] (not
    from the last bin): the estimate can be off near an edge. :meth:`counts` makes the same
    estimate and the same two tests (both cannot hold at once: the edges increase), but
    counts every value at its estimate and then moves only the few that a test flags,
    instead of correcting every index. Work is done in place on (k, m) blocks, one
    component per row, which the caller keeps cache-sized.
    """

    def __init__(self, low: float, high: float, bins: int):
        low, high = float(low), float(high)
        if not (np.isfinite(low) and np.isfinite(high)) or low > high:
            raise ValueError(f"bad histogram range [{low}, {high}]")
        if low == high:
            low, high = low - 0.5, high + 0.5
        self.low, self.high, self.bins = low, high, bins
        self.width = high - low
        self.edges = bin_edges(low, high, bins)
        self.lower = self.edges[:-1]  # lower edge of bin i
        # upper edge of bin i; numpy never moves a value up from the last bin
        self.upper = np.append(self.edges[1:-1], np.inf)

    def counts(self, values: np.ndarray) -> np.ndarray:
        """Counts (k, bins) of each row of ``values`` (k, m) float64."""
        k = len(values)
        if not values.size:
            return np.zeros((k, self.bins), dtype=np.int64)
        if values.min() < self.low or values.max() > self.high:
            return np.stack([self._counts_inside(row[(row >= self.low) & (row <= self.high)][None]) for row in values]
                            ).reshape(k, self.bins)
        return self._counts_inside(values)

    def _counts_inside(self, values: np.ndarray) -> np.ndarray:
        k = len(values)
        index = self._estimate(values)
        flat = index + (np.arange(k) * self.bins)[:, None]  # one run of bins per row
        counts = np.bincount(flat.ravel(), minlength=k * self.bins)
        for moved, step in ((values < self.lower.take(index), -1), (values >= self.upper.take(index), 1)):
            if moved.any():
                source = flat[moved]
                counts -= np.bincount(source, minlength=k * self.bins)
                counts += np.bincount(source + step, minlength=k * self.bins)
        return counts.reshape(k, self.bins).astype(np.int64, copy=False)

    def _estimate(self, values: np.ndarray) -> np.ndarray:
        """numpy's estimate int((v - low) / (high - low) * bins), clipped to the last bin."""
        position = np.subtract(values, self.low)
        position /= self.width
        position *= self.bins
        index = position.astype(np.intp)
        np.minimum(index, self.bins - 1, out=index)
        return index


def histogram_edges(low: float, high: float, bins: int) -> np.ndarray:
    """The bin edges (bins + 1,) that counts over [low, high] are made with: ``np.histogram``'s
    (an empty range widened by 0.5 on each side, as :class:`EqualBins` does)."""
    return EqualBins(low, high, bins).edges


def histogram_counts(values: np.ndarray, low: float, high: float, bins: int) -> np.ndarray:
    """Counts per column of ``values`` (n, k) in ``bins`` equal bins over [low, high]: (k, bins),
    as ``np.histogram(column, bins, (low, high))`` counts them (see :class:`EqualBins`)."""
    values = np.asarray(values, dtype=np.float64)
    return EqualBins(low, high, bins).counts(np.ascontiguousarray(values.T))


def distribution(counts: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts (..., bins) made over the bin edges ``edges`` (bins + 1,) as the distributions
    the KL compares, as the authors computed them (docs/method.md §4).

    Definition, per histogram (last axis) of total count n > 0: the density of bin i is
    d_i = counts_i / (n * (edges[i + 1] - edges[i])) (``np.histogram(..., density=True)``);
    bins with d_i = 0 get d_i = EMPTY_BIN (float32 eps); then p_i = d_i / sum_j d_j. An empty
    bin thus weighs eps against densities, i.e. about eps x bin width against probabilities.
    A histogram with no count at all (n = 0: an empty depth group) is all EMPTY_BIN, i.e.
    uniform, so two empty pools have KL 0 (numpy's density would be 0/0 there).
    """
    counts = np.asarray(counts, dtype=np.float64)
    widths = np.diff(np.asarray(edges, dtype=np.float64))
    if widths.shape != counts.shape[-1:]:
        raise ValueError(f"{counts.shape[-1]} bins of counts but {len(widths) + 1} bin edges: convert counts with "
                         "the edges they were made with (the range file's min, max and the bins setting)")
    total = counts.sum(axis=-1, keepdims=True)
    density = counts / widths / np.where(total == 0, 1, total)
    density = np.where(density == 0, EMPTY_BIN, density)
    return density / density.sum(axis=-1, keepdims=True)


def symmetric_kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(P||Q) + KL(Q||P) along the last axis, natural log."""
    return (p * np.log(p / q)).sum(axis=-1) + (q * np.log(q / p)).sum(axis=-1)


def weighted_kl(counts_p: np.ndarray, counts_q: np.ndarray, weights: np.ndarray,
                edges: np.ndarray) -> tuple[float, np.ndarray]:
    """Sum over components of weight * symmetric KL of :func:`distribution` of the counts
    (9, bins) made over ``edges``, and the per-component KL."""
    per_component = symmetric_kl(distribution(counts_p, edges), distribution(counts_q, edges))
    return float((np.asarray(weights) * per_component).sum()), per_component
