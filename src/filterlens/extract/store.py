"""The per-model filter store: one Zarr v3 group per model.

Layout (format version 3)::

    <model>.zarr/            group; attributes: format, format_version, model_id,
                             depth_method, depth_definition (which definition the layer table's
                             conv_depth / conv_depth_norm and max_conv_depth use), max_conv_depth,
                             max_conv_depths (by definition), fold_batchnorm, n_filters, layers
                             (the layer table as columns, with the depth under every definition:
                             conv_depth_graph_level, conv_depth_conv_count), plus whatever
                             provenance the caller adds
    <model>.zarr/filters     (n, 9) float32, chunked along n, Blosc-LZ4 with bit shuffle + CRC32C

Version 2 stores differ in the codec only (Blosc-zstd level 3, byte shuffle): Zarr reads each
array's codecs from its own metadata, so they are read as they are (:data:`READABLE_VERSIONS`).
The codec was chosen by measurement (docs/benchmarks.md, "The store's codec").

Version 1 stores (one depth, counting convs) are upgraded in place to version 3 by
`filterlens upgrade-stores` (filterlens.cli.upgrade_stores): it recomputes both depths from the
architecture on the ``meta`` device and rewrites the attributes only, the filters (and their
codec) untouched (:func:`upgraded_attrs`).
Switching the depth definition of an analysis is :func:`with_depth_definition`, in memory.

The CRC32C codec makes a corrupted chunk fail loudly on read, and the NaN fill value makes a
missing chunk visible; :func:`open_filter_store` checks both cheaply (chunk presence) and the
reductions check the rest as they stream.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import itertools
import math
import os
import stat
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, BloscShuffle, BytesCodec, Crc32cCodec

from filterlens.config.depth_definitions import check_depth_definition
from filterlens.extract.layer_table import Layer
from filterlens.io.arrays import abs_max
from filterlens.io.atomic import atomic_output

if TYPE_CHECKING:
    import pandas as pd

FORMAT = "filterlens-filters"
FORMAT_VERSION = 3
READABLE_VERSIONS = (2, 3)  # the same layout; the filters' codec is in each array's metadata
FILTERS = "filters"
UPGRADE_COMMAND = "filterlens upgrade-stores --configfile <the run's config> {path}"
LAYER_COLUMNS = [f for f in Layer.__dataclass_fields__]


# What a store may hold before any of it is decoded (docs/faults.md, "Damaged filter stores"):
# metadata documents of at most this size (a layer table of thousands of layers is a few MB)...
MAX_METADATA_BYTES = 64 * 2**20
# ...and chunks of at most this size once decoded: a reader holds a few chunks at once.
MAX_CHUNK_BYTES = 256 * 2**20
# The codecs the writer uses (Blosc's compressor and shuffle vary with the format version).
STORE_CODECS = (BytesCodec, BloscCodec, Crc32cCodec)
BLOSC_HEADER = struct.Struct("<4xIII")  # version, versionlz, flags, typesize; nbytes, blocksize, cbytes


class FilterStoreError(ValueError):
    """A filter store that cannot be used; the message names the store and the fix."""


def filter_codecs() -> tuple:
    """The filters array's codecs: Blosc, then a CRC32C checksum that makes a damaged chunk fail on read."""
    # LZ4 with bit shuffle stores float32 weights as small as zstd-3 with byte shuffle and
    # decodes in half the time or less; every pass pays the decode (docs/benchmarks.md).
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
    if problem := _file_problem(path):
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
    if problem := _codec_problem(array) or zarr_chunk_problem(path / FILTERS, array, FILTERS):
        raise FilterStoreError(f"{path}: {problem}. {fix}")
    if array.nchunks_initialized != array.nchunks:
        raise FilterStoreError(
            f"{path}: {array.nchunks - array.nchunks_initialized} of {array.nchunks} chunks are missing. {fix}"
        )
    table = _layer_table(path, attrs, fix)
    if problems := store_problems(attrs, table, n, array.chunks):
        raise FilterStoreError(_listed(path, problems, fix))
    return FilterStore(path, array, table, attrs)


def _file_problem(path: Path) -> str | None:
    """Why the store's folder holds something other than its own folders and regular files, or
    metadata beyond MAX_METADATA_BYTES: a symlink (which could lead anywhere), a special file."""
    if not path.is_dir() or path.is_symlink():
        return "is not a readable filter store (not a folder: a store is a folder of files)"
    for folder, folders, files in os.walk(path):
        for name in folders + files:
            entry = Path(folder) / name
            mode = entry.lstat().st_mode
            if stat.S_ISLNK(mode):
                return f"{entry.relative_to(path)} is a symlink; a store is read from its own files alone"
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                return f"{entry.relative_to(path)} is not a regular file"
            if name == "zarr.json" and entry.stat().st_size > MAX_METADATA_BYTES:
                return f"{entry.relative_to(path)} holds {entry.stat().st_size} bytes, above {MAX_METADATA_BYTES}"
    return None


