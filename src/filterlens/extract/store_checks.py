"""The checks of a filter store that came from outside this process: before a chunk is
decoded, the store's folder, codecs and chunk headers (a crafted store must not make a reader
follow a symlink or allocate what a Blosc header announces), and then the consistency of its
attributes and layer table with each other and with the filters array.

Every check returns what it found wrong (the field and the value) or nothing; the reader
(:func:`filterlens.extract.store.open_filter_store`) adds the store and the fix to the message
(docs/faults.md, "Damaged filter stores").
"""

from __future__ import annotations

import itertools
import math
import os
import stat
import struct
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec

from filterlens.extract.layer_table import LAYER_COLUMNS

# What a store may hold before any of it is decoded (docs/faults.md, "Damaged filter stores"):
# metadata documents of at most this size (a layer table of thousands of layers is a few MB)...
MAX_METADATA_BYTES = 64 * 2**20
# ...and chunks of at most this size once decoded: a reader holds a few chunks at once.
MAX_CHUNK_BYTES = 256 * 2**20
# The codecs the writer uses (Blosc's compressor and shuffle vary with the format version).
STORE_CODECS = (BytesCodec, BloscCodec, Crc32cCodec)
BLOSC_HEADER = struct.Struct("<4xIII")  # version, versionlz, flags, typesize; nbytes, blocksize, cbytes

MAX_DEPTH = 2**31 - 1  # a depth beyond any network: the limit of the integer columns downstream
INTEGER_COLUMNS = ("layer_id", "conv_depth", "c_in", "c_out", "groups", "row_start", "row_stop")


def file_problem(path: Path) -> str | None:
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


def codec_problem(array: zarr.Array) -> str | None:
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


def layer_table_problem(table: Any) -> str | None:
    """Why the ``layers`` attribute is not a table of the layer columns: missing, not a mapping of
    columns, a column missing, or columns that are not lists of one length."""
    if not isinstance(table, dict):
        what = "is missing" if table is None else f"is a {type(table).__name__}, not a table of columns"
        return f"attribute 'layers' (the layer table) {what}"
    if missing := [c for c in LAYER_COLUMNS if c not in table]:
        return f"the layer table has no column(s) {', '.join(missing)}"
    lengths = {c: len(v) if isinstance(v, list) else None for c, v in table.items() if c in LAYER_COLUMNS}
    if None in lengths.values() or len(set(lengths.values())) != 1:
        return f"the layer table's columns are not lists of one length ({lengths})"
    return None


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
    depths within the model's maximum, a finite max |W| and a largest row sum of |W| that fits it,
    chunks of whole filter rows."""
    layers = {c: _objects(table[c]) for c in LAYER_COLUMNS}  # values as stored
    problems: list[str] = []
    if not _is_int(n_filters) or n_filters < 0:
        return [f"attribute n_filters is {n_filters!r}, not a count of filters"]
    if len(chunks) != 2 or chunks[1] != 9 or not chunks[0] >= 1:
        problems.append(f"the filters' chunk shape {tuple(chunks)} is not (rows, 9)")
    if len(layers["layer_id"]) == 0:
        return problems + ["the layer table is empty (a store holds at least one 3x3 layer)"]
    if problems := problems + _type_problems(layers):
        return problems  # the checks below need integer columns
    # A store of a format before max_row_sum has none in its attributes (the reader fills None).
    row_sums_stored = isinstance(attrs.get("layers"), dict) and "max_row_sum" in attrs["layers"]
    return (_row_problems(layers, n_filters) + _depth_problems(layers, attrs)
            + _value_problems(layers, row_sums_stored))


def _type_problems(layers: dict[str, np.ndarray]) -> list[str]:
    """Columns whose values are not of their type: integers, booleans, distinct non-empty names."""
    problems = []
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
    return problems


def _row_problems(layers: dict[str, np.ndarray], n_filters: int) -> list[str]:
    """Layer ids out of order, row ranges that do not tile the rows, shapes that do not give a
    layer's rows (``layers`` of integer columns)."""
    problems = []
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
    return problems


def _depth_problems(layers: dict[str, np.ndarray], attrs: dict[str, Any]) -> list[str]:
    """Depths below 0, beyond any network or beyond the model's max_conv_depth attribute."""
    problems = []
    ids, depth = layers["layer_id"], layers["conv_depth"]
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
    return problems


def _value_problems(layers: dict[str, np.ndarray], row_sums_stored: bool) -> list[str]:
    """A normalised depth outside [0, 1], a max |W| that is not a finite non-negative number, or
    a largest row sum of |W| outside [max |W|, 9 max |W|] (``row_sums_stored`` False: a store of
    a format before max_row_sum, whose column the reader filled with None)."""
    problems = []
    ids = layers["layer_id"]
    for column, low, high in (("conv_depth_norm", 0.0, 1.0), ("max_abs", 0.0, np.inf)):
        values = layers[column]
        ok = np.array([_finite_in(v, low, high) for v in values])
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            problems.append(f"layer table column {column} is {_plain(values[i])!r} in layer {ids[i]}; "
                            f"must be a finite number in [{low}, {high}]")
            return problems  # the row sums are checked against max |W|
    # A row's sum of nine |w| lies between its largest |w| and nine times it, rounded or not.
    ok = np.array([_finite_in(value, top, 9 * top) if row_sums_stored else value is None
                   for value, top in zip(layers["max_row_sum"], layers["max_abs"])])
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        top = _plain(layers["max_abs"][i])
        problems.append(f"layer table column max_row_sum is {_plain(layers['max_row_sum'][i])!r} in layer {ids[i]}; "
                        f"must be a finite number in [max_abs, 9 max_abs] = [{top}, {9 * top}]")
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


