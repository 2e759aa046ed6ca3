"""Stream a filter store through Dask in bounded memory, with results that do not depend on
how the work was split.

The store's rows are read in *segments* (one Dask task each, sized from the job's memory):
runs of whole layers, or parts of one layer too large for a segment. Inside a segment the
work is done per *piece*: the rows of one layer within one store chunk. Pieces depend only on
the store (its chunking and layer table), never on memory or threads, and their results are
merged in row order, so sums are bitwise the same whatever the segment size, the number of
threads or the scheduling (BLAS is held to one thread per task for the same reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import dask
import numpy as np
from threadpoolctl import threadpool_limits

from filterlens.extract.store import FilterStore, FilterStoreError
from filterlens.io.arrays import all_finite

# Bytes held per filter row of a segment while a task works on it: the float32 row (36) and, in
# pass 1, orthogonality's unit rows of a whole layer (72 in float64, below 256 channels). Every
# other temporary is per piece (within one store chunk) or per block of rows: bounded by the
# chunk, not by the segment.
BYTES_PER_ROW_IN_FLIGHT = 36 + 72
BASELINE_MB = 400  # interpreter, numpy, zarr, dask, numba and pandas (pass 1), the layer table
# Whole layers are grouped into segments of about this many rows, fewer than memory allows, so
# that a store is enough tasks to keep every thread busy to its end. A layer is split only
# where memory requires it: a split layer's orthogonality reads it from the store again.
GROUP_ROWS = 1 << 20


@dataclass(frozen=True)
class Piece:
    layer_id: int
    start: int
    stop: int


@dataclass(frozen=True)
class Segment:
    start: int
    stop: int
    pieces: tuple[Piece, ...]
    whole_layers: tuple[int, ...]  # layers entirely inside this segment


def rows_per_segment(mem_mb: int, threads: int) -> int:
    """Rows a task may hold so that ``threads`` tasks fit in ``mem_mb`` with room to spare."""
    budget = max(mem_mb - BASELINE_MB, 64) * 2**20 * 0.5
    return max(4096, int(budget // (max(threads, 1) * BYTES_PER_ROW_IN_FLIGHT)))


@dataclass(frozen=True)
class _Rows:
    layer_id: int
    row_start: int
    row_stop: int


def _layer_rows(layers) -> list[_Rows]:
    columns = (list(layers[c]) for c in ("layer_id", "row_start", "row_stop"))
    return [_Rows(*values) for values in zip(*columns, strict=True)]


def plan_segments(layers, chunk_rows: int, max_rows: int, group_rows: int = GROUP_ROWS) -> list[Segment]:
    """Group whole layers into segments of at most ``min(max_rows, group_rows)`` rows (a layer
    larger than that is a segment of its own; one larger than ``max_rows`` is split at
    store-chunk boundaries), and cut each segment into pieces at chunk boundaries.

    ``layers``: columns layer_id, row_start and row_stop, rows in row order (a DataFrame or a
    store's ``table``)."""
    layers = _layer_rows(layers)
    group_limit = min(max_rows, group_rows)
    spans: list[tuple[int, int]] = []  # segment row ranges
    start = stop = None
    for layer in layers:
        if stop is not None and layer.row_stop - start > group_limit:
            if stop > start:  # nothing is left when a split ended at its layer's end
                spans.append((start, stop))
            start = None
        if start is None:
            start = layer.row_start
        stop = layer.row_stop
        if stop - start > max_rows:  # one layer larger than a segment: split it at chunk bounds
            step = max(chunk_rows, max_rows // chunk_rows * chunk_rows)
            cut = start
            while stop - cut > max_rows:
                # never past the layer: a chunk larger than max_rows can reach beyond it
                next_cut = min(stop, (cut // chunk_rows) * chunk_rows + step)
                spans.append((cut, next_cut))
                cut = next_cut
            start = cut
    if start is not None and stop > start:
        spans.append((start, stop))
    return [_segment(a, b, layers, chunk_rows) for a, b in spans]


def _segment(start: int, stop: int, layers: list[_Rows], chunk_rows: int) -> Segment:
    pieces, whole = [], []
    for layer in layers:
        a, b = max(start, layer.row_start), min(stop, layer.row_stop)
        if a >= b:
            continue
        if layer.row_start >= start and layer.row_stop <= stop:
            whole.append(layer.layer_id)
        cut = a
        while cut < b:
            next_cut = min(b, (cut // chunk_rows + 1) * chunk_rows)
            pieces.append(Piece(layer.layer_id, cut, next_cut))
            cut = next_cut
    return Segment(start, stop, tuple(pieces), tuple(whole))


def map_segments(store: FilterStore, segments: Sequence[Segment], task: Callable[[np.ndarray, Segment], Any],
                 threads: int) -> list[Any]:
    """Run ``task(rows, segment)`` on every segment, ``threads`` at a time, each reading its
    own rows (so at most ``threads`` segments are in memory); results in order.

    A segment that cannot be read (a corrupt or truncated chunk) is reported by layer.
    """
    def run(segment: Segment) -> Any:
        return task(store.filters[segment.start:segment.stop], segment)

    try:
        return map_threads(run, segments, threads)
    except FilterStoreError:
        raise
    except Exception as error:
        raise _locate_unreadable(store, segments, error) from error


def map_threads(function: Callable[[Any], Any], items: Sequence[Any], threads: int) -> list[Any]:
    """``function(item)`` for every item on Dask's threaded scheduler with ``threads`` workers,
    BLAS at one thread per task (results do not depend on the scheduling); results in order.

    Tasks are plain ``dask.delayed`` calls, each reading its own rows from Zarr: the job imports
    Dask's scheduler, not ``dask.array`` (docs/benchmarks.md, "Imports")."""
    tasks = [dask.delayed(function, pure=False)(item) for item in items]
    with threadpool_limits(1):
        return list(dask.compute(*tasks, scheduler="threads", num_workers=max(1, threads)))


def _locate_unreadable(store: FilterStore, segments: Sequence[Segment], error: Exception) -> Exception:
    """Find, piece by piece, the layers whose chunks cannot be read (only on the error path)."""
    names = store.table["name"]  # by layer_id: the store's layer ids are 0..n-1 in order
    failed: dict[str, Exception] = {}
    for piece in (p for s in segments for p in s.pieces):
        try:
            store.filters[piece.start:piece.stop]
        except Exception as read_error:
            failed.setdefault(names[piece.layer_id], read_error)
    if not failed:
        return error
    return FilterStoreError(
        f"{store.path} (model {store.model_id}): layer(s) {', '.join(failed)} cannot be read "
        f"({next(iter(failed.values()))}). Fix: delete {store.path} and extract it again.")


def check_finite(rows: np.ndarray, store: FilterStore, layer_id: int) -> None:
    if not all_finite(rows):
        name = store.table["name"][layer_id]
        raise FilterStoreError(
            f"{store.path} (model {store.model_id}): layer {name} holds NaN or Inf values (or a missing "
            f"chunk read as NaN). Fix: delete {store.path} and extract it again from a good checkpoint.")
