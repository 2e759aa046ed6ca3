"""The upgrade of a version-1 filter store to the current format in place, the filters (and
their codec) untouched; run by `filterlens upgrade-stores` (filterlens.cli.upgrade_stores).

A version-1 store has one depth per layer (counting convs). The upgrade recomputes both depths
from the architecture on the ``meta`` device (:func:`upgraded_attrs`) and rewrites the group's
attributes only (:func:`rewrite_attrs`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zarr

from filterlens.config.datasets import dataset_info
from filterlens.extract.layer_table import LAYER_COLUMNS, Layer
from filterlens.extract.store import (FORMAT, FORMAT_VERSION, READABLE_VERSIONS, FilterStoreError,
                                      open_filter_store)
from filterlens.io.atomic import atomic_output

if TYPE_CHECKING:
    import pandas as pd


def upgrade_store(store: Path, sheet: pd.DataFrame, dry_run: bool = False) -> str:
    """Upgrade ``store`` (a version-1 filter store of a model of ``sheet``) in place; return a
    one-line account. Raise :class:`FilterStoreError` naming the store and the fix."""
    import torch

    from filterlens.extract.weights import plan_extraction
    from filterlens.models.architectures import build_architecture

    try:
        attrs = dict(zarr.open_group(str(store), mode="r").attrs)
    except Exception as error:
        raise FilterStoreError(f"{store} is not a readable filter store ({error})") from error
    if attrs.get("format") != FORMAT:
        raise FilterStoreError(f"{store} is not a filterlens filter store (format {attrs.get('format')!r})")
    if attrs.get("format_version") in READABLE_VERSIONS:
        return f"{store}: format version {attrs['format_version']}, readable as it is, left as it is"
    if attrs.get("format_version") != 1:
        raise FilterStoreError(f"{store}: format version {attrs.get('format_version')!r} cannot be upgraded")
    model_id = attrs.get("model_id", store.stem)
    what = f"{store} (model {model_id})"
    if attrs.get("depth_method") == "filterdb":
        new = upgraded_attrs(attrs, None, {"graph_level": attrs["max_conv_depth"], "conv_count": None}, what)
    else:
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
    if not dry_run:
        rewrite_attrs(store, new)
        open_filter_store(store)  # reads back as a current store
    return (f"{store}: version 1 -> {FORMAT_VERSION}{' (dry run, nothing written)' if dry_run else ''}; "
            f"max conv depth {new['max_conv_depths']}")


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
    with atomic_output(metadata_path) as temporary:
        temporary.write_text(json.dumps(metadata, indent=2))
