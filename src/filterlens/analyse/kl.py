"""KL divergence between robust and normal coefficient distributions, pooled from per-layer
histogram counts (docs/method.md §4): no analysis here reads a filter.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from filterlens.io.files import read_tsv
from filterlens.method.depth_groups import DEPTH_GROUPS
from filterlens.method.distributions import histogram_edges, weighted_kl
from filterlens.method.pca import N_COMPONENTS

POOLINGS = ("unique", "paired")  # docs/method.md §4: unique is the paper's text and the default


# --- KL divergence -------------------------------------------------------------------------

def pooled_counts(models: Iterable[str], histograms: Mapping[str, np.ndarray], layers: Mapping[str, pd.DataFrame],
                  group: str | None = None) -> np.ndarray:
    """Counts (9, bins) summed over the layers (of one depth group, or all) of ``models``.

    A model listed twice counts twice (the paired pooling relies on it).
    """
    total = None
    for model in models:
        counts = histograms[model]
        if group is not None:
            counts = counts[(layers[model].sort_values("layer_id").depth_group == group).to_numpy()]
        summed = counts.sum(axis=0)
        total = summed if total is None else total + summed
    return total


def kl_tables(pairs: pd.DataFrame, histograms: Mapping[str, np.ndarray], layers: Mapping[str, pd.DataFrame],
              weights: np.ndarray, edges: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Weighted symmetric KL robust vs normal: per dataset and pooling, per dataset and depth
    group (paired), and the per-component values behind both. Counts are pooled (summed), then
    converted by :func:`filterlens.method.distributions.distribution` with the bin ``edges`` they were made
    with."""
    by_dataset, by_depth, components = [], [], []

    def record(dataset, pooling, group, robust_models, normal_models):
        p = pooled_counts(robust_models, histograms, layers, None if group == "all" else group)
        q = pooled_counts(normal_models, histograms, layers, None if group == "all" else group)
        total, per_component = weighted_kl(p, q, weights, edges)
        for c in range(N_COMPONENTS):
            components.append({"dataset": dataset, "pooling": pooling, "depth_group": group, "component": c + 1,
                               "weight": weights[c], "kl": per_component[c], "weighted_kl": weights[c] * per_component[c]})
        return {"dataset": dataset, "pooling": pooling, "depth_group": group, "kl": total,
                "n_robust_filters": int(p[0].sum()), "n_normal_filters": int(q[0].sum())}

    for dataset, dataset_pairs in pairs.groupby("dataset", sort=False):
        unique = (list(dict.fromkeys(dataset_pairs.robust)), list(dict.fromkeys(dataset_pairs.normal)))
        paired = (list(dataset_pairs.robust), list(dataset_pairs.normal))
        by_dataset.append({**record(dataset, "unique", "all", *unique), "default": True})
        by_dataset.append({**record(dataset, "paired", "all", *paired), "default": False})
        for group in DEPTH_GROUPS:
            by_depth.append(record(dataset, "paired", group, *paired))
    return pd.DataFrame(by_dataset), pd.DataFrame(by_depth), pd.DataFrame(components)


def read_paired_histograms(sheet_path, histogram_paths, layer_paths):
    """The sheet's robust/normal pairs; per paired model (in sheet order, as the rules list
    them) its histogram counts (n_layers, 9, bins) and its layer table; and the bin edges
    (bins + 1,) every model's counts were made with (one shared range, else an error)."""
    from filterlens.config.sheet import pairs, read_sheet

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
