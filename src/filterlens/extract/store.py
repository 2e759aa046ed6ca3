"""The per-model filter store: one Zarr v3 group per model; its format, writer and reader.

Layout (format version 4)::

    <model>.zarr/            group; attributes: format, format_version, model_id,
                             depth_method, depth_definition (which definition the layer table's
                             conv_depth / conv_depth_norm and max_conv_depth use), max_conv_depth,
                             max_conv_depths (by definition), fold_batchnorm, n_filters, layers
                             (the layer table as columns, with the depth under every definition:
                             conv_depth_graph_level, conv_depth_conv_count, and both sparse
                             references: max_abs, max_row_sum), plus whatever provenance the
                             caller adds
    <model>.zarr/filters     (n, 9) float32, chunked along n, Blosc-LZ4 with bit shuffle + CRC32C

The attributes of a model's extraction are derived from its plan by
:func:`filterlens.extract.weights.write_filter_store`; :class:`FilterStoreWriter` writes what it
is given.

Version 3 stores lack the layer table's max_row_sum (the reference of
analysis.sparse_reference: max_row_sum), and version 2 stores also differ in the codec
(Blosc-zstd level 3, byte shuffle): Zarr reads each array's codecs from its own metadata, so both
are read as they are (:data:`READABLE_VERSIONS`), their max_row_sum None, and
:func:`sparse_references` refuses that reference for them naming the upgrade. The codec was
chosen by measurement (docs/benchmarks.md, "The store's codec").

Stores of versions 1 to 3 are upgraded in place to version 4 by `filterlens upgrade-stores`
(:mod:`filterlens.extract.store_upgrade`), the filters untouched.
Switching the depth definition of an analysis is :func:`with_depth_definition`, in memory.

The CRC32C codec makes a corrupted chunk fail loudly on read, and the NaN fill value makes a
missing chunk visible; :func:`open_filter_store` checks both cheaply (chunk presence), with the
checks of :mod:`filterlens.extract.store_checks`, and the reductions check the rest as they stream.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, BloscShuffle, Crc32cCodec

from filterlens.config.depth_definitions import check_depth_definition
from filterlens.extract.layer_table import LAYER_COLUMNS, Layer
from filterlens.extract.store_checks import (codec_problem, file_problem, layer_table_problem, store_problems,
                                             zarr_chunk_problem)
from filterlens.io.arrays import abs_max
from filterlens.io.atomic import atomic_output
from filterlens.method.filters import check_sparse_reference, layer_reference

if TYPE_CHECKING:
    import pandas as pd

FORMAT = "filterlens-filters"
FORMAT_VERSION = 4
# Versions 2 and 3 lack the layer table's max_row_sum (read as None); version 2 differs in the
# filters' codec too, which Zarr reads from each array's metadata.
READABLE_VERSIONS = (2, 3, 4)
NO_MAX_ROW_SUM = (2, 3)
FILTERS = "filters"
UPGRADE_COMMAND = "filterlens upgrade-stores --configfile <the run's config> {path}"


class FilterStoreError(ValueError):
    """A filter store that cannot be used; the message names the store and the fix."""


def filter_codecs() -> tuple:
    """The filters array's codecs: Blosc, then a CRC32C checksum that makes a damaged chunk fail on read."""
    # LZ4 with bit shuffle stores float32 weights about as small as zstd with byte shuffle and
    # decodes faster, and every pass pays the decode (docs/benchmarks.md, "The store's codec").
    return (BloscCodec(cname="lz4", clevel=5, shuffle=BloscShuffle.bitshuffle), Crc32cCodec())


