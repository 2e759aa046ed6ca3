"""Merged analyses over many models, from their small per-model summaries (docs/method.md §4-§5).

Nothing here reads filters: PCA of any set is a sum of per-layer moments, KL of any pooling
is a sum of per-layer histogram counts, quality by depth is a weighted mean of layer rows.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from filterlens.depthgroups import DEPTH_GROUPS
from filterlens.metrics import N_COMPONENTS, Basis, Moments, pca, weighted_kl

POOLINGS = ("unique", "paired")  # docs/method.md §4: unique is the paper's text and the default


# --- sets of models ------------------------------------------------------------------------

def basis_sets(pairs: pd.DataFrame, models: Iterable[str]) -> dict[str, list[str]]:
    """The sets bases are fitted on: full / robust / normal (the paired models) and each model."""
    robust = list(dict.fromkeys(pairs.robust))
    normal = list(dict.fromkeys(pairs.normal))
    sets = {"full": robust + [m for m in normal if m not in robust], "robust": robust, "normal": normal}
    sets.update({f"model:{m}": [m] for m in models})
    return sets


def set_moments(models: Iterable[str], moments: Mapping[str, Iterable[Moments]]) -> Moments:
    """Moments of every layer of every model in ``models`` (sum in the given order)."""
    return Moments.sum(m for model in models for m in moments[model])


def bases_table(bases: Mapping[str, Basis]) -> pd.DataFrame:
    """Tidy: one row per set and component, with variance, ratio, cumulative ratio and vector."""
    rows = []
    for name, basis in bases.items():
        cumulative = np.cumsum(basis.ratio)
        for c in range(N_COMPONENTS):
            row = {"set": name, "n_filters": basis.n, "component": c + 1,
                   "explained_variance": basis.explained_variance[c], "ratio": basis.ratio[c],
                   "cumulative_ratio": cumulative[c]}
            row.update({f"v{i}": basis.components[c, i] for i in range(9)})
            rows.append(row)
    return pd.DataFrame(rows)


def basis_arrays(basis: Basis) -> dict[str, np.ndarray]:
    """The arrays to save a basis as (``load_basis`` reads them back)."""
    return {"n": np.asarray(basis.n), "mean": basis.mean, "components": basis.components,
            "explained_variance": basis.explained_variance, "ratio": basis.ratio}


def load_basis(path) -> Basis:
    with np.load(path) as data:
        return Basis(int(data["n"]), data["mean"], data["components"], data["explained_variance"], data["ratio"])


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
    converted by :func:`filterlens.metrics.distribution` with the bin ``edges`` they were made
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


# --- layer quality -------------------------------------------------------------------------

class SummaryError(ValueError):
    """Per-model summaries that do not belong to the sheet; the message names them and the fix."""


def check_layers_in_sheet(layers: pd.DataFrame, sheet: pd.DataFrame) -> None:
    """Every model_id of the layer rows is a model of the sheet, with a known robust flag."""
    if "model_id" not in layers.columns:
        raise SummaryError("the layer summaries have no model_id column. Fix: summarize the models again "
                           "(snakemake --forcerun summarize_model).")
    known = set(sheet.model_id)
    unknown = sorted({str(m) for m in layers.model_id if m not in known})
    if unknown:
        raise SummaryError(f"layer summaries of model(s) {', '.join(map(repr, unknown))} are not in the sheet "
                           f"(it has {len(known)} models): a summary of another model or zoo. Fix: delete "
                           "results/summaries/<model>/ of those models and summarize the sheet's models again.")
    flags = sheet.robust[sheet.model_id.isin(set(layers.model_id))]
    if bad := sorted(m for m, flag in flags.items() if flag is not True and flag is not False):
        raise SummaryError(f"model(s) {', '.join(map(repr, bad))} have no robust flag in the sheet. "
                           "Fix: set robust to true or false in their rows.")


def _weighted_mean(values: pd.Series, weights: pd.Series) -> float:
    ok = values.notna() & (weights > 0)
    return float(np.average(values[ok], weights=weights[ok])) if ok.any() else float("nan")


def quality_by_depth(layers: pd.DataFrame, sheet: pd.DataFrame) -> pd.DataFrame:
    """Per model and depth group (and 'all'): sparsity = sparse / filters; variance entropy =
    mean over layers weighted by non-sparse filters; orthogonality = mean weighted by c_out."""
    check_layers_in_sheet(layers, sheet)
    rows = []
    for (model, group), part in _with_all_group(layers).groupby(["model_id", "depth_group"], sort=False):
        rows.append({
            "model_id": model, "dataset": sheet.loc[model, "dataset"], "robust": bool(sheet.loc[model, "robust"]),
            "depth_group": group, "n_layers": len(part), "n_filters": int(part.n_filters.sum()),
            "sparsity": part.n_sparse.sum() / part.n_filters.sum() if part.n_filters.sum() else float("nan"),
            "entropy_unscaled": _weighted_mean(part.entropy_unscaled, part.n_nonsparse),
            "entropy_scaled": _weighted_mean(part.entropy_scaled, part.n_nonsparse),
            "orthogonality": _weighted_mean(part.orthogonality, part.c_out),
        })
    order = {g: i for i, g in enumerate(["all", *DEPTH_GROUPS])}
    table = pd.DataFrame(rows)
    return table.sort_values(["model_id", "depth_group"], key=lambda c: c.map(order) if c.name == "depth_group" else c,
                             kind="stable").reset_index(drop=True)


def _with_all_group(layers: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([layers.assign(depth_group="all"), layers], ignore_index=True)


def sparse_shares(layers: pd.DataFrame, sheet: pd.DataFrame) -> pd.DataFrame:
    """Share of sparse filters, robust vs normal, over all layers of all models: pooled
    (sparse filters / filters) and as the mean of the layers' sparsity."""
    check_layers_in_sheet(layers, sheet)
    robust = layers.model_id.map(sheet.set_index("model_id").robust).astype(bool)
    rows = []
    for label, part in (("robust", layers[robust]), ("normal", layers[~robust])):
        rows.append({"training": label, "n_models": part.model_id.nunique(), "n_layers": len(part),
                     "pooled_share": part.n_sparse.sum() / part.n_filters.sum() if len(part) else float("nan"),
                     "mean_layer_share": part.sparsity.mean() if len(part) else float("nan")})
    return pd.DataFrame(rows)
