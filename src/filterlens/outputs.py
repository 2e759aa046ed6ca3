"""Writing the workflow's small outputs: complete or not at all (see filterlens.atomic)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from filterlens.atomic import atomic_output


def write_tsv(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """A tidy TSV; floats keep full precision (repr), so merges downstream lose nothing."""
    with atomic_output(path) as temporary:
        table.to_csv(temporary, sep="\t", index=False)


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    with atomic_output(path) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, **arrays)


def read_tsv(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", keep_default_na=True)


def read_paired_histograms(sheet_path, histogram_paths, layer_paths):
    """The sheet's robust/normal pairs; per paired model (in sheet order, as the rules list
    them) its histogram counts (n_layers, 9, bins) and its layer table; and the bin edges
    (bins + 1,) every model's counts were made with (one shared range, else an error)."""
    from filterlens.metrics import histogram_edges
    from filterlens.sheet import pairs, read_sheet

    sheet = read_sheet(sheet_path)
    model_pairs = pairs(sheet)
    paired = set(model_pairs.robust) | set(model_pairs.normal)
    models = [m for m in sheet.model_id if m in paired]
    histograms, layers, ranges = {}, {}, set()
    for model, histogram_path, layers_path in zip(models, histogram_paths, layer_paths, strict=True):
        with np.load(histogram_path) as data:
            histograms[model] = data["counts"]
            ranges.add((float(data["low"]), float(data["high"]), int(data["counts"].shape[-1])))
        layers[model] = read_tsv(layers_path)
    if len(ranges) != 1:
        raise ValueError(f"the models' histograms do not share one range and bin count: {sorted(ranges)}; "
                         "rerun coefficient_histograms (they must all use results/analysis/coefficient_range.tsv)")
    (low, high, bins), = ranges
    return model_pairs, histograms, layers, histogram_edges(low, high, bins)
