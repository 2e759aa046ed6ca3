"""The per-model filter store: one Zarr v3 group per model.

Layout (format version 1)::

    <model>.zarr/            group; attributes: format, format_version, model_id,
                             depth_method, fold_batchnorm, n_filters, layers (the layer table
                             as columns), plus whatever provenance the caller adds
    <model>.zarr/filters     (n, 9) float32, chunked along n, Blosc-zstd + CRC32C

The CRC32C codec makes a corrupted chunk fail loudly on read, and the NaN fill value makes a
missing chunk visible; :func:`open_filter_store` checks both cheaply (chunk presence) and the
reductions check the rest as they stream.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import zarr
from zarr.codecs import BloscCodec, BloscShuffle, Crc32cCodec

from filterlens.atomic import atomic_output
from filterlens.layertable import Layer

FORMAT = "filterlens-filters"
FORMAT_VERSION = 1
FILTERS = "filters"
LAYER_COLUMNS = [f for f in Layer.__dataclass_fields__]


class FilterStoreError(ValueError):
    """A filter store that cannot be used; the message names the store and the fix."""


def _codecs() -> tuple:
    return (BloscCodec(cname="zstd", clevel=3, shuffle=BloscShuffle.shuffle), Crc32cCodec())


class FilterStoreWriter:
    """Write one model's filters layer by layer into ``path`` (atomically, see ``atomic``)."""

    def __init__(self, path: str | os.PathLike, n_filters: int, chunk_rows: int, attrs: dict[str, Any]):
        self._context = atomic_output(path)
        self._temporary = self._context.__enter__()
        self._group = zarr.open_group(str(self._temporary), mode="w", zarr_format=3)
        self._array = self._group.create_array(
            FILTERS,
            shape=(n_filters, 9),
            chunks=(max(1, min(chunk_rows, n_filters)), 9),
            dtype="float32",
            compressors=_codecs(),
            fill_value=np.nan,
        )
        self._attrs = {"format": FORMAT, "format_version": FORMAT_VERSION, "n_filters": n_filters, **attrs}
        self._layers: list[Layer] = []

    def write_layer(self, layer: Layer, rows: np.ndarray) -> None:
        if rows.shape != (layer.n_filters, 9):
            raise ValueError(f"layer {layer.name}: rows of shape {rows.shape}, expected ({layer.n_filters}, 9)")
        self._array[layer.row_start : layer.row_stop] = rows
        max_abs = float(np.abs(rows).max()) if len(rows) else 0.0
        self._layers.append(dataclasses.replace(layer, max_abs=max_abs))

    def close(self) -> None:
        try:
            table = {c: [getattr(layer, c) for layer in self._layers] for c in LAYER_COLUMNS}
            self._group.attrs.update({**self._attrs, "layers": table})
        except BaseException as error:
            self.abort(error)
        self._context.__exit__(None, None, None)

    def abort(self, error: BaseException) -> None:
        """Remove what was written and raise ``error`` (as :class:`OutputWriteError` when the
        file system ran out of space or is read-only)."""
        try:
            self._context.__exit__(type(error), error, error.__traceback__)
        except BaseException as raised:
            if raised is not error:
                raise raised from error
        raise error

    def __enter__(self) -> "FilterStoreWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.close()
        else:
            self.abort(exc)  # raises exc, or the OutputWriteError it stands for


@dataclass
class FilterStore:
    path: Path
    filters: zarr.Array
    layers: pd.DataFrame
    attrs: dict[str, Any]

    @property
    def model_id(self) -> str:
        return self.attrs.get("model_id", self.path.stem)


def open_filter_store(path: str | os.PathLike) -> FilterStore:
    """Open and check a filter store; raise :class:`FilterStoreError` naming the problem and fix."""
    path = Path(path)
    fix = f"Fix: delete {path} and extract it again (snakemake --forcerun extract_filters {path})."
    try:
        group = zarr.open_group(str(path), mode="r")
        attrs = dict(group.attrs)
        array = group[FILTERS]
    except Exception as error:
        raise FilterStoreError(f"{path} is not a readable filter store ({error}). {fix}") from error
    if attrs.get("format") != FORMAT or attrs.get("format_version") != FORMAT_VERSION:
        raise FilterStoreError(
            f"{path} has format {attrs.get('format')!r} version {attrs.get('format_version')!r}; "
            f"this filterlens reads {FORMAT!r} version {FORMAT_VERSION}. {fix}"
        )
    n = attrs.get("n_filters")
    if array.dtype != np.float32 or array.ndim != 2 or array.shape[1:] != (9,) or array.shape[0] != n:
        raise FilterStoreError(
            f"{path}: filters are {array.dtype} of shape {array.shape}, expected float32 of shape ({n}, 9). {fix}"
        )
    if array.nchunks_initialized != array.nchunks:
        raise FilterStoreError(
            f"{path}: {array.nchunks - array.nchunks_initialized} of {array.nchunks} chunks are missing. {fix}"
        )
    layers = pd.DataFrame(attrs["layers"], columns=LAYER_COLUMNS)
    if len(layers) and (layers.row_start.iloc[0] != 0 or layers.row_stop.iloc[-1] != n
                        or (layers.row_start.iloc[1:].to_numpy() != layers.row_stop.iloc[:-1].to_numpy()).any()):
        raise FilterStoreError(f"{path}: the layer table's row ranges do not tile the {n} filters. {fix}")
    return FilterStore(path, array, layers, attrs)
