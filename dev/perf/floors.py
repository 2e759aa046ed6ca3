"""What the workflow's jobs are timed against (docs/benchmarks.md): work of the same shape that
leaves out the part being measured. Nothing in the workflow uses these.

- :func:`write_copy_floor`, the copy floor of extraction ("Where an extraction job's time
  goes"): a checkpoint's 3x3 weights written unprocessed into a Zarr array with the filter
  store's codec and chunks, layer by layer as :class:`filterlens.extract.store.FilterStoreWriter`
  writes them. An extraction job does this and more: it builds the model, plans its executed 3x3
  layers, folds BatchNorm, records the layer table and hashes the checkpoint. The scale run times
  a job of each kind on the same checkpoints (rule copy_floor, dev/perf/rules/copy_floor.smk).
- :func:`sum_rows`, the read floor of the passes: a store decompressed and summed as the passes
  read it (their segments, their Dask tasks), and nothing else.
- :func:`summarize_without_orthogonality`, pass 1's streamed work (every piece summarized and
  merged per layer) without orthogonality's Gram products, the one compute-bound metric.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import zarr

from filterlens.extract.store import FILTERS, FilterStore, filter_codecs

if TYPE_CHECKING:
    from filterlens.method.pca import Moments
    from filterlens.reduce.streaming import Segment

# Each floor imports what its job imports, no more, in the function that needs it: a copy-floor
# job imports torch (as extraction) and not Dask; a read-only job Dask and not torch.


def write_copy_floor(checkpoint_path: str | os.PathLike, path: str | os.PathLike, chunk_rows: int) -> int:
    """Write the 3x3 weights of the checkpoint at ``checkpoint_path`` (loaded and checked as
    extraction loads it: memory-mapped) into a Zarr group at ``path``; returns the filters."""
    from filterlens.acquire.checkpoint import load_checkpoint

    state = load_checkpoint(checkpoint_path).state_dict
    weights = [w for w in state.values() if w.ndim == 4 and tuple(w.shape[-2:]) == (3, 3)]
    n_filters = sum(w.numel() // 9 for w in weights)
    array = zarr.open_group(str(path), mode="w", zarr_format=3).create_array(
        FILTERS, shape=(n_filters, 9), chunks=(max(1, min(chunk_rows, n_filters)), 9), dtype="float32",
        compressors=filter_codecs(), fill_value=np.nan)
    start = 0
    for weight in weights:
        rows = weight.detach().reshape(-1, 9).float().numpy()
        array[start:start + len(rows)] = rows
        start += len(rows)
    return n_filters


def _segments(store: FilterStore, max_rows: int) -> list[Segment]:
    from filterlens.reduce.streaming import plan_segments

    return plan_segments(store.table, store.filters.chunks[0], max_rows)


def sum_rows(store: FilterStore, threads: int, max_rows: int) -> float:
    """Decompress and sum every row of ``store`` as the passes read it and do nothing else."""
    from filterlens.reduce.streaming import map_segments

    results = map_segments(store, _segments(store, max_rows), lambda rows, _: rows.sum(dtype=np.float64), threads)
    return float(sum(results))


def summarize_without_orthogonality(store: FilterStore, threads: int, max_rows: int) -> list[Moments]:
    """Pass 1's pieces (filterlens.reduce.piece_summary) over the same segments and threads as
    filterlens.reduce.passes.summarize, merged per layer in row order; returns the scaled moments."""
    from filterlens.method.pca import Moments
    from filterlens.reduce.piece_summary import summarize_piece
    from filterlens.reduce.streaming import check_finite, map_segments

    max_abs = np.asarray(store.table["max_abs"], dtype=float)

    def task(rows: np.ndarray, segment: Segment):
        summaries = []
        for piece in segment.pieces:
            x = rows[piece.start - segment.start:piece.stop - segment.start]
            check_finite(x, store, piece.layer_id)
            summaries.append((piece.layer_id, summarize_piece(x, max_abs[piece.layer_id])))
        return summaries

    scaled = [Moments() for _ in range(len(max_abs))]
    for summaries in map_segments(store, _segments(store, max_rows), task, threads):
        for layer_id, summary in summaries:
            scaled[layer_id] = scaled[layer_id] + summary.scaled
    return scaled
