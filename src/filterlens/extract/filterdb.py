"""Import the authors' published filter database into the per-model filter stores.

"CNN-Filter-DB-Robust v1.0.0" (Zenodo, doi 10.5281/zenodo.6414075) holds every 3x3 filter of
the paper's models in one (N, 9) float32 array and a ``meta`` table with one row per model
and layer (the authors' scripts: ``h5py.File("dataset.h5")["filters"]`` and
``pandas.read_hdf("dataset.h5", "meta")``):

- ``filter_ids``: the layer's rows of the array as an INCLUSIVE range ``"start:end"``;
- ``conv_depth``, ``conv_depth_norm``, ``layer_id``: the layer's depth (docs/method.md §2);
- ``Name``: the model, e.g. ``robustbench_<Key>_<dataset>_linf_13``,
  ``hso_normal_training_robustbench_<Key>_<dataset>_13``, ``timm_<arch>_imagenet1k_13``;
- optionally the layer's channels (``c_in``/``c_out``/``groups`` or
  ``in_channels``/``out_channels``); without them a layer's orthogonality is unknown (its
  store records c_out = 1, so the orthogonality is NaN and left out of the means).

:func:`import_model` copies one model, layer by layer, into a filter store; only one layer's
rows are in memory at a time. The array may be an HDF5 dataset (h5py), a ``.npy`` file
(memory-mapped) or a Zarr array / group; the meta table a CSV or a pandas HDF5 table.

Every file is checked before a parser opens it (:func:`check_file`): against the checksum
config ``filterdb.checksums`` gives it (the md5 Zenodo publishes), else for a failed download
(empty, an HTML page) and, for HDF5 and .npy, for a file cut short. A download over plain HTTP
needs that checksum (:func:`download_problems`). A bad downloaded copy is deleted, so the next
run fetches it again.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from filterlens.acquire.failed_downloads import data_file_problem, parse_checksum
from filterlens.extract.layer_table import Layer
from filterlens.extract.pandas_hdf5 import UnsafeTableError, read_fixed_frame
from filterlens.extract.store import FilterStoreWriter
from filterlens.extract.store_checks import zarr_chunk_problem
from filterlens.io.arrays import all_finite
from filterlens.io.hdf5 import UnsafeHDF5Error, plain_node

REQUIRED_COLUMNS = ["filter_ids", "conv_depth", "conv_depth_norm", "layer_id"]
CHANNEL_COLUMNS = [("c_in", "c_out", "groups"), ("in_channels", "out_channels", "groups")]
RANGE = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")

# Database model names -> sheet ids (filterlens leaderboard-sheet names the sheet's models).
_ROBUST = re.compile(r"^robustbench_(?P<key>.+)_(?P<dataset>cifar100|cifar10|imagenet)_(?:linf|l2|corruptions)_\d+$")
_NORMAL_RB = re.compile(
    r"^hso_normal_training_robustbench_(?P<key>.+)_(?P<dataset>cifar100|cifar10|imagenet(?:1k)?)_\d+$")
_NORMAL_TIMM = re.compile(r"^timm_(?P<name>.+)_imagenet(?:1k)?_\d+$")


class FilterDBError(ValueError):
    """The database (or its meta table) cannot be imported; the message names what and the fix."""


def sheet_id(name: str) -> str | None:
    """The sheet's model id of a database model name, or None for a name of another form."""
    if match := _ROBUST.match(name):
        return f"rb_{match['dataset']}_{match['key']}"
    if match := _NORMAL_RB.match(name):
        return f"normal_{match['dataset'].removesuffix('1k')}_{match['key']}"
    if match := _NORMAL_TIMM.match(name):
        return f"timm_{match['name']}"
    return None


