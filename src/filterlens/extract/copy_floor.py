"""The copy floor of extraction (docs/benchmarks.md, "Where an extraction job's time goes").

A checkpoint's 3x3 weights written unprocessed into a Zarr array with the filter store's codec
and chunks, layer by layer as :class:`filterlens.extract.store.FilterStoreWriter` writes them.
An extraction job does this and more: it builds the model, plans its executed 3x3 layers,
folds BatchNorm, records the layer table and hashes the checkpoint. The scale run times a job
of each kind on the same checkpoints (rule copy_floor, config extraction.copy_floor_models).
"""

from __future__ import annotations

import os

import numpy as np
import zarr

from filterlens.acquire.checkpoint import load_checkpoint
from filterlens.extract.store import FILTERS, filter_codecs


def write_copy_floor(checkpoint_path: str | os.PathLike, path: str | os.PathLike, chunk_rows: int) -> int:
    """Write the 3x3 weights of the checkpoint at ``checkpoint_path`` (loaded and checked as
    extraction loads it: memory-mapped) into a Zarr group at ``path``; returns the filters."""
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
