"""The per-model filter store: one Zarr v3 group per model.

Layout (format version 2)::

    <model>.zarr/            group; attributes: format, format_version, model_id,
                             depth_method, depth_definition (which definition the layer table's
                             conv_depth / conv_depth_norm and max_conv_depth use), max_conv_depth,
                             max_conv_depths (by definition), fold_batchnorm, n_filters, layers
                             (the layer table as columns, with the depth under every definition:
                             conv_depth_graph_level, conv_depth_conv_count), plus whatever
                             provenance the caller adds
    <model>.zarr/filters     (n, 9) float32, chunked along n, Blosc-zstd + CRC32C

Version 1 stores (one depth, counting convs) are upgraded in place by
tools/upgrade_filter_stores.py: it recomputes both depths from the architecture on the ``meta``
device and rewrites the attributes only, the filters untouched (:func:`upgraded_attrs`).
Switching the depth definition of an analysis is :func:`with_depth_definition`, in memory.

The CRC32C codec makes a corrupted chunk fail loudly on read, and the NaN fill value makes a
missing chunk visible; :func:`open_filter_store` checks both cheaply (chunk presence) and the
reductions check the rest as they stream.
"""

from __future__ import annotations

import dataclasses
import json
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
FORMAT_VERSION = 2
FILTERS = "filters"
UPGRADE_COMMAND = "python tools/upgrade_filter_stores.py --configfile <the run's config> {path}"
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
        table = {c: [getattr(layer, c) for layer in self._layers] for c in LAYER_COLUMNS}
        self._group.attrs.update({**self._attrs, "layers": table})
        self._context.__exit__(None, None, None)

    def abort(self, error: BaseException) -> None:
        try:
            self._context.__exit__(type(error), error, error.__traceback__)
        except BaseException:
            pass

    def __enter__(self) -> "FilterStoreWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.close()
        else:
            self.abort(exc)


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
    if attrs.get("format") == FORMAT and attrs.get("format_version") == 1:
        raise FilterStoreError(
            f"{path} has format version 1 (one depth per layer, counting convs); this filterlens reads version "
            f"{FORMAT_VERSION} (depths under every definition). Fix: upgrade it in place, filters untouched: "
            f"{UPGRADE_COMMAND.format(path=path)}")
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


def with_depth_definition(store: FilterStore, definition: str | None) -> FilterStore:
    """``store`` with conv_depth, conv_depth_norm and max_conv_depth under ``definition``
    (docs/method.md), taken from the per-definition columns; the filters are not read.

    ``None`` keeps the store's own. A definition the store does not record (a filter database
    import knows the authors' depth only) raises :class:`FilterStoreError`.
    """
    from filterlens.convgraph import check_depth_definition

    if definition is None or store.attrs.get("depth_definition") == definition:
        return store
    check_depth_definition(definition)
    column = f"conv_depth_{definition}"
    max_depth = (store.attrs.get("max_conv_depths") or {}).get(definition)
    layers = store.layers
    if column not in layers or max_depth is None or layers[column].isna().any():
        raise FilterStoreError(
            f"{store.path} (model {store.model_id}, depth by {store.attrs.get('depth_method')!r}) records no depth "
            f"under the definition {definition!r}, only {store.attrs.get('depth_definition')!r}. Fix: set "
            f"analysis.depth_definition: {store.attrs.get('depth_definition')} for it, or extract it from a "
            f"checkpoint.")
    depth = layers[column].astype(int)
    layers = layers.assign(conv_depth=depth, conv_depth_norm=depth / max_depth if max_depth else 0.0)
    attrs = {**store.attrs, "depth_definition": definition, "max_conv_depth": int(max_depth)}
    return dataclasses.replace(store, layers=layers, attrs=attrs)


def upgraded_attrs(attrs: dict[str, Any], plan_layers: list[Layer] | None, max_conv_depths: dict[str, int | None],
                   what: str) -> dict[str, Any]:
    """Version-2 attributes of a version-1 store whose attributes are ``attrs``, from the layer
    table the architecture gives (``plan_layers``, any definition: both depths are in it) or, for
    a filter database import (``plan_layers`` None), from the recorded depth, which is the
    authors' graph level. Shapes, names and row ranges must agree with the store's; max |W| and
    the folding flags are kept. Raise :class:`FilterStoreError` naming ``what`` on a mismatch."""
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
