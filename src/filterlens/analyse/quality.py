"""Layer quality (sparsity, variance entropy, orthogonality) by depth group across models
(docs/method.md §5), as weighted means of per-layer rows.
"""

from __future__ import annotations

import pandas as pd

from filterlens.method.depth_groups import sorted_by_model_and_depth, with_all_group
from filterlens.method.measures import QUALITY, aggregate, table_columns

# --- layer quality -------------------------------------------------------------------------

class SummaryError(ValueError):
    """Per-model summaries that do not belong to the sheet; the message names them and the fix."""


def check_layers_in_sheet(layers: pd.DataFrame, sheet: pd.DataFrame) -> None:
    """Every model_id of the layer rows is a model of the sheet."""
    if "model_id" not in layers.columns:
        raise SummaryError("the layer summaries have no model_id column. Fix: summarize the models again "
                           "(snakemake --forcerun summarize_model).")
    known = set(sheet.model_id)
    unknown = sorted({str(m) for m in layers.model_id if m not in known})
    if unknown:
        raise SummaryError(f"layer summaries of model(s) {', '.join(map(repr, unknown))} are not in the sheet "
                           f"(it has {len(known)} models): a summary of another model or zoo. Fix: delete "
                           "results/summaries/<model>/ of those models and summarize the sheet's models again.")


def measures_by_depth(layers: pd.DataFrame, sheet: pd.DataFrame, family: str, counts,
                      entropy_weights: str = "nonsparse") -> pd.DataFrame:
    """Per model and depth group (and 'all'): the model's dataset and robustness, ``n_layers``, the counts
    ``counts(part)`` (a dict of columns) and the family's measures of the registry
    (:mod:`filterlens.method.measures`), each aggregated from the group's per-layer rows as registered."""
    rows = []
    for (model, group), part in with_all_group(layers).groupby(["model_id", "depth_group"], sort=False):
        rows.append({"model_id": model, "dataset": sheet.loc[model, "dataset"], "robust": sheet.loc[model, "robust"],
                     "depth_group": group, "n_layers": len(part), **counts(part),
                     **{m.name: aggregate(part, m) for m in table_columns(family, entropy_weights)}})
    return sorted_by_model_and_depth(pd.DataFrame(rows))


def quality_by_depth(layers: pd.DataFrame, sheet: pd.DataFrame, entropy_weights: str = "nonsparse") -> pd.DataFrame:
    """Per model and depth group (and 'all'): sparsity = sparse / filters; variance entropy =
    mean over layers weighted by non-sparse filters (``entropy_weights="all"``: by all filters,
    config analysis.entropy_weights); orthogonality = mean weighted by c_out."""
    check_layers_in_sheet(layers, sheet)
    return measures_by_depth(layers, sheet, QUALITY, lambda part: {"n_filters": int(part.n_filters.sum())},
                             entropy_weights)


def sparse_shares(layers: pd.DataFrame, sheet: pd.DataFrame) -> pd.DataFrame:
    """Share of sparse filters, robust vs normal, over all layers of all models: pooled
    (sparse filters / filters) and as the mean of the layers' sparsity."""
    check_layers_in_sheet(layers, sheet)
    flag = layers.model_id.map(sheet.set_index("model_id").robust)
    rows = []  # models of unknown robustness (robust empty) are on neither side
    for label, part in (("robust", layers[flag == True]), ("normal", layers[flag == False])):  # noqa: E712
        rows.append({"training": label, "n_models": part.model_id.nunique(), "n_layers": len(part),
                     "pooled_share": part.n_sparse.sum() / part.n_filters.sum() if len(part) else float("nan"),
                     "mean_layer_share": part.sparsity.mean() if len(part) else float("nan")})
    return pd.DataFrame(rows)
