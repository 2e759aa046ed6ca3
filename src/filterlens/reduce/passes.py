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

Each pass also computes several results from that one read, for the sensitivity analysis
(docs/design.md, "Sensitivity to the documented choices"): :func:`summarize_references` under
several sparse references, :func:`coefficient_ranges` on several :class:`Projection` (with the
non-sparse filters' range and extremes, :class:`CoefficientRange`), and
:func:`coefficient_histograms_of` for several :class:`HistogramSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

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

    @classmethod
    def by_reference(cls, store: FilterStore, references) -> dict[str, "_Layout"]:
        """A layout of ``store`` per distinct sparse reference of ``references``, in their order."""
        return {reference: cls.of(store, reference) for reference in dict.fromkeys(references)}

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
    return summarize_references(store, threads, max_rows, [sparse_reference])[sparse_reference]


def summarize_references(store: FilterStore, threads: int, max_rows: int,
                         references: Sequence[str]) -> dict[str, tuple[pd.DataFrame, LayerMoments]]:
    """Pass 1 under each sparse reference of ``references``, from one read: per reference, the
    per-layer table and moments of :func:`summarize`. Each reference's statistics are those a
    pass under it alone gives, bit for bit (the kernel runs once per reference over the same
    rows); orthogonality, over whole layers, is taken once."""
    # Imported here, not with the module: importing numba costs every process time and memory
    # (docs/benchmarks.md), and only pass 1 uses it (passes 2 and 3 and the merges import this module).
    from filterlens.reduce.piece_summary import summarize_piece

    layouts = _Layout.by_reference(store, references)
    layout = next(iter(layouts.values()))

    def task(rows: np.ndarray, segment: Segment):
        pieces = []
        for piece in segment.pieces:
            x = layout.piece_rows(rows, segment, piece)
            pieces.append((piece, {reference: summarize_piece(x, each.sparse_reference[piece.layer_id])
                                   for reference, each in layouts.items()}))
        grams = {lid: _layer_orthogonality(layout, lid, rows, layout.row_start[lid] - segment.start)
                 for lid in segment.whole_layers}
        return pieces, grams

    segments = _segments(store, max_rows)
    results = map_segments(store, segments, task, threads)
    n_layers = len(store.table["layer_id"])
    sums = {reference: _LayerSums.empty(n_layers) for reference in layouts}
    ortho = np.full(n_layers, np.nan)
    for pieces, grams in results:  # segments and their pieces are in row order
        for piece, summaries in pieces:
            for reference, s in summaries.items():
                sums[reference].add(piece.layer_id, s)
        for lid, value in grams.items():
            ortho[lid] = value
    some = next(iter(sums.values()))
    for lid in range(n_layers):
        if not any(lid in s.whole_layers for s in segments) and some.count[lid]:
            ortho[lid] = _split_layer_orthogonality(store, layout, lid, threads)
    _check_layer_table(store, layout, some.seen_max)
    return {reference: (_layer_table(store, s.count, s.sparse, s.unscaled, s.scaled, ortho, s.measure_sums),
                        LayerMoments(s.scaled, s.unscaled)) for reference, s in sums.items()}


@dataclass
class _LayerSums:
    """Pass 1's per-layer sums under one sparse reference, added piece by piece in row order."""

    count: np.ndarray
    sparse: np.ndarray
    seen_max: np.ndarray
    unscaled: list[Moments]
    scaled: list[Moments]
    measure_sums: np.ndarray  # L1/L2 ratio, high-frequency share

    @classmethod
    def empty(cls, n_layers: int) -> "_LayerSums":
        return cls(np.zeros(n_layers, dtype=np.int64), np.zeros(n_layers, dtype=np.int64), np.zeros(n_layers),
                   [Moments() for _ in range(n_layers)], [Moments() for _ in range(n_layers)],
                   np.zeros((n_layers, 2)))

    def add(self, lid: int, s) -> None:
        self.count[lid] += s.n_filters
        self.sparse[lid] += s.n_sparse
        self.seen_max[lid] = max(self.seen_max[lid], s.peak)
        self.unscaled[lid] = self.unscaled[lid] + s.unscaled
        self.scaled[lid] = self.scaled[lid] + s.scaled
        self.measure_sums[lid] += s.measure_sums


def stacked(tables: Mapping[str, pd.DataFrame], like: pd.DataFrame) -> pd.DataFrame:
    """Layer tables by variant name as one table with a column ``variant`` (the variants' layer
    tables of pass 1); none: ``like``'s columns and no row."""
    import pandas as pd

    if not tables:
        return like.iloc[:0].assign(variant="")
    return pd.concat([table.assign(variant=name) for name, table in tables.items()], ignore_index=True)


def with_depths(table: pd.DataFrame, store: FilterStore) -> pd.DataFrame:
    """Pass 1's layer ``table`` with its depth columns (conv_depth, conv_depth_norm, max_conv_depth,
    depth_definition, depth_group) taken from ``store``'s layer table: a table of the store under
    another depth definition (:func:`filterlens.extract.store.with_depth_definition`) needs no read."""
    layers = store.layers.sort_values("layer_id").reset_index(drop=True)
    table = table.copy()
    table["conv_depth"] = layers.conv_depth.to_numpy()
    table["conv_depth_norm"] = layers.conv_depth_norm.to_numpy()
    max_depth = int(store.attrs.get("max_conv_depth", layers.conv_depth.max() if len(layers) else 0))
    table["max_conv_depth"] = max_depth
    table["depth_definition"] = store.attrs.get("depth_definition")  # which depth conv_depth is
    table["depth_group"] = depth_group(table.conv_depth.to_numpy(), max_depth)
    return table


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
    table = with_depths(table, store)
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

@dataclass(frozen=True, eq=False)  # one projection is one object: specs that share it share its coefficients
class Projection:
    """What passes 2 and 3 project a store's filters on: a full ``basis``, and the sparse
    reference that tells which filters are sparse (config analysis.sparse_reference)."""

    basis: Basis
    sparse_reference: str = DEFAULT_SPARSE_REFERENCE


@dataclass
class CoefficientRange:
    """Pass 2's per-component summary (9,) of a model's coefficients on one projection: min and
    max over all its scaled filters, min and max over the non-sparse ones, and ``extreme``, the
    non-sparse coefficient of largest magnitude with its sign (the first one of a tie, in row
    order; 0 without a non-sparse filter), which fixes a component's sign by the projections
    (analysis.pca_sign: u_based, docs/method.md §4)."""

    low: np.ndarray
    high: np.ndarray
    low_nonsparse: np.ndarray
    high_nonsparse: np.ndarray
    extreme: np.ndarray

    @classmethod
    def empty(cls) -> "CoefficientRange":
        def full(value):
            return np.full(N_COMPONENTS, value)
        return cls(full(np.inf), full(-np.inf), full(np.inf), full(-np.inf), full(0.0))

    @classmethod
    def of(cls, coefficients: np.ndarray, nonsparse: np.ndarray | None) -> "CoefficientRange":
        """The summary of a block's coefficients (9, m) of scaled filters, ``nonsparse`` (m,) marking
        the non-sparse ones (None: the non-sparse summaries are not wanted and stay empty)."""
        out = cls.empty()
        out.low, out.high = coefficients.min(axis=1), coefficients.max(axis=1)
        kept = coefficients if nonsparse is None or nonsparse.all() else coefficients[:, nonsparse]
        if nonsparse is not None and kept.shape[1]:
            out.low_nonsparse, out.high_nonsparse = kept.min(axis=1), kept.max(axis=1)
            out.extreme = kept[np.arange(N_COMPONENTS), np.abs(kept).argmax(axis=1)]
        return out

    def merge(self, other: "CoefficientRange") -> None:
        """Adds ``other``, the summary of rows after this one's."""
        np.minimum(self.low, other.low, out=self.low)
        np.maximum(self.high, other.high, out=self.high)
        np.minimum(self.low_nonsparse, other.low_nonsparse, out=self.low_nonsparse)
        np.maximum(self.high_nonsparse, other.high_nonsparse, out=self.high_nonsparse)
        replace = np.abs(other.extreme) > np.abs(self.extreme)
        self.extreme[replace] = other.extreme[replace]


@dataclass(frozen=True)
class HistogramSpec:
    """What pass 3 counts: the non-sparse coefficients on ``projection``, each component
    multiplied by its ``signs`` entry (+1 or -1: a flipped component, analysis.pca_sign), in
    equal bins over [low, high]."""

    projection: Projection
    low: float
    high: float
    signs: tuple[float, ...] = (1.0,) * N_COMPONENTS


def _coefficient_blocks(layout: _Layout, basis: Basis, rows: np.ndarray, segment: Segment, piece: Piece,
                        with_sparse: bool = False, marked: bool = False):
    """Coefficients (9, m) of the piece's scaled non-sparse filters on ``basis``, one component
    per row, block by block; ``with_sparse``: of all its scaled filters, each block with which
    of them are non-sparse (``marked``; None otherwise)."""
    x = layout.piece_rows(rows, segment, piece)
    for start in range(0, len(x), COEFFICIENT_BLOCK_ROWS):
        block = x[start:start + COEFFICIENT_BLOCK_ROWS]
        if with_sparse:
            peaks = row_peaks(block)
            if len(block):
                nonsparse = ~sparse_mask(block, layout.sparse_reference[piece.layer_id], peaks) if marked else None
                yield basis.project_scaled(block, peaks), nonsparse
            continue
        block, peaks = layout.nonsparse(block, piece.layer_id)
        if len(block):
            yield basis.project_scaled(block, peaks)


def coefficient_range(store: FilterStore, basis: Basis, threads: int, max_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Pass 2. Per component min and max of the coefficients on ``basis`` of all the model's
    scaled filters F / max|F| (an all-zero filter stays zero), sparse ones included: the
    authors' range is over every scaled filter of their database (docs/method.md §4), while the
    histograms (pass 3) count the non-sparse ones only. (inf, -inf) for a model with no filter."""
    summary = coefficient_ranges(store, {"": Projection(basis)}, threads, max_rows, nonsparse=False)[""]
    return summary.low, summary.high


def coefficient_ranges(store: FilterStore, projections: Mapping[str, Projection], threads: int,
                       max_rows: int, nonsparse: bool = True) -> dict[str, CoefficientRange]:
    """Pass 2 on each of ``projections`` (by name) from one read: the :class:`CoefficientRange`
    of the model's coefficients on each (without ``nonsparse``, its min and max over all filters only)."""
    layouts = _Layout.by_reference(store, (p.sparse_reference for p in projections.values()))

    def task(rows: np.ndarray, segment: Segment):
        out = {name: CoefficientRange.empty() for name in projections}
        for piece in segment.pieces:
            for name, projection in projections.items():
                for coefficients, kept in _coefficient_blocks(layouts[projection.sparse_reference],
                                                              projection.basis, rows, segment, piece,
                                                              with_sparse=True, marked=nonsparse):
                    out[name].merge(CoefficientRange.of(coefficients, kept))
        return out

    total = {name: CoefficientRange.empty() for name in projections}
    for result in map_segments(store, _segments(store, max_rows), task, threads):
        for name, summary in result.items():
            total[name].merge(summary)
    return total


def coefficient_histograms(store: FilterStore, basis: Basis, low: float, high: float, bins: int,
                           threads: int, max_rows: int, sparse_reference: str = DEFAULT_SPARSE_REFERENCE) -> np.ndarray:
    """Pass 3. Counts (n_layers, 9, bins) of the coefficients of the scaled non-sparse filters
    (sparse by the layer's ``sparse_reference``)."""
    spec = HistogramSpec(Projection(basis, sparse_reference), low, high)
    return _histograms(store, {"": spec}, bins, threads, max_rows)[""][0]


def coefficient_histograms_of(store: FilterStore, specs: Mapping[str, HistogramSpec], bins: int, threads: int,
                              max_rows: int) -> dict[str, np.ndarray]:
    """Pass 3 for each of ``specs`` (by name) from one read: counts (n_layers, 9, bins) of each;
    specs on the same projection share its coefficients."""
    return {name: counts for name, (counts, _) in _histograms(store, specs, bins, threads, max_rows).items()}


def coefficient_histograms_with_outside(store: FilterStore, basis: Basis, low: float, high: float, bins: int,
                                        threads: int, max_rows: int, sparse_reference: str = DEFAULT_SPARSE_REFERENCE
                                        ) -> tuple[np.ndarray, np.ndarray]:
    """Pass 3 over a range made elsewhere (a reference bundle's): the counts (n_layers, 9, bins)
    and, per layer and component, the coefficients below ``low`` and above ``high`` (n_layers, 9, 2),
    which the counts leave out."""
    spec = HistogramSpec(Projection(basis, sparse_reference), low, high)
    return _histograms(store, {"": spec}, bins, threads, max_rows, outside=True)[""]


def _histograms(store: FilterStore, specs: Mapping[str, HistogramSpec], bins: int, threads: int, max_rows: int,
                outside: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    layouts = _Layout.by_reference(store, (s.projection.sparse_reference for s in specs.values()))
    by_projection: dict[Projection, list[str]] = {}
    for name, spec in specs.items():
        by_projection.setdefault(spec.projection, []).append(name)
    equal_bins = {name: EqualBins(spec.low, spec.high, bins) for name, spec in specs.items()}
    signs = {name: np.asarray(spec.signs, dtype=np.float64)[:, None] for name, spec in specs.items()
             if any(sign < 0 for sign in spec.signs)}

    def task(rows: np.ndarray, segment: Segment):
        out = []
        for piece in segment.pieces:
            counts = {name: np.zeros((N_COMPONENTS, bins), dtype=np.int64) for name in specs}
            beyond = {name: np.zeros((N_COMPONENTS, 2), dtype=np.int64) for name in specs}
            for projection, names in by_projection.items():
                for coefficients in _coefficient_blocks(layouts[projection.sparse_reference], projection.basis,
                                                        rows, segment, piece):
                    for name in names:
                        values = coefficients * signs[name] if name in signs else coefficients
                        counts[name] += equal_bins[name].counts(values)
                        if outside:
                            beyond[name][:, 0] += (values < equal_bins[name].low).sum(axis=1)
                            beyond[name][:, 1] += (values > equal_bins[name].high).sum(axis=1)
            out.append((piece.layer_id, counts, beyond))
        return out

    n_layers = len(store.table["layer_id"])
    total = {name: (np.zeros((n_layers, N_COMPONENTS, bins), dtype=np.int64),
                    np.zeros((n_layers, N_COMPONENTS, 2), dtype=np.int64)) for name in specs}
    for result in map_segments(store, _segments(store, max_rows), task, threads):
        for layer_id, piece_counts, piece_beyond in result:
            for name in specs:
                total[name][0][layer_id] += piece_counts[name]
                total[name][1][layer_id] += piece_beyond[name]
    return total
