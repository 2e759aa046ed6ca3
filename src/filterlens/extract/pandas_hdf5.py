"""A pandas HDF5 table read through h5py, so that nothing in the file can run code.

``pandas.read_hdf`` reads through PyTables, which unpickles two things on its own: the values
of object columns (stored as pickles in a VLArray) and any string attribute that looks like a
pickle. A crafted file therefore runs code the moment ``read_hdf`` opens it. This module reads
the same layout, pandas' *fixed* format (``DataFrame.to_hdf(path, key)``, the authors'
``dataset.h5``), with h5py, which hands back raw bytes:

- attributes are read as bytes and compared as text; none is ever unpickled;
- numeric blocks and index levels are plain HDF5 arrays;
- an object block is a pickle of a numpy object array. It is decoded by an allow-list
  unpickler that can name only numpy's array reconstruction (``ndarray``, ``dtype``,
  ``_reconstruct``, ``scalar``) and builds only str, int, float, bool and None values. Any
  other name in the pickle (``os.system``, ``builtins.eval``, a class) stops the read with
  :class:`UnsafeTableError` before anything is called.

The published database's meta table needs this decoder: its text columns are such pickles
(PyTables warns "will pickle object types" when the table is written). Pandas' *table*
format keeps its column names in pickled attributes and is refused with the fix.
"""

from __future__ import annotations

import io
import os
import pickle
from typing import Any

import numpy as np
import pandas as pd

from filterlens.io.hdf5 import UnsafeHDF5Error, plain_node


class UnsafeTableError(ValueError):
    """The table cannot be read without running code from the file, or is not a pandas table."""


# numpy's own reduce functions, found from live objects (not imported by name: numpy 1 pickles
# name them numpy.core.multiarray.*, numpy 2 numpy._core.multiarray.*).
_RECONSTRUCT = np.empty(0, dtype=object).__reduce__()[0]
_SCALAR = np.float64(0).__reduce__()[0]
_ALLOWED = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
}
_PLAIN = (str, int, float, bool, type(None), np.bool_, np.integer, np.floating)


class _ArrayOnlyUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, where: str):
        super().__init__(io.BytesIO(data))
        self.where = where

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise UnsafeTableError(f"{self.where}: the pickled values name {module}.{name}, which is not numpy's "
                               "array reconstruction: loading them would run code from the file. Refused")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeTableError(f"{self.where}: the pickled values hold a persistent reference. Refused")


def decode_object_array(data: bytes, where: str) -> np.ndarray:
    """The numpy object array pickled in ``data``, whose items must all be plain values."""
    try:
        value = _ArrayOnlyUnpickler(data, where).load()
    except UnsafeTableError:
        raise
    except Exception as error:  # noqa: BLE001 - any malformed pickle is the same answer
        raise UnsafeTableError(f"{where}: the pickled values cannot be decoded ({type(error).__name__}: "
                               f"{error})") from error
    if not isinstance(value, np.ndarray) or value.dtype != object:
        raise UnsafeTableError(f"{where}: the pickled values are a {type(value).__name__}, not an object array")
    if bad := sorted({type(v).__name__ for v in value.ravel() if not isinstance(v, _PLAIN)}):
        raise UnsafeTableError(f"{where}: the pickled values hold {', '.join(bad)} objects; only text and numbers "
                               "are read")
    return value