class FilterStoreWriter:
    """Write one model's filters layer by layer into ``path`` (atomically, see ``atomic``)."""

    def __init__(self, path: str | os.PathLike, n_filters: int, chunk_rows: int, attrs: dict[str, Any]):
        self._context = atomic_output(path)
        self._temporary = self._context.__enter__()
        try:
            self._group = zarr.open_group(str(self._temporary), mode="w", zarr_format=3)
            self._array = self._group.create_array(
                FILTERS,
                shape=(n_filters, 9),
                chunks=(max(1, min(chunk_rows, n_filters)), 9),
                dtype="float32",
                compressors=filter_codecs(),
                fill_value=np.nan,
            )
        except BaseException as error:
            self.abort(error)
        self._attrs = {"format": FORMAT, "format_version": FORMAT_VERSION, "n_filters": n_filters, **attrs}
        self._layers: list[Layer] = []

    def write_layer(self, layer: Layer, rows: np.ndarray) -> None:
        if rows.shape != (layer.n_filters, 9):
            raise ValueError(f"layer {layer.name}: rows of shape {rows.shape}, expected ({layer.n_filters}, 9)")
        self._array[layer.row_start : layer.row_stop] = rows
        max_abs = abs_max(rows) if len(rows) else 0.0
        # the row sums of the float32 rows the store holds
        max_row_sum = layer_reference(rows.astype(np.float32, copy=False), "max_row_sum")
        self._layers.append(dataclasses.replace(layer, max_abs=max_abs, max_row_sum=max_row_sum))

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
    table: dict[str, list]  # the layer table: LAYER_COLUMNS as lists, rows in layer_id order 0..n-1
    attrs: dict[str, Any]

    @property
    def model_id(self) -> str:
        return self.attrs.get("model_id", self.path.stem)

    @functools.cached_property
    def layers(self) -> pd.DataFrame:
        """The layer table as a DataFrame. pandas is imported on first use: the reduction passes
        read ``table`` and their jobs need not import it (docs/benchmarks.md)."""
        import pandas as pd

        return pd.DataFrame(self.table, columns=LAYER_COLUMNS)


def open_filter_store(path: str | os.PathLike) -> FilterStore:
    """Open and check a filter store; raise :class:`FilterStoreError` naming the problem and fix."""
    path = Path(path)
    fix = f"Fix: delete {path} and extract it again (snakemake --forcerun extract_filters {path})."
    if problem := file_problem(path):
        raise FilterStoreError(f"{path}: {problem}. {fix}")
    try:
        group = zarr.open_group(str(path), mode="r")
        attrs = dict(group.attrs)
        array = group[FILTERS]
    except Exception as error:
        raise FilterStoreError(f"{path} is not a readable filter store ({error}). {fix}") from error
    if attrs.get("format") == FORMAT and attrs.get("format_version") == 1:
        raise FilterStoreError(
            f"{path} has format version 1 (one depth per layer, counting convs); this filterlens reads versions "
            f"{_versions()} (depths under every definition). Fix: upgrade it in place, filters untouched: "
            f"{UPGRADE_COMMAND.format(path=path)}")
    if attrs.get("format") != FORMAT or attrs.get("format_version") not in READABLE_VERSIONS:
        raise FilterStoreError(
            f"{path} has format {attrs.get('format')!r} version {attrs.get('format_version')!r}; "
            f"this filterlens reads {FORMAT!r} versions {_versions()}. {fix}"
        )
    n = attrs.get("n_filters")
    if array.dtype != np.float32 or array.ndim != 2 or array.shape[1:] != (9,) or array.shape[0] != n:
        raise FilterStoreError(
            f"{path}: filters are {array.dtype} of shape {array.shape}, expected float32 of shape ({n}, 9). {fix}"
        )
    if problem := codec_problem(array) or zarr_chunk_problem(path / FILTERS, array, FILTERS):
        raise FilterStoreError(f"{path}: {problem}. {fix}")
    if array.nchunks_initialized != array.nchunks:
        raise FilterStoreError(
            f"{path}: {array.nchunks - array.nchunks_initialized} of {array.nchunks} chunks are missing. {fix}"
        )
    layers = attrs.get("layers")
    if attrs["format_version"] in NO_MAX_ROW_SUM and isinstance(layers, dict) and "max_row_sum" not in layers:
        layers = {**layers, "max_row_sum": [None] * len(layers.get("max_abs") or [])}
    if problem := layer_table_problem(layers):
        raise FilterStoreError(f"{path}: {problem}. {fix}")
    table = {c: layers[c] for c in LAYER_COLUMNS}
    if problems := store_problems(attrs, table, n, array.chunks):
        raise FilterStoreError(_listed(path, problems, fix))
    return FilterStore(path, array, table, attrs)


