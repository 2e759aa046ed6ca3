"""Filter measures of neighbouring work (docs/method.md §7) merged across models by depth group."""

from __future__ import annotations

import numpy as np
import pandas as pd

from filterlens.method.depth_groups import sorted_by_model_and_depth, with_all_group

# --- merge by depth group ------------------------------------------------------------------

# The per-model measures of filter_measures_by_depth.tsv, with a label each (figures, tables).
MEASURES = {
    "l1l2_ratio": "L1/L2 sparsity ratio",
    "hf_share": "high-frequency energy share",
    "spectral_norm": "spectral norm (mean over layers)",
    "effective_rank_ratio": "effective rank / count",
    "stable_rank_ratio": "stable rank / count",
    "perturbation_ratio": "perturbation-to-signal ratio (PGD)",
    "perturbation_ratio_random": "perturbation-to-signal ratio (random)",
}


def _mean(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float("nan")


def filter_measures_by_depth(layers, spectra, perturbation, sheet):
    """Per model and depth group (and 'all'): the L1/L2 ratio and the high-frequency share as
    means over the group's non-sparse filters (sums / counts of pass 1); spectral numbers and
    perturbation ratios as means over the group's layers (spectral_norm_max: the largest).

    ``layers``, ``spectra``, ``perturbation``: concatenated per-layer tables (model_id, name,
    depth_group, ...); ``spectra`` and ``perturbation`` may lack models or be None (not
    computed): their values are NaN.
    """
    keys = ["model_id", "name"]
    spectral = ["spectral_norm", "sigma_mean", "stable_rank_ratio", "effective_rank_ratio"]
    perturbed = ["perturbation_ratio", "perturbation_ratio_random"]
    merged = layers[[*keys, "depth_group", "n_nonsparse", "l1l2_ratio_sum", "hf_share_sum"]]
    for table, columns in ((spectra, spectral), (perturbation, perturbed)):
        if table is not None and len(table):
            merged = merged.merge(table[[*keys, *columns]], on=keys, how="left")
        else:  # none computed (config analysis.spectra off, or no test data)
            merged = merged.assign(**{column: np.nan for column in columns})
    rows = []
    for (model, group), part in with_all_group(merged).groupby(["model_id", "depth_group"], sort=False):
        n = int(part.n_nonsparse.sum())
        row = {"model_id": model, "dataset": sheet.loc[model, "dataset"], "robust": sheet.loc[model, "robust"],
               "depth_group": group, "n_layers": len(part), "n_nonsparse": n,
               "l1l2_ratio": part.l1l2_ratio_sum.sum() / n if n else float("nan"),
               "hf_share": part.hf_share_sum.sum() / n if n else float("nan")}
        row.update({column: _mean(part[column]) for column in spectral})
        row["spectral_norm_max"] = float(part.spectral_norm.max()) if part.spectral_norm.notna().any() else np.nan
        row.update({column: _mean(part[column]) for column in perturbed})
        rows.append(row)
    return sorted_by_model_and_depth(pd.DataFrame(rows))
