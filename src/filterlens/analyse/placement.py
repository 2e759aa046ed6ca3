"""Placing candidate models against a reference bundle (docs/bundle.md): per candidate and
depth group, the weighted symmetric KL of its coefficient distribution to the reference's robust
pool and to its normal pool, on the bundle's basis and range, and which pool is closer."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from filterlens.analyse.bundle import Bundle
from filterlens.analyse.kl import ALL, group_counts
from filterlens.method.depth_groups import DEPTH_GROUPS
from filterlens.method.distributions import weighted_kl

TRAININGS = ("robust", "normal")


def closer_pool(kl_robust: float, kl_normal: float, n_filters: int) -> str:
    """'robust' or 'normal' (the smaller KL), 'tie', or 'none' for a group without filters."""
    if n_filters == 0:
        return "none"
    if kl_robust == kl_normal:
        return "tie"
    return "robust" if kl_robust < kl_normal else "normal"


def placement_table(bundle: Bundle, datasets: Mapping[str, str], histograms: Mapping[str, np.ndarray],
                    outside: Mapping[str, np.ndarray], layers: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per candidate and depth group ('all' first): KL to the bundle's robust and normal
    pools of the candidate's dataset (``datasets[model]``), the closer pool, the candidate's
    filters in the group and its coefficients (over the 9 components) below and above the
    bundle's range, which the counts and the KL leave out. ``histograms[model]`` (n_layers, 9,
    bins) and ``outside[model]`` (n_layers, 9, 2) are in layer_id order, as ``layers[model]``."""
    weights, edges = bundle.basis.ratio, bundle.edges
    rows = []
    for group in [ALL, *DEPTH_GROUPS]:
        counts = group_counts(histograms, layers, group)
        beyond = group_counts(outside, layers, group)
        for model, p in counts.items():
            kl = {t: weighted_kl(p, bundle.pool(datasets[model], t, group), weights, edges)[0] for t in TRAININGS}
            n_filters = int(p[0].sum() + beyond[model][0].sum())
            rows.append({"model_id": model, "dataset": datasets[model], "depth_group": group,
                         "kl_robust": kl["robust"], "kl_normal": kl["normal"],
                         "closer_to": closer_pool(kl["robust"], kl["normal"], n_filters),
                         "n_filters": n_filters,
                         "coefficients_below_range": int(beyond[model][:, 0].sum()),
                         "coefficients_above_range": int(beyond[model][:, 1].sum())})
    table = pd.DataFrame(rows)
    order = {model: i for i, model in enumerate(histograms)}
    return table.sort_values(["model_id"], key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def definition_mismatches(bundle: Bundle, depth_definition: str, fold_batchnorm: bool) -> list[str]:
    """The settings of this run that differ from those the bundle was made with."""
    definitions = bundle.manifest["definitions"]
    ours = {"depth_definition": depth_definition, "fold_batchnorm": fold_batchnorm}
    return [f"{key}: bundle {definitions[key]!r}, this run {value!r}" for key, value in ours.items()
            if definitions[key] != value]
