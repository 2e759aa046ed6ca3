"""The upgrade of a filter store of format version 1, 2 or 3 to the current format (4) in place,
the filters (and their codec) untouched; run by `filterlens upgrade-stores`
(filterlens.cli.upgrade_stores).

A version-1 store has one depth per layer (counting convs): the upgrade recomputes both depths
from the architecture on the ``meta`` device (:func:`upgraded_attrs`). Stores before version 4
have no max_row_sum in their layer table (the reference of analysis.sparse_reference:
max_row_sum): the upgrade computes it from the store's own rows, as the writer does, checking
each layer's max |W| against its table as it reads (:func:`with_max_row_sums`). Then it rewrites
the group's attributes only (:func:`rewrite_attrs`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from filterlens.config.datasets import dataset_info
from filterlens.extract.layer_table import LAYER_COLUMNS, Layer
from filterlens.extract.store import (FILTERS, FORMAT, FORMAT_VERSION, NO_MAX_ROW_SUM, FilterStoreError,
                                      open_filter_store)
from filterlens.extract.store_checks import codec_problem, file_problem, zarr_chunk_problem
from filterlens.io.arrays import abs_max, all_finite
from filterlens.io.atomic import atomic_output
from filterlens.method.filters import layer_reference

# Rows read at once while the upgrade takes the row sums (36 MiB of float32).
UPGRADE_BLOCK_ROWS = 1 << 20

if TYPE_CHECKING:
    import pandas as pd


def upgrade_store(store: Path, sheet: pd.DataFrame, dry_run: bool = False) -> str:
    """Upgrade ``store`` (a filter store of format version 1 to 3; for version 1, of a model of
    ``sheet``) in place; return a one-line account. Raise :class:`FilterStoreError` naming the
    store and the fix."""
    try:
        attrs = dict(zarr.open_group(str(store), mode="r").attrs)
    except Exception as error:
        raise FilterStoreError(f"{store} is not a readable filter store ({error})") from error
    if attrs.get("format") != FORMAT:
        raise FilterStoreError(f"{store} is not a filterlens filter store (format {attrs.get('format')!r})")
    version = attrs.get("format_version")
    if version == FORMAT_VERSION:
        return f"{store}: format version {version}, current, left as it is"
    if version not in (1, *NO_MAX_ROW_SUM):
        raise FilterStoreError(f"{store}: format version {version!r} cannot be upgraded")
    model_id = attrs.get("model_id", store.stem)
    what = f"{store} (model {model_id})"
    if version in NO_MAX_ROW_SUM:  # the depths are current
        open_filter_store(store)  # a readable store, its table consistent
        new = {**attrs, "format_version": FORMAT_VERSION, "upgraded_from_format_version": version}
    elif attrs.get("depth_method") == "filterdb":
        new = upgraded_attrs(attrs, None, {"graph_level": attrs["max_conv_depth"], "conv_count": None}, what)
    else:
        import torch

        from filterlens.extract.weights import plan_extraction
        from filterlens.models.architectures import build_architecture

        rows = sheet[sheet.model_id == model_id]
        if rows.empty:
            raise FilterStoreError(f"{what}: the sheet has no row {model_id!r}, so its architecture is unknown. "
                                   f"Fix: pass the --configfile of the run that extracted it.")
        row = rows.iloc[0]
        info = dataset_info(row["dataset"])
        model = build_architecture(row["architecture"], row["arch_kwargs"], info.num_classes, device="meta")
        example = torch.empty(1, 3, info.image_size, info.image_size, device="meta")
        plan = plan_extraction(model, example, fold_batchnorm=bool(attrs.get("fold_batchnorm")))
        if plan.depth_method != attrs.get("depth_method"):
            raise FilterStoreError(f"{what}: its depths were found by {attrs.get('depth_method')!r}, the architecture "
                                   f"traces by {plan.depth_method!r}. Fix: extract it again (snakemake --forcerun extract_filters {store}).")
        new = upgraded_attrs(attrs, plan.layers, plan.max_conv_depths, what)
        new.update(architecture=row["architecture"], arch_kwargs=row["arch_kwargs"])
    new = with_max_row_sums(store, new, what)
    if not dry_run:
        rewrite_attrs(store, new)
        open_filter_store(store)  # reads back as a current store
    return (f"{store}: version {version} -> {FORMAT_VERSION}{' (dry run, nothing written)' if dry_run else ''}; "
            f"max conv depth {new.get('max_conv_depths')}; largest row sums of |W| from its {new['n_filters']} filters")


def with_max_row_sums(path: Path, attrs: dict[str, Any], what: str) -> dict[str, Any]:
    """``attrs`` with the layer table's max_row_sum computed from the rows of the store at ``path``
    (each layer's largest row sum of |W|, as :class:`filterlens.extract.store.FilterStoreWriter`
    records it), its columns in the current order. The store's files are checked before any
    chunk is decoded, as the reader checks them; a layer whose max |W| differs from its table's
    raises :class:`FilterStoreError` naming ``what``."""
    fix = f"Fix: delete {path} and extract it again (snakemake --forcerun extract_filters {path})."
    if problem := file_problem(path):
        raise FilterStoreError(f"{what}: {problem}. {fix}")
    try:
        filters = zarr.open_group(str(path), mode="r")[FILTERS]
    except Exception as error:
        raise FilterStoreError(f"{what} has no readable filters array ({error}). {fix}") from error
    if problem := codec_problem(filters) or zarr_chunk_problem(path / FILTERS, filters, FILTERS):
        raise FilterStoreError(f"{what}: {problem}. {fix}")
    layers = attrs["layers"]
    sums = []
    for name, start, stop, recorded in zip(layers["name"], layers["row_start"], layers["row_stop"], layers["max_abs"]):
        top = row_sum = 0.0
        for block_start in range(start, stop, UPGRADE_BLOCK_ROWS):
            rows = np.asarray(filters[block_start:min(stop, block_start + UPGRADE_BLOCK_ROWS)])
            if not all_finite(rows):
                raise FilterStoreError(f"{what}: layer {name} holds NaN or infinite weights. {fix}")
            top = max(top, abs_max(rows))
            row_sum = max(row_sum, layer_reference(rows, "max_row_sum"))
        if top != recorded:
            raise FilterStoreError(f"{what}: layer {name} holds max |W| {top}, but its layer table says {recorded}: "
                                   f"the store is inconsistent. {fix}")
        sums.append(row_sum)
    table = {**layers, "max_row_sum": sums}
    return {**attrs, "layers": {c: table[c] for c in LAYER_COLUMNS}}


def upgraded_attrs(attrs: dict[str, Any], plan_layers: list[Layer] | None, max_conv_depths: dict[str, int | None],
                   what: str) -> dict[str, Any]:
    """Current-version attributes but the row sums (:func:`with_max_row_sums`) of a version-1
    store whose attributes are ``attrs``, from the layer
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
    with atomic_output(metadata_path) as temporary:
        temporary.write_text(json.dumps(metadata, indent=2))
