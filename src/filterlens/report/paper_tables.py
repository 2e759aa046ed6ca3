"""The paper's tables assembled from small per-model outputs (docs/method.md §6)."""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from filterlens.extract.store import FilterStore

# --- tables --------------------------------------------------------------------------------

def _mean_std(values: pd.Series) -> tuple[float, float]:
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan")


def pairs_table(models: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """One row per robust/normal pair: both ids, architecture, 3x3 filters and accuracies."""
    m = models.set_index("model_id")
    rows = []
    for pair in pairs.itertuples():
        r, n = m.loc[pair.robust], m.loc[pair.normal]
        rows.append({
            "dataset": pair.dataset, "architecture": r.architecture, "robust_model": pair.robust,
            "normal_model": pair.normal, "n_layers": r.n_layers, "n_filters": r.n_filters,
            "robust_clean_acc": r.clean_acc, "robust_robust_acc": r.robust_acc, "normal_clean_acc": n.clean_acc,
            "normal_n_filters": n.n_filters, "accuracy_source": r.accuracy_source,
        })
    return pd.DataFrame(rows)


def zoo_summary(models: pd.DataFrame, pairs: pd.DataFrame, datasets: Iterable[str]) -> pd.DataFrame:
    """Table 1, per dataset: mean and std over robust models of their 3x3 filters (millions);
    clean accuracy of the normal models (mean over pairs: a counterpart counts once per robust
    model it is paired with, as the authors' means do); clean and robust accuracy of the
    robust models."""
    m = models.set_index("model_id")
    rows = []
    for dataset in datasets:
        part = pairs[pairs.dataset == dataset]
        robust = m.loc[list(dict.fromkeys(part.robust))]
        normal_paired = m.loc[list(part.normal)]
        filters_mean, filters_std = _mean_std(robust.n_filters / 1e6)
        row = {"dataset": dataset, "n_robust": len(robust), "n_normal": part.normal.nunique(),
               "filters_m_mean": filters_mean, "filters_m_std": filters_std,
               "filters_total": int(robust.n_filters.sum())}
        for name, frame, column in (("normal_clean_acc", normal_paired, "clean_acc"),
                                    ("robust_clean_acc", robust, "clean_acc"),
                                    ("robust_robust_acc", robust, "robust_acc")):
            row[f"{name}_mean"], row[f"{name}_std"] = _mean_std(frame[column])
            sources = frame.get(f"{column}_source", frame.get("accuracy_source"))
            if sources is None:  # a models table without sources (not results/tables/models.tsv)
                sources = pd.Series("unknown", index=frame.index)
            row[f"{name}_source"] = source_note(sources[~frame.index.duplicated()])
        rows.append(row)
    return pd.DataFrame(rows)


ACCURACY_SOURCES = {"measured": "measured by this run on the dataset's test set",
                    "reference": "the sheet's values", "unknown": "unknown"}


def source_note(sources: pd.Series) -> str:
    """One word for where a mean's values come from ('measured', 'reference' for the sheet,
    'unknown'), or each source with its number of models when they differ."""
    counts = sources.value_counts()
    if len(counts) == 1:
        return str(counts.index[0])
    return ", ".join(f"{source} ({n})" for source, n in counts.items()) if len(counts) else "unknown"


def zoo_summary_sources(table: pd.DataFrame, labels: Mapping[str, str], sheet: str) -> str:
    """Table 1's caption text naming each accuracy's source per dataset, from the
    ``*_source`` columns of :func:`zoo_summary`; ``labels`` maps dataset ids to names."""
    parts = []
    for name, what in (("normal_clean_acc", "clean accuracy of the normal models"),
                       ("robust_clean_acc", "clean accuracy of the robust models"),
                       ("robust_robust_acc", "robust accuracy of the robust models")):
        by_source: dict[str, list[str]] = {}
        for dataset, note in zip(table.dataset, table[f"{name}_source"]):
            by_source.setdefault(note, []).append(labels.get(dataset, dataset))
        phrases = []
        for note, datasets in by_source.items():
            text = ACCURACY_SOURCES.get(note, note)  # a mixed note lists each source's number of models
            if "reference" in note:
                text += f" (reference: the sheet, {sheet})" if note != "reference" else f" ({sheet})"
            phrases.append(f"{', '.join(datasets)}: {text}")
        parts.append(f"{what}: " + "; ".join(phrases))
    return "Sources: " + ". ".join(p[0].upper() + p[1:] for p in parts) + "."


def this_run_values(kl_by_dataset: pd.DataFrame, kl_by_depth: pd.DataFrame, sparse_shares: pd.DataFrame,
                    summary: pd.DataFrame, bases: pd.DataFrame) -> pd.DataFrame:
    """The headline numbers of this run as (metric, dataset, value) rows, in the units of
    config/reference/authors_values.tsv (KL in nats, shares and accuracies in percent)."""
    rows = []
    for r in kl_by_dataset.itertuples():
        rows.append((f"kl_{r.pooling}", r.dataset, r.kl))
    first = kl_by_depth[kl_by_depth.depth_group == "first"]
    for r in first.itertuples():
        # no 3x3 filter at depth 0 (ImageNet ResNets): the authors report 0, here no KL (NaN, "no filters")
        rows.append(("kl_first_layer", r.dataset, r.kl if r.n_robust_filters and r.n_normal_filters else np.nan))
    for r in sparse_shares.itertuples():
        rows.append((f"sparse_share_{r.training}", "all", 100 * r.pooled_share))
    for r in summary.itertuples():
        rows += [("filters_total_robust", r.dataset, r.filters_total),
                 ("normal_clean_acc_mean", r.dataset, r.normal_clean_acc_mean),
                 ("robust_clean_acc_mean", r.dataset, r.robust_clean_acc_mean),
                 ("robust_robust_acc_mean", r.dataset, r.robust_robust_acc_mean)]
    normal = bases[(bases.set == "normal") & (bases.component == 1)]
    if len(normal):
        rows.append(("normal_first_component_ratio", "all", 100 * float(normal.ratio.iloc[0])))
    return pd.DataFrame(rows, columns=["metric", "dataset", "value"])


# What the comparison says of a KL this run has no number for: a side without filters (docs/method.md §4).
NO_FILTERS = "no filters"
# Sources whose weights are not the paper's models even where the ids are (scale runs, mini zoo).
NOT_THE_PAPERS_WEIGHTS = {"random": "seeded random weights", "minizoo": "the offline mini zoo"}
# Headline numbers that do not depend on how filters are extracted (counts and accuracies).
EXTRACTION_INDEPENDENT = {"filters_total_robust", "normal_clean_acc_mean", "robust_clean_acc_mean",
                          "robust_robust_acc_mean"}


def zoo_comparability(sheet: pd.DataFrame, paper_sheet: pd.DataFrame, fold_batchnorm: bool,
                      filterdb_models=(), changed: Sequence[str] = ()) -> pd.DataFrame:
    """Per dataset of the paper (and 'all': every dataset), whether this run's numbers can be
    compared with the authors' (docs/method.md §1-§2).

    ``zoo``: None when this run's robust/normal pairs of the dataset are exactly the paper's
    (``paper_sheet``: config/models/paper.tsv, by model id) and none of them has weights that
    are not the paper's model (seeded random weights, the mini zoo); else why not.
    ``definitions``: None when every model's filters are as the authors' (BatchNorm folded by
    the export: ``fold_batchnorm``, or read from the authors' database: source filterdb or
    ``filterdb_models``, "all" for every model) and every documented choice that moves the
    compared numbers is at its default (``changed``: those that are not, as "key: value",
    docs/method.md, "The documented choices"); else why not. It matters for every number but
    the filter counts and accuracies (:data:`EXTRACTION_INDEPENDENT`).
    """
    from filterlens.config.sheet import pairs

    ours, theirs = pairs(sheet), pairs(paper_sheet)
    from_db = set(sheet.model_id) if filterdb_models == "all" else set(filterdb_models or ())
    from_db |= set(sheet.model_id[sheet.source == "filterdb"])
    rows = []
    datasets = list(dict.fromkeys(theirs.dataset))
    for dataset in [*datasets, "all"]:
        mine = ours if dataset == "all" else ours[ours.dataset == dataset]
        paper = theirs if dataset == "all" else theirs[theirs.dataset == dataset]
        models = list(dict.fromkeys([*mine.robust, *mine.normal]))
        zoo = None
        if not len(mine):
            zoo = "no model of this dataset"
        elif set(zip(mine.robust, mine.normal)) != set(zip(paper.robust, paper.normal)):
            zoo = f"different zoo ({mine.robust.nunique()} robust models, the paper {paper.robust.nunique()})"
        else:
            other = [NOT_THE_PAPERS_WEIGHTS[s] for s in sheet.loc[models, "source"] if s in NOT_THE_PAPERS_WEIGHTS]
            if other:
                zoo = f"different zoo (the paper's ids with {other[0]})"
        raw = [] if fold_batchnorm else [m for m in models if m not in from_db]
        definitions = (f"different definitions ({len(raw)} models' filters are raw weights: "
                       "extraction.fold_batchnorm is false; the authors' are BatchNorm-folded)") if raw else None
        if changed and not definitions:
            definitions = f"different definitions ({'; '.join(changed)}; the authors' numbers are under the defaults)"
        rows.append({"dataset": dataset, "zoo": zoo, "definitions": definitions})
    return pd.DataFrame(rows)


def paper_comparison(authors: pd.DataFrame, this_run: pd.DataFrame,
                     comparability: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every headline number of the authors beside this run's (NaN where this run lacks the
    dataset), then this run's numbers for datasets the authors did not have (authors NaN).

    Like with like: ``difference`` (this run - authors) is given only where ``comparison`` is
    'same zoo and definitions', i.e. :func:`zoo_comparability` finds this run's zoo of the
    dataset to be the paper's and, for numbers that depend on the extraction, its filters as
    the authors'. Otherwise ``comparison`` says why not ('different zoo ...', 'different
    definitions ...', 'not in this run') and a value of this run stands on its own. Without
    ``comparability`` no zoo is taken to be the paper's.
    """
    ours = this_run.set_index(["metric", "dataset"]).value
    table = authors.rename(columns={"value": "authors_value"}).copy()
    table["this_run"] = [ours.get((m, d), np.nan) for m, d in zip(table.metric, table.dataset)]
    status = comparability.set_index("dataset") if comparability is not None else None

    def comparison(metric, dataset, value):
        if not np.isfinite(value):
            return NO_FILTERS if (metric, dataset) in ours.index else "not in this run"
        if status is None or dataset not in status.index:
            return "different zoo"
        row = status.loc[dataset]
        if row.zoo is not None and not pd.isna(row.zoo):
            return row.zoo
        if metric not in EXTRACTION_INDEPENDENT and row.definitions is not None and not pd.isna(row.definitions):
            return row.definitions
        return "same zoo and definitions"

    table["comparison"] = [comparison(m, d, v) for m, d, v in zip(table.metric, table.dataset, table.this_run)]
    same = (table.comparison == "same zoo and definitions").to_numpy()
    table["difference"] = np.where(same, table.this_run - table.authors_value, np.nan)
    known = set(zip(authors.metric, authors.dataset))
    units = dict(zip(authors.metric, authors.unit))
    descriptions = dict(zip(authors.metric, authors.description))
    extra = this_run[[(m, d) not in known and m in units for m, d in zip(this_run.metric, this_run.dataset)]]
    if len(extra):
        table = pd.concat([table, pd.DataFrame({
            "metric": extra.metric, "dataset": extra.dataset, "description": extra.metric.map(descriptions),
            "unit": extra.metric.map(units), "authors_value": np.nan, "source": "not in the paper",
            "this_run": extra.value, "difference": np.nan, "comparison": "not in the paper",
        })], ignore_index=True)
    columns = ["metric", "dataset", "description", "unit", "authors_value", "this_run", "difference", "comparison",
               "source"]
    return table[columns]


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
