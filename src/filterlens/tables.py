"""Small tables assembled from per-model outputs."""

from __future__ import annotations

import pandas as pd

from filterlens.filterstore import FilterStore


def model_table(sheet: pd.DataFrame, stores: list[FilterStore], metrics: list[pd.DataFrame]) -> pd.DataFrame:
    """Per model: sheet facts, 3x3 layers and filters, accuracies measured here or referenced.

    ``clean_acc_source`` and ``robust_acc_source`` say where each value comes from: measured
    by this run (``measured``: a metrics table of ``metrics`` with a finite value), the sheet
    (``reference``, e.g. RobustBench's leaderboard or the authors' table), or ``unknown``.
    A measured table without a robust accuracy (a clean-only evaluation) leaves the sheet's
    robust_acc. ``accuracy_source`` is ``measured`` when either value was measured, else the
    clean accuracy's source.
    """
    counts = pd.DataFrame([{
        "model_id": s.model_id, "n_layers": len(s.layers), "n_filters": int(s.attrs["n_filters"]),
        "max_conv_depth": s.attrs["max_conv_depth"], "depth_method": s.attrs["depth_method"],
        "depth_definition": s.attrs.get("depth_definition"), "fold_batchnorm": s.attrs.get("fold_batchnorm"),
    } for s in stores])
    table = sheet[["model_id", "dataset", "architecture", "robust", "source", "counterpart",
                   "clean_acc", "robust_acc"]].reset_index(drop=True)
    for column in ("clean_acc", "robust_acc"):
        table[f"{column}_source"] = ["reference" if pd.notna(a) else "unknown" for a in table[column]]
    if metrics:
        measured = pd.concat(metrics).set_index("model_id")
        for column in ("clean_acc", "robust_acc"):
            values = pd.to_numeric(table.model_id.map(measured[column]), errors="coerce")
            hit = values.notna().to_numpy()
            table.loc[hit, column] = values[hit].to_numpy()
            table.loc[hit, f"{column}_source"] = "measured"
    either = (table.clean_acc_source == "measured") | (table.robust_acc_source == "measured")
    table["accuracy_source"] = table.clean_acc_source.where(~either, "measured")
    return table.merge(counts, on="model_id", how="left")