def _versions() -> str:
    return ", ".join(str(v) for v in READABLE_VERSIONS[:-1]) + f" and {READABLE_VERSIONS[-1]}"


def sparse_references(store: FilterStore, reference: str) -> list[float]:
    """Per layer (in layer_id order) the sparse reference ``reference`` (config
    analysis.sparse_reference, docs/method.md §3): the layer table's column of that name.

    A store of format version 2 or 3 has no max_row_sum: :class:`FilterStoreError` names the
    upgrade that computes it from the store's own rows."""
    check_sparse_reference(reference)
    values = store.table[reference]
    if any(v is None for v in values):
        raise FilterStoreError(
            f"{store.path} (model {store.model_id}) has format version {store.attrs.get('format_version')}, whose "
            f"layer table has no {reference} (the sparse reference that analysis.sparse_reference: {reference} "
            f"names). Fix: add it in place from the store's own rows, filters untouched: "
            f"{UPGRADE_COMMAND.format(path=store.path)}; or set analysis.sparse_reference: max_abs (and "
            f"analysis.sensitivity: false, whose variant {reference} needs it too).")
    return [float(v) for v in values]


def with_depth_definition(store: FilterStore, definition: str | None) -> FilterStore:
    """``store`` with conv_depth, conv_depth_norm and max_conv_depth under ``definition``
    (docs/method.md), taken from the per-definition columns; the filters are not read.

    ``None`` keeps the store's own. A definition the store does not record (a filter database
    import knows the authors' depth only) raises :class:`FilterStoreError`.
    """
    if definition is None or store.attrs.get("depth_definition") == definition:
        return store
    check_depth_definition(definition)
    column = f"conv_depth_{definition}"
    max_depth = (store.attrs.get("max_conv_depths") or {}).get(definition)
    depths = store.table.get(column)
    if depths is None or max_depth is None or any(_is_missing(v) for v in depths):
        raise FilterStoreError(
            f"{store.path} (model {store.model_id}, depth by {store.attrs.get('depth_method')!r}) records no depth "
            f"under the definition {definition!r}, only {store.attrs.get('depth_definition')!r}. Fix: set "
            f"analysis.depth_definition: {store.attrs.get('depth_definition')} for it, or extract it from a "
            f"checkpoint.")
    depth = [int(v) for v in depths]
    table = {**store.table, "conv_depth": depth,
             "conv_depth_norm": [d / max_depth if max_depth else 0.0 for d in depth]}
    attrs = {**store.attrs, "depth_definition": definition, "max_conv_depth": int(max_depth)}
    return FilterStore(store.path, store.filters, table, attrs)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


def _listed(path: Path, problems: list[str], fix: str) -> str:
    if len(problems) == 1:
        return f"{path}: {problems[0]}. {fix}"
    return f"{path} is inconsistent ({len(problems)} problems; {fix}):\n  - " + "\n  - ".join(problems)


def check_store_matches(store: FilterStore, model_id: str, dataset: str | None, max_rows: int | None = None) -> None:
    """The store is the sheet's model: its model_id and dataset attributes equal the sheet
    row's (``dataset`` None: not compared), and (with ``max_rows``, the rows a job's task may
    hold) one chunk fits a task.

    Raises :class:`FilterStoreError` listing every mismatch with the fix.
    """
    problems = []
    for field, expected in (("model_id", model_id), ("dataset", dataset)):
        if expected is None:
            continue
        found = store.attrs.get(field)
        if found is None:
            problems.append(f"attribute {field} is missing (the sheet says {expected!r})")
        elif found != expected:
            problems.append(f"attribute {field} is {found!r}, but the sheet's row is {expected!r}: "
                            "the store holds another model")
    chunk_rows = store.filters.chunks[0]
    if max_rows is not None and chunk_rows > max_rows:
        problems.append(f"its chunks of {chunk_rows} rows do not fit this job's memory ({max_rows} rows a task; "
                        "raise the rule's mem_mb or extract with a smaller extraction.chunk_rows)")
    if problems:
        fix = (f"Fix: delete {store.path} and extract it again for {model_id} "
               f"(snakemake --forcerun extract_filters {store.path}).")
        raise FilterStoreError(_listed(store.path, problems, fix))
