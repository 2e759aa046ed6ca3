"""Pure data shaping for the paper's figures and tables (docs/method.md §6): small tables in, small
tables out; the rule scripts read and write the files and draw.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from filterlens.datasets import missing_test_images, test_images
from filterlens.metrics import N_COMPONENTS, distribution, histogram_edges


class FigureConfigError(ValueError):
    """A figures setting the zoo cannot satisfy; the message names key, value and allowed ids."""


# --- which models a figure shows -----------------------------------------------------------

def robust_models(sheet: pd.DataFrame) -> list[str]:
    return list(sheet.model_id[sheet.robust == True])  # noqa: E712 (a boolean column)


def resolve_pair(sheet: pd.DataFrame, robust_id: str | None, key: str = "figures.pair") -> tuple[str, str]:
    """(robust, normal) for Fig. 4-6: ``robust_id`` and its counterpart from the sheet.

    ``None`` means the sheet's first robust model. An id that is not a robust model of the
    sheet raises :class:`FigureConfigError` naming the key, the value and the allowed ids.
    """
    allowed = robust_models(sheet)
    if not allowed:
        raise FigureConfigError(f"config key {key}: the zoo has no robust model, so Fig. 4-6 have no pair to show")
    if robust_id is None:
        robust_id = allowed[0]
    if robust_id not in allowed:
        what = ("is a normal model; name the robust model of the pair" if robust_id in set(sheet.model_id)
                else "is not a model of the zoo")
        raise FigureConfigError(f"config key {key}: {robust_id!r} {what}. Allowed (robust model ids of the "
                                f"sheet): {', '.join(allowed)}")
    return robust_id, str(sheet.loc[robust_id, "counterpart"])


def activation_inputs(sheet: pd.DataFrame, model: str, cifar_dir: str) -> dict[str, str]:
    """Fig. 6's inputs: the model's checkpoint and its dataset's test images, which this run
    holds for the mini zoo's dataset and for CIFAR-10/100 when torchvision's test file is under
    ``cifar_dir`` (cifar_training.data_dir); otherwise :class:`FigureConfigError` says why."""
    dataset = sheet.loc[model, "dataset"]
    data = test_images(dataset, cifar_dir)
    if data is None:
        raise FigureConfigError(f"Fig. 6 attacks a test image of {model}'s dataset {dataset!r}, but "
                                f"{missing_test_images(dataset, cifar_dir)}; or set figures.pair to a model of "
                                "a dataset whose test images are at hand")
    return {"model": f"data/models/{model}.pt", "data": data}


def sample_indices(n_total: int, n: int, seed: int) -> np.ndarray:
    """``min(n, n_total)`` distinct indices of ``range(n_total)``, sorted, fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_total, size=min(n, n_total), replace=False))


# --- Fig. 3: pooled coefficient distributions ----------------------------------------------

def coefficient_distributions(pairs: pd.DataFrame, histograms: Mapping[str, np.ndarray], low: float,
                              high: float) -> pd.DataFrame:
    """Per dataset and training (unique pooling: each distinct model once), per component and
    bin: counts summed over all layers of the models; probability = count / total count of
    the component (NaN when the component has no coefficient); and distribution, the
    component's histogram as the KL compares it (:func:`filterlens.metrics.distribution`:
    densities with empty bins at float32 eps, normalised to sum 1).

    ``histograms`` maps model id to its counts (n_layers, 9, bins) over [low, high].
    """
    rows = []
    for dataset, part in pairs.groupby("dataset", sort=False):
        for training, models in (("robust", part.robust), ("normal", part.normal)):
            models = list(dict.fromkeys(models))
            counts = sum(histograms[m].sum(axis=0) for m in models)  # (9, bins)
            bins = counts.shape[1]
            edges = histogram_edges(low, high, bins)
            totals = counts.sum(axis=1)
            compared = distribution(counts, edges)
            for c in range(N_COMPONENTS):
                probability = counts[c] / totals[c] if totals[c] else np.full(bins, np.nan)
                rows.append(pd.DataFrame({
                    "dataset": dataset, "training": training, "component": c + 1, "bin": np.arange(bins),
                    "bin_left": edges[:-1], "bin_right": edges[1:], "count": counts[c].astype(np.int64),
                    "probability": probability, "distribution": compared[c],
                }))
    columns = ["dataset", "training", "component", "bin", "bin_left", "bin_right", "count", "probability",
               "distribution"]
    return pd.concat(rows, ignore_index=True)[columns] if rows else pd.DataFrame(columns=columns)


# --- Fig. 7: layer quality over the pairings ------------------------------------------------