def uses_filterdb(sheet: pd.DataFrame, models: str | list[str]) -> list[str]:
    """Model ids whose filters come from the database: sheet rows with source ``filterdb``,
    and the ids of config ``filterdb.models`` ("all": every row), in sheet order."""
    chosen = set(sheet.model_id) if models == "all" else set(models)
    return [m for m, source in zip(sheet.model_id, sheet.source) if source == "filterdb" or m in chosen]


def config_problems(sheet: pd.DataFrame, models: str | list[str]) -> list[str]:
    """Parse-time checks of config ``filterdb.models`` against the sheet."""
    problems = []
    if models != "all":
        for model in models:
            if model not in set(sheet.model_id):
                problems.append(f"config key filterdb.models: {model!r} is not a model of the sheet")
    for model in uses_filterdb(sheet, models):
        if sheet.loc[model, "dataset"] == "coloured_digits":
            problems.append(f"model {model!r} (coloured_digits) cannot come from the filter database: it holds "
                            "the paper's CIFAR-10/100 and ImageNet models only. Fix: remove it from "
                            "filterdb.models or change its source")
    return problems


def database_files(settings: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """The inputs of rule import_filterdb, role -> (location, is a storage query): ``filters``,
    and ``meta`` if it is another file. Local paths under ``local_dir``, else Zenodo URLs for
    the http storage plugin or ``zenodo://record/...`` queries for the zenodo plugin."""
    names = {"filters": settings["filters_file"]}
    if settings["meta_file"] != settings["filters_file"]:
        names["meta"] = settings["meta_file"]
    if settings.get("local_dir") is not None:
        return {role: (os.path.join(settings["local_dir"], name), False) for role, name in names.items()}
    record = settings["record"]
    if settings["download"] == "zenodo":
        return {role: (f"zenodo://record/{record}/{name}", True) for role, name in names.items()}
    return {role: (f"https://zenodo.org/records/{record}/files/{name}", True) for role, name in names.items()}


def download_problems(settings: dict[str, Any], used: bool) -> list[str]:
    """Parse-time checks of ``filterdb.checksums``: each well-formed and naming a file of the
    database; and, where the http plugin downloads the files (it checks no hash), one for each."""
    problems = []
    names = {settings["filters_file"], settings["meta_file"]}
    for name, checksum in (settings.get("checksums") or {}).items():
        if name not in names:
            problems.append(f"config key filterdb.checksums: {name!r} is neither filters_file nor meta_file "
                            f"({', '.join(sorted(names))})")
        try:
            parse_checksum(checksum)
        except ValueError as error:
            problems.append(f"config key filterdb.checksums.{name}: {error}")
    if used and settings.get("local_dir") is None and settings["download"] == "http":
        for name in sorted(names - set(settings.get("checksums") or {})):
            problems.append(
                f"config key filterdb.checksums: no checksum for {name!r}, and the http download checks none. Fix: "
                f"set filterdb.checksums.{name} to the md5 the Zenodo record lists for it (\"md5:<32 hex digits>\"; "
                f"https://zenodo.org/records/{settings['record']}, Files), or use download: zenodo (its plugin "
                "verifies the md5), or local_dir with a copy you checked")
    return problems


def check_file(path: str | os.PathLike, checksum: str | None, downloaded: bool) -> None:
    """Raise :class:`FilterDBError` if the database file ``path`` is not sound (checksum, failed
    download, cut short), before any parser opens it. A downloaded copy is deleted, so that the
    next run fetches it again; a given file is left for its owner."""
    path = Path(path)
    try:
        problem = data_file_problem(path, checksum)
    except OSError as error:
        raise FilterDBError(f"cannot read {path}: {error}") from error
    if not problem:
        return
    if downloaded:
        if path.is_file():
            path.unlink()
        raise FilterDBError(f"the downloaded filter database file {path} {problem}. Removed it: run again to "
                            "download it anew (if this repeats, download it by hand and set filterdb.local_dir)")
    raise FilterDBError(f"the filter database file {path} {problem}. Fix: replace {path} with a complete copy "
                        "(check its md5 against the Zenodo record)")


# --- the meta table ----------------------------------------------------------------------------

@dataclass(frozen=True)
class DBLayer:
    name: str  # database model name
    layer_id: int
    start: int
    stop: int  # exclusive (the database's end + 1)
    conv_depth: int
    conv_depth_norm: float
    c_in: int | None
    c_out: int | None
    groups: int | None


def read_meta(path: str | os.PathLike, key: str = "meta") -> pd.DataFrame:
    """The meta table as a flat DataFrame: a CSV, or a pandas HDF5 table under ``key`` (the
    authors' ``meta`` in dataset.h5, beside the ``filters`` array: its index model_id,
    conv_depth, conv_depth_norm, layer_id becomes columns).

    The HDF5 table is read through h5py (:mod:`filterlens.extract.pandas_hdf5`), never PyTables: no
    attribute is unpickled, and pickled text columns are decoded by an allow-list that refuses
    anything but numpy's array reconstruction, so a crafted file cannot run code."""
    path = Path(path)
    if path.suffix.lower() in (".csv", ".tsv") or path.name.endswith((".csv.gz", ".csv.xz")):
        sep = "\t" if ".tsv" in path.name else ","
        return pd.read_csv(path, sep=sep, dtype={"filter_ids": str})
    if path.suffix.lower() in (".h5", ".hdf5", ".hdf"):
        if problem := data_file_problem(path):
            raise FilterDBError(f"meta table {path} {problem}. Fix: delete {path} and download it again")
        try:
            return read_fixed_frame(path, key)
        except KeyError as error:
            raise FilterDBError(f"{path} has no table {key!r}. Fix: set filterdb.meta_key") from error
        except UnsafeTableError as error:
            raise FilterDBError(f"meta table {error}. Fix: use the published dataset.h5 (check its md5 against "
                                "the Zenodo record), or give the meta table as a CSV (filterdb.meta_file)") from None
        except OSError as error:
            raise FilterDBError(f"meta table {path} cannot be opened as HDF5 ({error}). Fix: delete {path} and "
                                "download it again") from None
    raise FilterDBError(f"meta table {path}: unknown format {path.suffix!r}; use .csv or .h5")


def parse_meta(meta: pd.DataFrame, n_rows: int, name_column: str = "Name", where: str = "meta") -> list[DBLayer]:
    """Check the whole meta table and return its layers, sorted by first row.

    Fails with :class:`FilterDBError` listing every problem: missing columns, ranges that are
    not ``"start:end"`` with start <= end, that leave the array's ``n_rows`` rows, or that
    overlap another layer's.
    """
    missing = [c for c in [name_column, *REQUIRED_COLUMNS] if c not in meta.columns]
    if missing:
        raise FilterDBError(f"{where}: missing column(s) {missing}; it has {list(meta.columns)}. The meta table "
                            f"needs {[name_column, *REQUIRED_COLUMNS]} (filterdb.name_column names the model "
                            "column).")
    channels = next((cols for cols in CHANNEL_COLUMNS if all(c in meta.columns for c in cols[:2])), None)
    problems: list[str] = []
    layers: list[DBLayer] = []
    for index, row in enumerate(meta.to_dict("records")):
        label = f"{where}, row {index} (model {row[name_column]!r}, layer_id {row['layer_id']})"
        match = RANGE.match(str(row["filter_ids"]))
        if not match:
            problems.append(f"{label}: filter_ids {row['filter_ids']!r} is not an inclusive range 'start:end'")
            continue
        start, end = int(match[1]), int(match[2])
        if end < start:
            problems.append(f"{label}: filter_ids {start}:{end} ends before it starts")
            continue
        if end >= n_rows:
            problems.append(f"{label}: filter_ids {start}:{end} leaves the filter array of {n_rows} rows "
                            f"(ranges are inclusive: the last row is {n_rows - 1})")
            continue
        c_in = c_out = groups = None
        if channels is not None:
            c_in, c_out = int(row[channels[0]]), int(row[channels[1]])
            groups = int(row["groups"]) if "groups" in meta.columns and pd.notna(row.get("groups")) else 1
            if c_in % groups or c_out * (c_in // groups) != end - start + 1:
                problems.append(f"{label}: {end - start + 1} filters, but c_out {c_out} x c_in {c_in} / groups "
                                f"{groups} = {c_out * (c_in // max(groups, 1))}")
        layers.append(DBLayer(str(row[name_column]), int(row["layer_id"]), start, end + 1, int(row["conv_depth"]),
                              float(row["conv_depth_norm"]), c_in, c_out, groups))
    layers.sort(key=lambda layer: (layer.start, layer.stop))
    for before, after in zip(layers, layers[1:]):
        if after.start < before.stop:
            problems.append(f"{where}: filter_ids {after.start}:{after.stop - 1} (model {after.name!r}, layer_id "
                            f"{after.layer_id}) overlap {before.start}:{before.stop - 1} (model {before.name!r}, "
                            f"layer_id {before.layer_id})")
    if problems:
        raise FilterDBError(f"the filter database's meta table has {len(problems)} problem(s):\n  - "
                            + "\n  - ".join(problems[:50]) + ("\n  - ..." if len(problems) > 50 else ""))
    return layers


def model_layers(layers: list[DBLayer], model_id: str, database_name: str | None = None) -> list[DBLayer]:
    """The layers of one sheet model: the database model named ``database_name`` if given, else
    the one whose name maps to ``model_id`` (:func:`sheet_id`)."""
    if database_name:
        chosen = [layer for layer in layers if layer.name == database_name]
        what = f"database model {database_name!r} (sheet source_key of {model_id!r})"
    else:
        names = sorted({layer.name for layer in layers if sheet_id(layer.name) == model_id})
        if len(names) > 1:
            raise FilterDBError(f"model {model_id!r}: several database models map to it: {names}. Fix: give the "
                                "sheet row source filterdb and the database name as source_key")
        chosen = [layer for layer in layers if names and layer.name == names[0]]
        what = f"model {model_id!r}"
    if not chosen:
        known = sorted({layer.name for layer in layers})
        raise FilterDBError(f"{what} is not in the filter database ({len(known)} models there, e.g. "
                            f"{', '.join(known[:5])}). Fix: correct the sheet row (source_key = the database's "
                            "model name) or take the model from its checkpoint (drop it from filterdb.models)")
    return chosen


def max_conv_depth(layers: list[DBLayer], what: str) -> int:
    """The model's max conv depth (which may belong to a non-3x3 conv): conv_depth / conv_depth_norm."""
    ratios = [layer.conv_depth / layer.conv_depth_norm for layer in layers if layer.conv_depth_norm > 0]
    if not ratios:
        if any(layer.conv_depth > 0 for layer in layers):
            raise FilterDBError(f"{what}: layers of conv_depth > 0 all have conv_depth_norm 0; the depths are unusable")
        return 0
    depth = int(round(ratios[0]))
    if any(abs(r - depth) > 1e-3 * max(depth, 1) for r in ratios):
        raise FilterDBError(f"{what}: conv_depth / conv_depth_norm differs between layers "
                            f"({min(ratios):.4g} .. {max(ratios):.4g}); the depths are inconsistent")
    return depth


def store_layers(layers: list[DBLayer], max_depth: int) -> list[Layer]:
    """The store's layer table: the database's layers in row order, rows concatenated."""
    out, row = [], 0
    for index, layer in enumerate(layers):
        n = layer.stop - layer.start
        known = layer.c_out is not None
        out.append(Layer(
            layer_id=index, name=f"filterdb_layer_{layer.layer_id}", conv_depth=layer.conv_depth,
            conv_depth_norm=layer.conv_depth / max_depth if max_depth else 0.0,
            c_in=layer.c_in if known else n, c_out=layer.c_out if known else 1,
            groups=layer.groups if known else 1, row_start=row, row_stop=row + n, bn_folded=False,
            conv_depth_graph_level=layer.conv_depth))  # the authors' depth is the graph level
        row += n
    return out


# --- the filter array --------------------------------------------------------------------------

class FilterArray:
    """Row slices of the database's (N, 9) array without loading it: HDF5, .npy or Zarr."""

    def __init__(self, path: str | os.PathLike, key: str = "filters"):
        self.path = Path(path)
        self._close = None
        suffix = self.path.suffix.lower()
        if suffix in (".h5", ".hdf5", ".hdf"):
            try:
                import h5py
            except ImportError as error:
                raise FilterDBError(f"reading {self.path} needs h5py, which this environment lacks. Fix: install "
                                    "h5py (pip install h5py)") from error
            try:
                handle = h5py.File(self.path, "r")
            except OSError as error:
                raise FilterDBError(f"{self.path} cannot be opened as HDF5 ({error}). Fix: delete {self.path} and "
                                    "download it again") from None
            self._close = handle.close
            try:
                self._array = plain_node(handle, key, str(self.path))
            except KeyError:
                names = list(handle)
                handle.close()
                raise FilterDBError(f"{self.path} has no dataset {key!r} (it has {names}). "
                                    "Fix: set filterdb.filters_key") from None
            except UnsafeHDF5Error as error:
                handle.close()
                raise FilterDBError(f"{error}. Fix: use the published dataset.h5 (check its md5 against the Zenodo "
                                    "record), or a database file that holds its filters itself") from None
            if not isinstance(self._array, h5py.Dataset) or self._array.dtype.kind != "f":
                handle.close()
                raise FilterDBError(f"{self.path}: {key!r} is not an array of floating-point filters "
                                    f"({getattr(self._array, 'dtype', 'a group')}). Fix: set filterdb.filters_key")
        elif suffix == ".npy":
            try:
                self._array = np.load(self.path, mmap_mode="r", allow_pickle=False)
            except ValueError as error:
                raise FilterDBError(f"{self.path} is not a plain .npy array of numbers ({error}). Fix: replace it "
                                    "with the filters as float32") from None
        elif suffix == ".zarr":
            import zarr

            node = zarr.open(str(self.path), mode="r")
            self._array = node[key] if isinstance(node, zarr.Group) else node
            folder = self.path / key if isinstance(node, zarr.Group) else self.path
            if problem := _zarr_problem(self._array, folder):
                raise FilterDBError(f"{self.path}: {problem}. Fix: store the database's filters with Blosc (Zarr v3), "
                                    "as an HDF5 dataset or as a .npy file")
        else:
            raise FilterDBError(f"filter array {self.path}: unknown format {suffix!r}; use .h5, .npy or .zarr")
        shape = tuple(self._array.shape)
        if len(shape) == 3 and shape[1:] == (3, 3):
            self._flat = True
        elif len(shape) == 2 and shape[1] == 9:
            self._flat = False
        else:
            self.close()
            raise FilterDBError(f"{self.path}: the filter array has shape {shape}; expected (N, 9) or (N, 3, 3)")
        self.n_rows = shape[0]
        if self._array.dtype.kind != "f":
            self.close()
            raise FilterDBError(f"{self.path}: the filter array holds {self._array.dtype}, not floating-point filters. "
                                "Fix: store the filters as float32")

    def rows(self, start: int, stop: int) -> np.ndarray:
        return np.asarray(self._array[start:stop], dtype=np.float32).reshape(stop - start, 9)

    def close(self) -> None:
        if self._close is not None:
            self._close()
            self._close = None

    def __enter__(self) -> "FilterArray":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _zarr_problem(array: Any, folder: Path) -> str | None:
    """Why a Zarr database array could decode beyond its declared shape: codecs other than
    Blosc (whose chunks' headers are checked) and a CRC32C checksum, or a chunk header that
    announces more than the chunk's shape (filterlens.extract.store_checks.zarr_chunk_problem)."""
    from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec

    codecs = getattr(array.metadata, "codecs", None)
    if codecs is None or not {type(codec) for codec in codecs} <= {BytesCodec, BloscCodec, Crc32cCodec}:
        names = ", ".join(type(codec).__name__ for codec in codecs or []) or "Zarr v2 compressors"
        return f"the filter array's codecs are {names}; a Zarr database is read with Blosc (and CRC32C) only"
    if BloscCodec not in {type(codec) for codec in codecs}:
        return None  # raw bytes: a chunk decodes to its stored size, its shape
    return zarr_chunk_problem(folder, array, "filter array")


# --- import ------------------------------------------------------------------------------------

def iter_layer_rows(array: FilterArray, db_layers: list[DBLayer], layers: list[Layer],
                    what: str, max_layer_bytes: int | None = None) -> Iterator[tuple[Layer, np.ndarray]]:
    """Each layer's rows as float32, read whole: a layer larger than ``max_layer_bytes`` is
    refused before it is read (the largest layer of the paper's zoo holds 1M filters, 36 MB)."""
    if max_layer_bytes is not None and (large := [d for d in db_layers if (d.stop - d.start) * 36 > max_layer_bytes]):
        worst = max(large, key=lambda d: d.stop - d.start)
        raise FilterDBError(f"{what}, layer_id {worst.layer_id}: its meta row declares {worst.stop - worst.start} "
                            f"filters ({(worst.stop - worst.start) * 36} bytes), above the {max_layer_bytes} bytes "
                            "this job reads a layer in. Fix: raise the rule's memory "
                            "(snakemake --set-resources import_filterdb:mem_mb=...) if the database is right")
    for db_layer, layer in zip(db_layers, layers):
        rows = array.rows(db_layer.start, db_layer.stop)
        if not all_finite(rows):
            raise FilterDBError(f"{what}, layer_id {db_layer.layer_id} (rows {db_layer.start}:{db_layer.stop - 1}): "
                                "NaN or Inf filter values in the database")
        yield layer, rows


def import_model(filters_path: str | os.PathLike, meta: pd.DataFrame, out: str | os.PathLike, model_id: str,
                 dataset: str, database_name: str | None = None, *, filters_key: str = "filters",
                 name_column: str = "Name", chunk_rows: int = 65536,
                 provenance: dict[str, Any] | None = None, max_layer_bytes: int | None = None) -> dict[str, Any]:
    """Write the filter store ``out`` of ``model_id`` from the database; returns its attributes.
    ``max_layer_bytes`` bounds the one layer held in memory at a time (a quarter of the job's
    memory in rule import_filterdb)."""
    with FilterArray(filters_path, filters_key) as array:
        all_layers = parse_meta(meta, array.n_rows, name_column)
        db_layers = model_layers(all_layers, model_id, database_name)
        name = db_layers[0].name
        what = f"model {model_id!r} (database {name!r})"
        max_depth = max_conv_depth(db_layers, what)
        layers = store_layers(db_layers, max_depth)
        attrs = {
            "model_id": model_id, "dataset": dataset, "depth_method": "filterdb", "max_conv_depth": max_depth,
            "depth_definition": "graph_level", "max_conv_depths": {"graph_level": max_depth, "conv_count": None},
            "fold_batchnorm": None, "source": "filterdb", "filterdb_name": name,
            "channels_known": db_layers[0].c_out is not None, **(provenance or {}),
        }
        n = layers[-1].row_stop
        with FilterStoreWriter(out, n, chunk_rows, attrs) as writer:
            for layer, rows in iter_layer_rows(array, db_layers, layers, what, max_layer_bytes):
                writer.write_layer(layer, rows)
    return {**attrs, "n_filters": n, "n_layers": len(layers)}
