"""Small tables assembled from per-model outputs."""

from __future__ import annotations

import pandas as pd

from filterlens.filterstore import FilterStore


def model_table(sheet: pd.DataFrame, stores: list[FilterStore], metrics: list[pd.DataFrame]) -> pd.DataFrame:
    """Per model: sheet facts, 3x3 layers and filters, accuracies measured here or referenced.

    ``accuracy_source`` says whether clean_acc/robust_acc were measured by this run
    (``measured``), come from the sheet (``reference``, e.g. RobustBench's leaderboard), or
    are unknown.
    """
    counts = pd.DataFrame([{
        "model_id": s.model_id, "n_layers": len(s.layers), "n_filters": int(s.attrs["n_filters"]),
        "max_conv_depth": s.attrs["max_conv_depth"], "depth_method": s.attrs["depth_method"],
        "depth_definition": s.attrs.get("depth_definition"), "fold_batchnorm": s.attrs.get("fold_batchnorm"),
    } for s in stores])
    table = sheet[["model_id", "dataset", "architecture", "robust", "source", "counterpart",
                   "clean_acc", "robust_acc"]].reset_index(drop=True)
    table["accuracy_source"] = ["reference" if pd.notna(a) else "unknown" for a in table.clean_acc]
    if metrics:
        measured = pd.concat(metrics).set_index("model_id")
        hit = table.model_id.isin(measured.index)
        table.loc[hit, "clean_acc"] = measured.loc[table.model_id[hit], "clean_acc"].to_numpy()
        table.loc[hit, "robust_acc"] = measured.loc[table.model_id[hit], "robust_acc"].to_numpy()
        table.loc[hit, "accuracy_source"] = "measured"
    return table.merge(counts, on="model_id", how="left")
