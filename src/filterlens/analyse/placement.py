"""Placing candidate models against a reference bundle (docs/bundle.md): per candidate and
depth group, the weighted symmetric KL of its coefficient distribution to the reference's robust
pool and to its normal pool, on the bundle's basis and range, and which pool is closer beyond
the bundle's noise level (docs/method.md §4, "Placement")."""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd

from filterlens.analyse.bundle import Bundle
from filterlens.analyse.kl import ALL, divergence, group_counts
from filterlens.method.depth_groups import DEPTH_GROUPS

TRAININGS = ("robust", "normal")
# What closer_to says where it names no pool.
NO_FILTERS = "no filters"  # the candidate's group or the reference's pool holds no filter: no KL
WITHIN_NOISE = "within noise"  # the two KLs differ by no more than the noise level
NO_NOISE_LEVEL = "no noise level"  # the bundle knows none for the group (pools of one model, version 1)


def closer_pool(kl_robust: float, kl_normal: float, noise: float) -> str:
    """'robust' or 'normal' where its KL is smaller than the other's by more than ``noise``;
    else :data:`WITHIN_NOISE`; :data:`NO_FILTERS` where a KL is NaN (a side without filters),
    :data:`NO_NOISE_LEVEL` where ``noise`` is NaN."""
    if math.isnan(kl_robust) or math.isnan(kl_normal):
        return NO_FILTERS
    if math.isnan(noise):
        return NO_NOISE_LEVEL
    if abs(kl_robust - kl_normal) <= noise:
        return WITHIN_NOISE
    return "robust" if kl_robust < kl_normal else "normal"


def inside_reference(kl_robust: float, kl_normal: float, noise: float) -> str:
    """'yes' where the candidate lies no farther from its nearer pool than the reference's own
    models lie from theirs (the noise level), 'no' where it lies farther from both: then
    ``closer_to`` says which pool is nearer, not that the candidate resembles its models (a
    random-weight model is far from both); 'unknown' where a KL or the noise level is NaN."""
    if math.isnan(kl_robust) or math.isnan(kl_normal) or math.isnan(noise):
        return "unknown"
    return "yes" if min(kl_robust, kl_normal) <= noise else "no"


def placement_table(bundle: Bundle, datasets: Mapping[str, str], histograms: Mapping[str, np.ndarray],
                    outside: Mapping[str, np.ndarray], layers: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per candidate and depth group ('all' first): KL to the bundle's robust and normal
    pools of the candidate's dataset (``datasets[model]``; NaN where the candidate or the pool has
    no filters in the group), the bundle's noise level, the closer pool (:func:`closer_pool`),
    the candidate's filters in the group and its coefficients (over the 9 components) below and
    above the bundle's range, which the counts and the KL leave out. ``histograms[model]``
    (n_layers, 9, bins) and ``outside[model]`` (n_layers, 9, 2) are in layer_id order, as
    ``layers[model]``."""
    weights, edges = bundle.basis.ratio, bundle.edges
    rows = []
    for group in [ALL, *DEPTH_GROUPS]:
        counts = group_counts(histograms, layers, group)
        beyond = group_counts(outside, layers, group)
        for model, p in counts.items():
            dataset = datasets[model]
            kl = {t: divergence(p, bundle.pool(dataset, t, group), weights, edges)[0] for t in TRAININGS}
            noise = bundle.noise_level(dataset, group)
            rows.append({"model_id": model, "dataset": dataset, "depth_group": group,
                         "kl_robust": kl["robust"], "kl_normal": kl["normal"], "noise": noise,
                         "closer_to": closer_pool(kl["robust"], kl["normal"], noise),
                         "inside_reference": inside_reference(kl["robust"], kl["normal"], noise),
                         "n_filters": int(p[0].sum() + beyond[model][0].sum()),
                         "coefficients_below_range": int(beyond[model][:, 0].sum()),
                         "coefficients_above_range": int(beyond[model][:, 1].sum())})
    table = pd.DataFrame(rows)
    order = {model: i for i, model in enumerate(histograms)}
    return table.sort_values(["model_id"], key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def printed_placement(table: pd.DataFrame) -> pd.DataFrame:
    """The placement table as text: KL "no filters" where it is not a number, the noise level
    "none" where the bundle knows none, numbers to 4 significant digits."""
    printed = table.copy()
    for column, missing in (("kl_robust", NO_FILTERS), ("kl_normal", NO_FILTERS), ("noise", "none")):
        printed[column] = [missing if math.isnan(v) else f"{v:.4g}" for v in table[column]]
    return printed


def definition_mismatches(bundle: Bundle, depth_definition: str, fold_batchnorm: bool,
                          sparse_reference: str) -> list[str]:
    """The settings of this run that differ from those the bundle was made with."""
    definitions = {**bundle.manifest["definitions"], "sparse_reference": bundle.sparse_reference}
    ours = {"depth_definition": depth_definition, "fold_batchnorm": fold_batchnorm,
            "sparse_reference": sparse_reference}
    return [f"{key}: bundle {definitions[key]!r}, this run {value!r}" for key, value in ours.items()
            if definitions[key] != value]
