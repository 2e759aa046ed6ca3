"""The three streamed passes over one model's filter store (docs/method.md §3-§5).

1. :func:`summarize` — per layer: filter count, sparse count, max |W|, moments (count, sum,
   9x9 Gram, float64) of the non-sparse filters scaled and unscaled, variance entropy of
   both, orthogonality; and (docs/method.md §7) sums over the non-sparse filters of their L1/L2
   sparsity ratio and high-frequency share, with their means (columns at the end).
2. :func:`coefficient_range` — min and max of the coefficients of all scaled filters,
   sparse ones included, on a basis (the global range is the min/max over every model of
   the sheet and all components, as the authors' range over their whole database).
3. :func:`coefficient_histograms` — per layer and component, counts in equal bins over a
   given range.

Each pass reads the store once through :mod:`filterlens.reduce.streaming`. Passes 1 and 3 tell
sparse filters from the layer's reference that ``sparse_reference`` names (config
analysis.sparse_reference, docs/method.md §3), read from the store's layer table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from filterlens.extract.store import FilterStore, FilterStoreError, sparse_references
from filterlens.method.depth_groups import depth_group
from filterlens.method.distributions import EqualBins
from filterlens.method.filters import DEFAULT_SPARSE_REFERENCE, row_peaks, sparse_mask
from filterlens.method.orthogonality import blocked_orthogonality
from filterlens.method.pca import N_COMPONENTS, Basis, Moments, pca, variance_entropy
from filterlens.reduce.streaming import Piece, Segment, check_finite, map_segments, map_threads, plan_segments

if TYPE_CHECKING:
    import pandas as pd  # pass 1's table only: passes 2 and 3 import no pandas (docs/benchmarks.md)

# Rows per block in passes 2 and 3: their float64 temporaries (a few times 9 x 8192 x 8 bytes)
# stay in cache. Blocks start at the piece's start, so both passes see the same coefficients.
COEFFICIENT_BLOCK_ROWS = 8192


@dataclass
class _Layout:
    """What the passes need to know of a store's layers, by layer_id."""

    store: FilterStore
    max_abs: np.ndarray
    sparse_reference: np.ndarray  # the layer's reference of the sparse threshold
    c_out: np.ndarray
    per_out_channel: np.ndarray  # rows per output channel: c_in / groups
    row_start: np.ndarray
    row_stop: np.ndarray

    @classmethod
    def of(cls, store: FilterStore, sparse_reference: str = DEFAULT_SPARSE_REFERENCE) -> "_Layout":
        t = {c: np.asarray(store.table[c]) for c in ("max_abs", "c_out", "c_in", "groups", "row_start", "row_stop")}
        reference = np.asarray(sparse_references(store, sparse_reference), dtype=float)
        return cls(store, t["max_abs"].astype(float), reference, t["c_out"].astype(int),
                   (t["c_in"] // t["groups"]).astype(int), t["row_start"].astype(int), t["row_stop"].astype(int))

    def piece_rows(self, rows: np.ndarray, segment: Segment, piece: Piece) -> np.ndarray:
        x = rows[piece.start - segment.start:piece.stop - segment.start]
        check_finite(x, self.store, piece.layer_id)
        return x

    def nonsparse(self, x: np.ndarray, layer_id: int) -> tuple[np.ndarray, np.ndarray]:
        """The non-sparse rows of ``x`` and their peaks."""
        peaks = row_peaks(x)
        sparse = sparse_mask(x, self.sparse_reference[layer_id], peaks)
        if sparse.any():
            keep = ~sparse
            x, peaks = _compact(x, keep), peaks[keep]
        return x, peaks


def _compact(rows: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``rows[keep]`` for (n, 9) rows, each row seen as one opaque item: several times faster
    than boolean indexing of a 2-d array."""
    rows = np.ascontiguousarray(rows)
    items = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1])))[:, 0]
    return items[keep].view(rows.dtype).reshape(-1, rows.shape[1])


def _segments(store: FilterStore, max_rows: int) -> list[Segment]:
    return plan_segments(store.table, store.filters.chunks[0], max_rows)


# --- pass 1: layer summaries ---------------------------------------------------------------

@dataclass
class LayerMoments:
    """Per layer (indexed by layer_id) moments of the non-sparse filters."""

    scaled: list[Moments]
    unscaled: list[Moments]

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {}
        for name, moments in (("scaled", self.scaled), ("unscaled", self.unscaled)):
            out[f"{name}_n"] = np.array([m.n for m in moments], dtype=np.int64)
            out[f"{name}_sum"] = np.array([m.total for m in moments]).reshape(-1, N_COMPONENTS)
            out[f"{name}_gram"] = np.array([m.gram for m in moments]).reshape(-1, N_COMPONENTS, N_COMPONENTS)
        return out

    @classmethod
    def from_arrays(cls, arrays) -> "LayerMoments":
        def unpack(name):
            return [Moments(int(n), s, g) for n, s, g in
                    zip(arrays[f"{name}_n"], arrays[f"{name}_sum"], arrays[f"{name}_gram"])]
        return cls(unpack("scaled"), unpack("unscaled"))


def summarize(store: FilterStore, threads: int, max_rows: int,
              sparse_reference: str = DEFAULT_SPARSE_REFERENCE) -> tuple[pd.DataFrame, LayerMoments]:
    """Pass 1. Returns the per-layer table and the per-layer moments (sparse filters by the
    layer's ``sparse_reference``)."""
    # Imported here, not with the module: importing numba costs every process time and memory
    # (docs/benchmarks.md), and only pass 1 uses it (passes 2 and 3 and the merges import this module).
    from filterlens.reduce.piece_summary import summarize_piece

    layout = _Layout.of(store, sparse_reference)

    def task(rows: np.ndarray, segment: Segment):
        pieces = []
        for piece in segment.pieces:
            pieces.append((piece, summarize_piece(layout.piece_rows(rows, segment, piece),
                                                  layout.sparse_reference[piece.layer_id])))
        grams = {lid: _layer_orthogonality(layout, lid, rows, layout.row_start[lid] - segment.start)
                 for lid in segment.whole_layers}
        return pieces, grams

    segments = _segments(store, max_rows)
    results = map_segments(store, segments, task, threads)
    n_layers = len(store.table["layer_id"])
    count = np.zeros(n_layers, dtype=np.int64)
    sparse = np.zeros(n_layers, dtype=np.int64)
    seen_max = np.zeros(n_layers)
    unscaled = [Moments() for _ in range(n_layers)]
    scaled = [Moments() for _ in range(n_layers)]
    measure_sums = np.zeros((n_layers, 2))  # L1/L2 ratio, high-frequency share
    ortho = np.full(n_layers, np.nan)
    for pieces, grams in results:  # segments and their pieces are in row order
        for piece, s in pieces:
            lid = piece.layer_id
            count[lid] += s.n_filters
            sparse[lid] += s.n_sparse
            seen_max[lid] = max(seen_max[lid], s.peak)
            unscaled[lid] = unscaled[lid] + s.unscaled
            scaled[lid] = scaled[lid] + s.scaled
            measure_sums[lid] += s.measure_sums
        for lid, value in grams.items():
            ortho[lid] = value
    for lid in range(n_layers):
        if not any(lid in s.whole_layers for s in segments) and count[lid]:
            ortho[lid] = _split_layer_orthogonality(store, layout, lid, threads)
    _check_layer_table(store, layout, seen_max)
    table = _layer_table(store, count, sparse, unscaled, scaled, ortho, measure_sums)
    return table, LayerMoments(scaled, unscaled)


def _layer_orthogonality(layout: _Layout, lid: int, rows, offset: int, **options) -> float:
    """Orthogonality of layer ``lid`` whose rows start at ``offset`` in ``rows`` (a segment's
    array, or the store itself for a layer too large for one); ``options`` go to
    :func:`blocked_orthogonality`."""
    per = layout.per_out_channel[lid]

    def read_block(o0: int, o1: int) -> np.ndarray:
        return np.asarray(rows[offset + o0 * per:offset + o1 * per]).reshape(o1 - o0, per * 9)

    return blocked_orthogonality(read_block, int(layout.c_out[lid]), int(per) * 9, **options)


def _split_layer_orthogonality(store: FilterStore, layout: _Layout, lid: int, threads: int) -> float:
    """Orthogonality of a layer too large for one segment: the same blocks as in a segment,
    read from the store (each block row reads its own), block rows in parallel."""
    return _layer_orthogonality(layout, lid, store.filters, int(layout.row_start[lid]), hold_blocks=False,
                                map_rows=lambda f, items: map_threads(f, items, threads))


def _check_layer_table(store: FilterStore, layout: _Layout, seen_max: np.ndarray) -> None:
    bad = np.flatnonzero(seen_max != layout.max_abs)
    if len(bad):
        name = store.table["name"][int(bad[0])]
        raise FilterStoreError(
            f"{store.path} (model {store.model_id}): layer {name} holds max |W| {seen_max[bad[0]]}, but its "
            f"layer table says {layout.max_abs[bad[0]]}: the store is inconsistent. "
            f"Fix: delete {store.path} and extract it again.")


def _layer_table(store, count, sparse, unscaled, scaled, ortho, measure_sums) -> pd.DataFrame:
    layers = store.layers.sort_values("layer_id").reset_index(drop=True)
    table = layers[["layer_id", "name", "conv_depth", "conv_depth_norm", "c_in", "c_out", "groups", "max_abs",
                    "bn_folded"]].copy()
    table.insert(0, "model_id", store.model_id)
    max_depth = int(store.attrs.get("max_conv_depth", layers.conv_depth.max() if len(layers) else 0))
    table["max_conv_depth"] = max_depth
    table["depth_definition"] = store.attrs.get("depth_definition")  # which depth conv_depth is
    table["depth_group"] = depth_group(table.conv_depth.to_numpy(), max_depth)
    table["n_filters"] = count
    table["n_sparse"] = sparse
    table["n_nonsparse"] = count - sparse
    table["sparsity"] = sparse / np.where(count == 0, 1, count)
    table["entropy_unscaled"] = [variance_entropy(pca(m).ratio) for m in unscaled]
    table["entropy_scaled"] = [variance_entropy(pca(m).ratio) for m in scaled]
    table["orthogonality"] = ortho
    # docs/method.md §7, over the non-sparse filters: sums (additive over layers) and layer means
    nonsparse = count - sparse
    table["l1l2_ratio_sum"] = measure_sums[:, 0]
    table["hf_share_sum"] = measure_sums[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        table["l1l2_ratio"] = np.where(nonsparse > 0, measure_sums[:, 0] / nonsparse, np.nan)
        table["hf_share"] = np.where(nonsparse > 0, measure_sums[:, 1] / nonsparse, np.nan)
    return table


# --- passes 2 and 3: coefficients ---------------------------------------------------------

def _coefficient_blocks(layout: _Layout, basis: Basis, rows: np.ndarray, segment: Segment, piece: Piece,
                        with_sparse: bool = False):
    """Coefficients (9, m) of the piece's scaled non-sparse filters (``with_sparse``: of all its
    scaled filters) on ``basis``, one component per row, block by block."""
    x = layout.piece_rows(rows, segment, piece)
    for start in range(0, len(x), COEFFICIENT_BLOCK_ROWS):
        block = x[start:start + COEFFICIENT_BLOCK_ROWS]
        block, peaks = (block, row_peaks(block)) if with_sparse else layout.nonsparse(block, piece.layer_id)
        if len(block):
            yield basis.project_scaled(block, peaks)


def coefficient_range(store: FilterStore, basis: Basis, threads: int, max_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Pass 2. Per component min and max of the coefficients on ``basis`` of all the model's
    scaled filters F / max|F| (an all-zero filter stays zero), sparse ones included: the
    authors' range is over every scaled filter of their database (docs/method.md §4), while the
    histograms (pass 3) count the non-sparse ones only. (inf, -inf) for a model with no filter."""
    layout = _Layout.of(store)

    def task(rows: np.ndarray, segment: Segment):
        low = np.full(N_COMPONENTS, np.inf)
        high = np.full(N_COMPONENTS, -np.inf)
        for piece in segment.pieces:
            for coefficients in _coefficient_blocks(layout, basis, rows, segment, piece, with_sparse=True):
                np.minimum(low, coefficients.min(axis=1), out=low)
                np.maximum(high, coefficients.max(axis=1), out=high)
        return low, high

    results = map_segments(store, _segments(store, max_rows), task, threads)
    low = np.min([r[0] for r in results], axis=0) if results else np.full(N_COMPONENTS, np.inf)
    high = np.max([r[1] for r in results], axis=0) if results else np.full(N_COMPONENTS, -np.inf)
    return low, high


def coefficient_histograms(store: FilterStore, basis: Basis, low: float, high: float, bins: int,
                           threads: int, max_rows: int, sparse_reference: str = DEFAULT_SPARSE_REFERENCE) -> np.ndarray:
    """Pass 3. Counts (n_layers, 9, bins) of the coefficients of the scaled non-sparse filters
    (sparse by the layer's ``sparse_reference``)."""
    return _histograms(store, basis, low, high, bins, threads, max_rows, sparse_reference)[0]


def coefficient_histograms_with_outside(store: FilterStore, basis: Basis, low: float, high: float, bins: int,
                                        threads: int, max_rows: int, sparse_reference: str = DEFAULT_SPARSE_REFERENCE
                                        ) -> tuple[np.ndarray, np.ndarray]:
    """Pass 3 over a range made elsewhere (a reference bundle's): the counts (n_layers, 9, bins)
    and, per layer and component, the coefficients below ``low`` and above ``high`` (n_layers, 9, 2),
    which the counts leave out."""
    return _histograms(store, basis, low, high, bins, threads, max_rows, sparse_reference, outside=True)


def _histograms(store: FilterStore, basis: Basis, low: float, high: float, bins: int, threads: int,
                max_rows: int, sparse_reference: str, outside: bool = False) -> tuple[np.ndarray, np.ndarray]:
    layout = _Layout.of(store, sparse_reference)
    equal_bins = EqualBins(low, high, bins)

    def task(rows: np.ndarray, segment: Segment):
        out = []
        for piece in segment.pieces:
            counts = np.zeros((N_COMPONENTS, bins), dtype=np.int64)
            beyond = np.zeros((N_COMPONENTS, 2), dtype=np.int64)
            for coefficients in _coefficient_blocks(layout, basis, rows, segment, piece):
                counts += equal_bins.counts(coefficients)
                if outside:
                    beyond[:, 0] += (coefficients < equal_bins.low).sum(axis=1)
                    beyond[:, 1] += (coefficients > equal_bins.high).sum(axis=1)
            out.append((piece.layer_id, counts, beyond))
        return out

    n_layers = len(store.table["layer_id"])
    counts = np.zeros((n_layers, N_COMPONENTS, bins), dtype=np.int64)
    beyond = np.zeros((n_layers, N_COMPONENTS, 2), dtype=np.int64)
    for result in map_segments(store, _segments(store, max_rows), task, threads):
        for layer_id, piece_counts, piece_beyond in result:
            counts[layer_id] += piece_counts
            beyond[layer_id] += piece_beyond
    return counts, beyond
