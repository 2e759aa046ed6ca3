"""Coefficient histograms and the KL divergence between their distributions (docs/method.md §4).

Histogram bins are exactly numpy's (:class:`EqualBins`), so pieces of a store binned
separately sum to the histogram of the whole.
"""

from __future__ import annotations

import numpy as np

EMPTY_BIN = float(np.finfo(np.float32).eps)  # replaces empty bins before KL (docs/method.md §4)


# --- §4 distributions and divergence -------------------------------------------------------

def bin_edges(low: float, high: float, bins: int) -> np.ndarray:
    return np.linspace(low, high, bins + 1)


class EqualBins:
    """``bins`` equal bins over [low, high], assigned exactly as ``np.histogram(column, bins,
    (low, high))`` does (its uniform-bin path): values outside the range are left out, the
    last bin includes the right edge, and an empty range is widened by 0.5 on each side.

    numpy estimates a value's bin as int((v - low) / (high - low) * bins), clips it to the
    last bin, then moves it down one if v < edges[i] and up one if v >= edges[i + 1] (not
    from the last bin). The estimate is off only for a value within rounding of an edge, so
    the result is the bin whose edges hold the value, and any estimate within one bin of it
    gives the same result after the same two tests. :meth:`counts` estimates with a multiply,
    (v - low) * (bins / (high - low)), counts every value at its estimate, and makes the two
    tests only for the values whose estimate lies within :attr:`margin` of a whole number,
    moving those that a test flags. The margin bounds the rounding of the estimate and of the
    edges, in bins, 64 times over (see ``__init__``): 1.5e-12 for 70 bins over [-3, 3], so a
    fraction of about 3e-12 of the values is tested. Work is done on (k, m) blocks, one
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
        self.scale = bins / self.width
        self.edges = bin_edges(low, high, bins)
        self.lower = self.edges[:-1]  # lower edge of bin i
        # upper edge of bin i; numpy never moves a value up from the last bin
        self.upper = np.append(self.edges[1:-1], np.inf)
        # The estimate is off the exact position (v - low) / width * bins by a few relative
        # roundings (at most a few eps x bins, in bins), and an edge of linspace off its own by
        # a few roundings of the range's magnitude (a few eps x max(|low|, |high|) / width x
        # bins). A value whose estimate is farther than both from a whole number lies in the
        # bin of its estimate. A range so narrow against its magnitude that the margin reaches
        # half a bin (bins a few roundings wide) is binned by np.histogram itself.
        eps = np.finfo(np.float64).eps
        self.margin = 64 * eps * bins * (1 + max(abs(low), abs(high)) / self.width)

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
        if self.margin >= 0.5:
            return np.stack([np.histogram(row, self.bins, (self.low, self.high))[0] for row in values])
        # One run of bins + 1 slots per row: the extra slot takes the estimates of bins (a
        # value at or next to high), which are all near a whole number and so moved below.
        slots = self.bins + 1
        position = np.subtract(values, self.low)
        position *= self.scale
        whole = np.floor(position)
        position -= whole  # the fraction of a bin
        near = position < self.margin
        near |= position > 1 - self.margin
        whole += (np.arange(k) * slots)[:, None]
        flat = whole.astype(np.intp)
        counts = np.bincount(flat.ravel(), minlength=k * slots)
        if near.any():
            source = flat[near]
            row_start = source - source % slots
            estimate = np.minimum(source - row_start, self.bins - 1)
            v = values[near]
            final = estimate - (v < self.lower.take(estimate)) + (v >= self.upper.take(estimate))
            counts -= np.bincount(source, minlength=k * slots)
            counts += np.bincount(row_start + final, minlength=k * slots)
        return counts.reshape(k, slots)[:, :self.bins].astype(np.int64)


def histogram_edges(low: float, high: float, bins: int) -> np.ndarray:
    """The bin edges (bins + 1,) that counts over [low, high] are made with: ``np.histogram``'s
    (an empty range widened by 0.5 on each side, as :class:`EqualBins` does)."""
    return EqualBins(low, high, bins).edges


def histogram_counts(values: np.ndarray, low: float, high: float, bins: int) -> np.ndarray:
    """Counts per column of ``values`` (n, k) in ``bins`` equal bins over [low, high]: (k, bins),
    as ``np.histogram(column, bins, (low, high))`` counts them (see :class:`EqualBins`)."""
    values = np.asarray(values, dtype=np.float64)
    return EqualBins(low, high, bins).counts(np.ascontiguousarray(values.T))


# Where an empty bin gets float32 eps (config analysis.empty_bins, docs/method.md §4): on the
# densities (the authors' code, default) or on the probabilities.
EMPTY_BINS = ("density", "probability")


def distribution(counts: np.ndarray, edges: np.ndarray, empty_bins: str = "density") -> np.ndarray:
    """Counts (..., bins) made over the bin edges ``edges`` (bins + 1,) as the distributions
    the KL compares, as the authors computed them (docs/method.md §4).

    Definition, per histogram (last axis) of total count n > 0: the density of bin i is
    d_i = counts_i / (n * (edges[i + 1] - edges[i])) (``np.histogram(..., density=True)``);
    bins with d_i = 0 get d_i = EMPTY_BIN (float32 eps); then p_i = d_i / sum_j d_j. An empty
    bin thus weighs eps against densities, i.e. about eps x bin width against probabilities.
    A histogram with no count at all (n = 0: an empty depth group) is all EMPTY_BIN, i.e.
    uniform, so two empty pools have KL 0 (numpy's density would be 0/0 there).

    ``empty_bins="probability"``: the same with counts_i / n in place of the densities, so an
    empty bin weighs eps against probabilities.
    """
    if empty_bins not in EMPTY_BINS:
        raise ValueError(f"empty_bins must be one of {', '.join(EMPTY_BINS)}, not {empty_bins!r} "
                         "(config analysis.empty_bins)")
    counts = np.asarray(counts, dtype=np.float64)
    widths = np.diff(np.asarray(edges, dtype=np.float64))
    if widths.shape != counts.shape[-1:]:
        raise ValueError(f"{counts.shape[-1]} bins of counts but {len(widths) + 1} bin edges: convert counts with "
                         "the edges they were made with (the range file's min, max and the bins setting)")
    total = counts.sum(axis=-1, keepdims=True)
    density = (counts / widths if empty_bins == "density" else counts) / np.where(total == 0, 1, total)
    density = np.where(density == 0, EMPTY_BIN, density)
    return density / density.sum(axis=-1, keepdims=True)


def symmetric_kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(P||Q) + KL(Q||P) along the last axis, natural log."""
    return (p * np.log(p / q)).sum(axis=-1) + (q * np.log(q / p)).sum(axis=-1)


def weighted_kl(counts_p: np.ndarray, counts_q: np.ndarray, weights: np.ndarray,
                edges: np.ndarray, empty_bins: str = "density") -> tuple[float, np.ndarray]:
    """Sum over components of weight * symmetric KL of :func:`distribution` of the counts
    (9, bins) made over ``edges``, and the per-component KL."""
    per_component = symmetric_kl(distribution(counts_p, edges, empty_bins), distribution(counts_q, edges, empty_bins))
    return float((np.asarray(weights) * per_component).sum()), per_component