def _codec_problem(array: zarr.Array) -> str | None:
    """Why the filters are not stored as the writer stores them: Zarr v3, Blosc then CRC32C."""
    metadata = array.metadata
    if getattr(metadata, "zarr_format", None) != 3:
        return f"the filters are a Zarr v{getattr(metadata, 'zarr_format', '?')} array; stores are Zarr v3"
    kinds = tuple(type(codec) for codec in metadata.codecs)
    if kinds != STORE_CODECS:
        names = ", ".join(kind.__name__ for kind in kinds)
        return f"the filters' codecs are {names}; a store's are {', '.join(k.__name__ for k in STORE_CODECS)}"
    return None


def zarr_chunk_problem(folder: Path, array: zarr.Array, name: str) -> str | None:
    """Why a chunk of the Blosc-compressed Zarr v3 ``array`` (stored under ``folder``) would
    decode to more than its declared shape: chunks above MAX_CHUNK_BYTES, or a chunk whose Blosc
    header announces more (Blosc allocates what the header says, so a crafted header is a
    decompression bomb). A chunk that is short or damaged otherwise fails on read."""
    expected = array.dtype.itemsize * math.prod(array.chunks)
    if expected > MAX_CHUNK_BYTES:
        return f"the {name}' chunks {array.chunks} decode to {expected} bytes, above {MAX_CHUNK_BYTES}"
    encode = array.metadata.chunk_key_encoding.encode_chunk_key
    for coords in itertools.product(*(range(-(-n // c)) for n, c in zip(array.shape, array.chunks))):
        chunk = folder / encode(coords)
        if not chunk.is_file():
            continue  # a missing chunk is reported with the count of them
        with open(chunk, "rb") as handle:
            header = handle.read(BLOSC_HEADER.size)
        if len(header) == BLOSC_HEADER.size and (decoded := BLOSC_HEADER.unpack(header)[0]) > expected:
            return (f"chunk {encode(coords)} of the {name} ({chunk.stat().st_size} bytes) announces {decoded} "
                    f"bytes decoded, above the {expected} of the array's chunk shape")
    return None


def _versions() -> str:
    return " and ".join(str(v) for v in READABLE_VERSIONS)


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


def upgraded_attrs(attrs: dict[str, Any], plan_layers: list[Layer] | None, max_conv_depths: dict[str, int | None],
                   what: str) -> dict[str, Any]:
    """Current-version attributes of a version-1 store whose attributes are ``attrs``, from the layer
    table the architecture gives (``plan_layers``, any definition: both depths are in it) or, for
    a filter database import (``plan_layers`` None), from the recorded depth, which is the
    authors' graph level. Shapes, names and row ranges must agree with the store's; max |W| and
    the folding flags are kept. Raise :class:`FilterStoreError` naming ``what`` on a mismatch."""
    import pandas as pd

    old = pd.DataFrame(attrs["layers"])
    if plan_layers is None:
        new = old.assign(conv_depth_graph_level=old.conv_depth, conv_depth_conv_count=None)
        definition = "graph_level"
    else:
        plan = pd.DataFrame([layer.as_dict() for layer in plan_layers])
        keys = ["name", "c_in", "c_out", "groups", "row_start", "row_stop"]
        if len(plan) != len(old) or not (plan[keys].to_numpy() == old[keys].to_numpy()).all():
            raise FilterStoreError(
                f"{what}: the architecture's 3x3 layers (names, shapes, row ranges) differ from the store's; it was "
                f"not extracted from this architecture. Fix: delete it and extract it again.")
        if attrs.get("depth_method") == "fx" and (plan.conv_depth_conv_count.to_numpy()
                                                   != old.conv_depth.to_numpy()).any():
            raise FilterStoreError(f"{what}: the store's depths differ from the architecture's conv counts. "
                                   f"Fix: delete it and extract it again.")
        definition = "graph_level"
        max_depth = max_conv_depths[definition]
        new = old.assign(conv_depth=plan.conv_depth_graph_level,
                         conv_depth_norm=plan.conv_depth_graph_level / max_depth if max_depth else 0.0,
                         conv_depth_graph_level=plan.conv_depth_graph_level,
                         conv_depth_conv_count=plan.conv_depth_conv_count)
    table = {c: [None if pd.isna(v) else v for v in new[c].tolist()] if c in new else [None] * len(new)
             for c in LAYER_COLUMNS}
    return {**attrs, "format_version": FORMAT_VERSION, "upgraded_from_format_version": attrs["format_version"],
            "depth_definition": definition, "max_conv_depth": max_conv_depths[definition],
            "max_conv_depths": max_conv_depths, "layers": table}


def rewrite_attrs(path: str | os.PathLike, attrs: dict[str, Any]) -> None:
    """Replace the group attributes of the store at ``path`` (its zarr.json, atomically by a
    rename); the filters array is not touched."""
    path = Path(path)
    metadata_path = path / "zarr.json"
    metadata = json.loads(metadata_path.read_text())
    if metadata.get("node_type") != "group":
        raise FilterStoreError(f"{path}: zarr.json is not a group's metadata. Fix: delete it and extract it again.")
    metadata["attributes"] = attrs
    temporary = metadata_path.with_name("zarr.json.upgrade")
    temporary.write_text(json.dumps(metadata, indent=2))
    os.replace(temporary, metadata_path)


# --- consistency of a store with itself and with the sheet ---------------------------------
#
# Every check names the field it found wrong; the message adds the store and the fix. The
# checks cover the columns of filterlens.extract.layer_table.Layer and the attributes the writers set.

MAX_DEPTH = 2**31 - 1  # a depth beyond any network: the limit of the integer columns downstream
INTEGER_COLUMNS = ("layer_id", "conv_depth", "c_in", "c_out", "groups", "row_start", "row_stop")


def _listed(path: Path, problems: list[str], fix: str) -> str:
    if len(problems) == 1:
        return f"{path}: {problems[0]}. {fix}"
    return f"{path} is inconsistent ({len(problems)} problems; {fix}):\n  - " + "\n  - ".join(problems)


def _layer_table(path: Path, attrs: dict[str, Any], fix: str) -> dict[str, list]:
    """The ``layers`` attribute's columns; a missing, ragged or column-less table is an error."""
    table = attrs.get("layers")
    if not isinstance(table, dict):
        what = "is missing" if table is None else f"is a {type(table).__name__}, not a table of columns"
        raise FilterStoreError(f"{path}: attribute 'layers' (the layer table) {what}. {fix}")
    if missing := [c for c in LAYER_COLUMNS if c not in table]:
        raise FilterStoreError(f"{path}: the layer table has no column(s) {', '.join(missing)}. {fix}")
    lengths = {c: len(v) if isinstance(v, list) else None for c, v in table.items() if c in LAYER_COLUMNS}
    if None in lengths.values() or len(set(lengths.values())) != 1:
        raise FilterStoreError(f"{path}: the layer table's columns are not lists of one length ({lengths}). {fix}")
    return {c: table[c] for c in LAYER_COLUMNS}


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _finite_in(value: Any, low: float, high: float) -> bool:
    """A finite number in [low, high]; an integer too large for a float is none."""
    try:
        return _is_number(value) and math.isfinite(float(value)) and low <= value <= high
    except OverflowError:
        return False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def store_problems(attrs: dict[str, Any], table: dict[str, list], n_filters: Any, chunks: tuple) -> list[str]:
    """Every way the store's attributes and layer table contradict each other or the array:
    layer ids 0..n-1 in order, row ranges that tile the rows (contiguous, non-overlapping),
    c_out x c_in/groups rows per layer, groups >= 1 dividing c_in and c_out, a non-empty table,
    depths within the model's maximum, a finite max |W|, chunks of whole filter rows."""
    layers = {c: _objects(table[c]) for c in LAYER_COLUMNS}  # values as stored
    problems: list[str] = []
    if not _is_int(n_filters) or n_filters < 0:
        return [f"attribute n_filters is {n_filters!r}, not a count of filters"]
    if len(chunks) != 2 or chunks[1] != 9 or not chunks[0] >= 1:
        problems.append(f"the filters' chunk shape {tuple(chunks)} is not (rows, 9)")
    if len(layers["layer_id"]) == 0:
        return problems + ["the layer table is empty (a store holds at least one 3x3 layer)"]
    for column in INTEGER_COLUMNS:
        bad = [_plain(v) for v in layers[column] if not _is_int(v)]
        if bad:
            problems.append(f"layer table column {column} holds non-integers {bad[:3]}")
    bad_bool = [_plain(v) for v in layers["bn_folded"] if not isinstance(v, (bool, np.bool_))]
    if bad_bool:
        problems.append(f"layer table column bn_folded holds non-booleans {bad_bool[:3]}")
    bad_names = [v for v in layers["name"] if not isinstance(v, str) or not v]
    if bad_names:
        problems.append(f"layer table column name holds empty or non-text names {bad_names[:3]}")
    elif duplicated := sorted(name for name, count in Counter(layers["name"]).items() if count > 1):
        problems.append(f"layer table column name repeats {duplicated[:3]}")
    if problems:
        return problems  # the checks below need integer columns
    ids = layers["layer_id"]
    if not np.array_equal(ids, np.arange(len(ids))):
        problems.append(f"layer table column layer_id is {_preview(ids)}, expected 0..{len(ids) - 1} in order")
    # Python integers: products of the columns never overflow
    start, stop = layers["row_start"], layers["row_stop"]
    c_in, c_out, groups = layers["c_in"], layers["c_out"], layers["groups"]
    if start[0] != 0:
        problems.append(f"layer table column row_start begins at {start[0]}, not 0")
    if stop[-1] != n_filters:
        problems.append(f"layer table column row_stop ends at {stop[-1]}, not at the store's {n_filters} filters")
    if (gaps := np.flatnonzero(start[1:] != stop[:-1])).size:
        i = int(gaps[0])
        kind = "overlap" if start[i + 1] < stop[i] else "leave a gap"
        problems.append(f"layer table columns row_start/row_stop {kind} between layers {ids[i]} and {ids[i + 1]} "
                        f"(row_stop {stop[i]}, next row_start {start[i + 1]}): ranges must tile the rows")
    if (empty := np.flatnonzero(stop <= start)).size:
        problems.append(f"layer table columns row_start/row_stop: layer {ids[empty[0]]} has the empty range "
                        f"[{start[empty[0]]}, {stop[empty[0]]})")
    for column, values in (("c_in", c_in), ("c_out", c_out), ("groups", groups)):
        if (bad := np.flatnonzero(values < 1)).size:
            problems.append(f"layer table column {column} is {values[bad[0]]} in layer {ids[bad[0]]}; must be >= 1")
    if not problems:
        for column, values in (("c_in", c_in), ("c_out", c_out)):
            if (bad := np.flatnonzero(values % groups)).size:
                i = int(bad[0])
                problems.append(f"layer table column groups ({groups[i]}) does not divide {column} ({values[i]}) "
                                f"in layer {ids[i]}")
        rows = c_out * (c_in // groups)
        if (bad := np.flatnonzero(rows != stop - start)).size:
            i = int(bad[0])
            problems.append(f"layer table columns c_out x c_in/groups = {c_out[i]} x {c_in[i]}/{groups[i]} = "
                            f"{rows[i]} rows in layer {ids[i]}, but its row range holds {stop[i] - start[i]}")
    depth = layers["conv_depth"]
    if (bad := np.flatnonzero(depth < 0)).size:
        problems.append(f"layer table column conv_depth is {depth[bad[0]]} in layer {ids[bad[0]]}; must be >= 0")
    if "max_conv_depth" in attrs:
        max_depth = attrs["max_conv_depth"]
        if not _is_int(max_depth) or max_depth > MAX_DEPTH:
            problems.append(f"attribute max_conv_depth is {max_depth!r}, not a depth (an integer up to {MAX_DEPTH})")
        elif max_depth < depth.max():
            problems.append(f"attribute max_conv_depth is {max_depth!r}, below the deepest layer's conv_depth "
                            f"{depth.max()}")
    if depth.max() > MAX_DEPTH:
        problems.append(f"layer table column conv_depth reaches {depth.max()}, beyond any model's ({MAX_DEPTH})")
    for column, low, high in (("conv_depth_norm", 0.0, 1.0), ("max_abs", 0.0, np.inf)):
        values = layers[column]
        ok = np.array([_finite_in(v, low, high) for v in values])
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            problems.append(f"layer table column {column} is {_plain(values[i])!r} in layer {ids[i]}; "
                            f"must be a finite number in [{low}, {high}]")
    return problems


def _objects(values: list) -> np.ndarray:
    """``values`` as a 1-d object array: each value as stored (a list in it stays one item)."""
    array = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):  # one by one: a slice assignment would unpack nested lists
        array[i] = value
    return array


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (for messages)."""
    return value.item() if isinstance(value, np.generic) else value


def _preview(values: np.ndarray) -> str:
    shown = ", ".join(str(v) for v in values[:8])
    return f"[{shown}{', ...' if len(values) > 8 else ''}]"


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