def quality_over_pairings(quality: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Fig. 7's boxes as the authors drew them: one entry per robust/normal pairing, training
    and depth group. Per dataset, the robust box holds the robust model of each pairing and the
    normal box its counterpart, so a normal model paired with k robust models counts k times;
    models in no pairing are left out. ``quality`` is the per-model table of
    :func:`filterlens.analysis.quality_by_depth` (model_id, depth_group, metrics); the result
    has its columns, with ``dataset`` and ``robust`` taken from the pairing, plus ``pair``
    (the pairing's position in ``pairs``) and ``training`` ('robust' or 'normal')."""
    entries = [{"pair": i, "dataset": p.dataset, "training": training, "model_id": model}
               for i, p in enumerate(pairs.itertuples()) for training, model in (("robust", p.robust),
                                                                                 ("normal", p.normal))]
    columns = [c for c in quality.columns if c not in ("dataset", "robust")]
    slots = pd.DataFrame(entries, columns=["pair", "dataset", "training", "model_id"])
    table = slots.merge(quality[columns], on="model_id", how="inner", validate="many_to_many")
    table.insert(3, "robust", table.training == "robust")
    return table.sort_values(["pair", "training", "depth_group"], kind="stable").reset_index(drop=True)


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
        # no 3x3 filter at depth 0 (ImageNet ResNets): the authors report 0
        rows.append(("kl_first_layer", r.dataset, r.kl if r.n_robust_filters and r.n_normal_filters else 0.0))
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


# Sources whose weights are not the paper's models even where the ids are (scale runs, mini zoo).
NOT_THE_PAPERS_WEIGHTS = {"random": "seeded random weights", "minizoo": "the offline mini zoo"}
# Headline numbers that do not depend on how filters are extracted (counts and accuracies).
EXTRACTION_INDEPENDENT = {"filters_total_robust", "normal_clean_acc_mean", "robust_clean_acc_mean",
                          "robust_robust_acc_mean"}


def zoo_comparability(sheet: pd.DataFrame, paper_sheet: pd.DataFrame, fold_batchnorm: bool,
                      filterdb_models=()) -> pd.DataFrame:
    """Per dataset of the paper (and 'all': every dataset), whether this run's numbers can be
    compared with the authors' (docs/method.md §1-§2).

    ``zoo``: None when this run's robust/normal pairs of the dataset are exactly the paper's
    (``paper_sheet``: config/models/paper.tsv, by model id) and none of them has weights that
    are not the paper's model (seeded random weights, the mini zoo); else why not.
    ``definitions``: None when every model's filters are as the authors' (BatchNorm folded by
    the export: ``fold_batchnorm``, or read from the authors' database: source filterdb or
    ``filterdb_models``, "all" for every model); else why not. It matters for every number
    but the filter counts and accuracies (:data:`EXTRACTION_INDEPENDENT`).
    """
    from filterlens.sheet import pairs

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
            return "not in this run"
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


# --- writing tables ------------------------------------------------------------------------

def _format(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"
    return str(value)


def formatted(table: pd.DataFrame, digits: Mapping[str, int] | None = None, default_digits: int = 3) -> pd.DataFrame:
    """Every cell as text: NaN as n/a, integers with thousands separators, floats rounded."""
    digits = digits or {}
    return pd.DataFrame({c: [_format(v, digits.get(c, default_digits)) for v in table[c]] for c in table.columns})


UNIT_DIGITS = {"nats": 3, "%": 2}


def format_by_unit(value, unit: str) -> str:
    """A number as printed in the comparison table: counts as integers, KL to 3, % to 2 digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "filters":
        return f"{int(round(value)):,}"
    return f"{value:.{UNIT_DIGITS.get(unit, 3)}f}"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def to_latex(table: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs ``table`` of text cells (see :func:`formatted`); no jinja2 needed."""
    align = "".join("l" if i == 0 or not _numeric_column(table[c]) else "r" for i, c in enumerate(table.columns))
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\caption{{{latex_escape(caption)}}}",
             rf"\label{{{label}}}", rf"\begin{{tabular}}{{{align}}}", r"\toprule",
             " & ".join(latex_escape(c) for c in table.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(v) for v in row) + r" \\" for row in table.astype(str).itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def _numeric_column(column: pd.Series) -> bool:
    text = column.astype(str).str.replace(",", "").str.replace(" ± ", "").str.replace("n/a", "0")
    return bool(pd.to_numeric(text, errors="coerce").notna().all())


def to_html(table: pd.DataFrame, caption: str) -> str:
    """A standalone HTML page of the table, for the Snakemake report (which shows HTML inline)."""
    body = table.to_html(index=False, border=0, classes="filterlens", na_rep="n/a", escape=True)
    style = ("body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse}"
             "th,td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}"
             "th:first-child,td:first-child{text-align:left}caption{text-align:left;margin-bottom:6px}")
    caption = caption.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{caption}</title><style>{style}</style>"
            f"</head><body><p>{caption}</p>\n{body}\n</body></html>\n")