def _text(value: Any) -> str | None:
    """A PyTables attribute as text: bytes/str as they are; the pickle of None (b"N.") as None."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (bytes, np.bytes_)):
        return None if bytes(value) == b"N." else bytes(value).decode("utf-8")
    if isinstance(value, str):
        return None if value == "N." else value
    return None


def read_fixed_frame(path: str | os.PathLike, key: str) -> pd.DataFrame:
    """The DataFrame that ``DataFrame.to_hdf(path, key)`` wrote (fixed format), index levels as
    its first columns (as ``.reset_index()``). Raises :class:`UnsafeTableError` or KeyError."""
    import h5py

    where = f"{path} (table {key!r})"
    with h5py.File(path, "r") as handle:
        group = _node(handle, key, where, missing=KeyError)
        if not isinstance(group, h5py.Group):
            raise UnsafeTableError(f"{where} is an HDF5 dataset, not a pandas table")
        kind = _text(group.attrs.get("pandas_type"))
        if kind == "frame_table":
            raise UnsafeTableError(f"{where} is in pandas' 'table' format, whose column names are pickled "
                                   "attributes; it is not read")
        if kind != "frame":
            raise UnsafeTableError(f"{where} is not a pandas DataFrame in fixed format (pandas_type {kind!r})")
        index = _read_axis(group, "axis1", where)
        columns = [str(c) for c in _read_level(group, "axis0", where)[0]]
        n_rows = len(index[0][1]) if index else 0
        values: dict[str, np.ndarray] = {}
        for block in range(int(group.attrs.get("nblocks", 0))):
            items = [str(c) for c in _read_level(group, f"block{block}_items", where)[0]]
            data = _read_block(group, f"block{block}_values", where)
            if data.shape != (n_rows, len(items)):
                raise UnsafeTableError(f"{where}: block {block} has shape {data.shape}, expected "
                                       f"({n_rows}, {len(items)})")
            for column, item in enumerate(items):
                values[item] = data[:, column]
    if missing := [c for c in columns if c not in values]:
        raise UnsafeTableError(f"{where}: column(s) {missing} have no values")
    frame = pd.DataFrame({name: level for name, level in index})
    for column in columns:
        frame[column] = values[column]
    return frame


def _node(group: Any, name: str, where: str, missing: type[Exception] = UnsafeTableError) -> Any:
    """A node of the table, read from this file alone (:func:`filterlens.io.hdf5.plain_node`)."""
    try:
        return plain_node(group, name, where)
    except KeyError:
        raise missing(name if missing is KeyError else f"{where}: node {name!r} is missing") from None
    except UnsafeHDF5Error as error:
        raise UnsafeTableError(str(error)) from None


def _read_block(group: Any, name: str, where: str) -> np.ndarray:
    """A block's values as (rows, items)."""
    import h5py

    node = _node(group, name, where)
    if _text(node.attrs.get("CLASS")) == "VLARRAY":
        if _text(node.attrs.get("PSEUDOATOM")) != "object" or node.shape != (1,):
            raise UnsafeTableError(f"{where}: node {name!r} is a variable-length array of an unknown kind")
        data = decode_object_array(bytes(np.asarray(node[0], dtype=np.uint8)), f"{where}, node {name!r}")
        return data.reshape(-1, 1) if data.ndim == 1 else data
    if node.dtype.kind not in "biuf":
        raise UnsafeTableError(f"{where}: node {name!r} holds {node.dtype}; only numbers and text are read")
    data = node[...]
    if isinstance(node.id.get_type(), h5py.h5t.TypeBitfieldID):
        data = data.astype(bool)
    return data.reshape(-1, 1) if data.ndim == 1 else data


def _read_level(group: Any, name: str, where: str) -> tuple[np.ndarray, str | None]:
    """An index's values (text decoded) and its name."""
    node = _node(group, name, where)
    if node.dtype.kind == "S":
        values = np.array([v.decode("utf-8") for v in node[...]], dtype=object)
    elif node.dtype.kind in "biuf":
        values = node[...]
    elif _text(node.attrs.get("CLASS")) == "VLARRAY":
        values = decode_object_array(bytes(np.asarray(node[0], dtype=np.uint8)), f"{where}, node {name!r}").ravel()
    else:
        raise UnsafeTableError(f"{where}: node {name!r} holds {node.dtype}; only numbers and text are read")
    return values, _text(node.attrs.get("name"))


def _read_axis(group: Any, axis: str, where: str) -> list[tuple[str, np.ndarray]]:
    """The row index as (name, values) columns: a regular index, or every level of a MultiIndex."""
    variety = _text(group.attrs.get(f"{axis}_variety"))
    if variety == "regular":
        values, name = _read_level(group, axis, where)
        return [(name or "index", values)]
    if variety != "multi":
        raise UnsafeTableError(f"{where}: unknown index kind {variety!r}")
    columns = []
    for level in range(int(group.attrs.get(f"{axis}_nlevels", 0))):
        values, name = _read_level(group, f"{axis}_level{level}", where)
        codes = _node(group, f"{axis}_label{level}", where)[...]
        if codes.dtype.kind not in "iu" or (len(codes) and (codes.max() >= len(values) or codes.min() < -1)):
            raise UnsafeTableError(f"{where}: index level {level} has codes outside its {len(values)} values")
        column = np.asarray(values, dtype=object if values.dtype.kind in "OU" else float
                            if (codes < 0).any() else values.dtype)[np.maximum(codes, 0)]
        if (codes < 0).any():
            column = np.where(codes < 0, None if column.dtype == object else np.nan, column)
        columns.append((name or f"level_{level}", column))
    return columns
