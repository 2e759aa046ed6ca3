"""Which of the paper's findings a run shows: one row per finding, its direction in the paper,
this run's value and whether the run shows it (the report's "Findings" table).

A finding is shown when this run's value points the paper's way by the criterion named in its
row; a criterion that cannot be evaluated (no pair of that dataset, no 3x3 filter in the first
layer) gives ``shown`` = NaN, not False. Everything here reads the small analysis tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from filterlens.method.depth_groups import DEPTH_GROUPS


@dataclass(frozen=True)
class FindingThresholds:
    """The bars a value must pass for a finding to count as shown."""

    # Fig. 2: the normal set's first component; uniform over nine components would be 1/9.
    first_component_ratio: float = 0.40
    # §5: normal models must have sparse filters at all for "robust models have fewer" to mean something.
    normal_sparse_share: float = 0.05
    # Table 1: robust accuracy under PGD, robust model minus its counterpart, in points.
    robust_accuracy_gap: float = 25.0


COLUMNS = ["finding", "source", "dataset", "paper", "this_run", "criterion", "shown"]


def _nan_if_missing(value) -> float:
    return float(value) if value is not None and np.isfinite(value) else float("nan")


def _shown(condition: bool, *values: float) -> float:
    """1.0 / 0.0, or NaN when a value behind the condition is missing."""
    if any(not np.isfinite(v) for v in values):
        return float("nan")
    return 1.0 if condition else 0.0


BOXES = ("pairings", "models")  # config figures.boxes (docs/method.md §5)


def side_means(quality: pd.DataFrame, pairs: pd.DataFrame, group: str, metric: str,
               boxes: str = "pairings") -> tuple[float, float]:
    """The mean ``metric`` in depth group ``group`` of the robust and of the normal side of ``pairs``
    (one dataset's), as Fig. 7's boxes hold them: ``boxes="pairings"``, each pairing's robust
    model and its counterpart, a pair left out where either has no value; ``"models"``, each
    distinct model of a side once, those without a value left out. NaN where none is left."""
    if boxes not in BOXES:
        raise ValueError(f"boxes must be one of {', '.join(BOXES)}, not {boxes!r} (config figures.boxes)")
    values = quality.set_index(["model_id", "depth_group"])[metric]
    if boxes == "pairings":
        robust_models, normal_models = list(pairs.robust), list(pairs.normal)
    else:
        robust_models, normal_models = list(dict.fromkeys(pairs.robust)), list(dict.fromkeys(pairs.normal))
    robust = np.array([values.get((m, group), np.nan) for m in robust_models], dtype=np.float64)
    normal = np.array([values.get((m, group), np.nan) for m in normal_models], dtype=np.float64)
    if boxes == "pairings":
        ok = np.isfinite(robust) & np.isfinite(normal)
        robust, normal = robust[ok], normal[ok]
    robust, normal = robust[np.isfinite(robust)], normal[np.isfinite(normal)]
    return (float(robust.mean()) if len(robust) else float("nan"),
            float(normal.mean()) if len(normal) else float("nan"))


def paper_findings(bases: pd.DataFrame, sparse_shares: pd.DataFrame, quality: pd.DataFrame, stats_kl: pd.DataFrame,
                   models: pd.DataFrame, pairs: pd.DataFrame, entropy: str = "unscaled",
                   thresholds: FindingThresholds = FindingThresholds(), pooling: str = "unique",
                   boxes: str = "pairings") -> pd.DataFrame:
    """The findings table (columns :data:`COLUMNS`) from results/analysis/bases.tsv,
    sparse_shares.tsv, quality_by_depth.tsv, stats_kl.tsv, results/tables/models.tsv and the
    sheet's pairs (robust, normal, dataset). Shares and ratios are in percent, KL in nats,
    accuracies in points; ``entropy`` picks the variance entropy of Fig. 7 (unscaled or scaled),
    ``pooling`` the KL over all layers (config analysis.kl_pooling) and ``boxes`` what Fig. 7's
    boxes hold (:func:`side_means`)."""
    if entropy not in ("unscaled", "scaled"):
        raise ValueError(f"entropy must be 'unscaled' or 'scaled', not {entropy!r}")
    # One long function on purpose: the findings follow one another in the table's order, each a
    # few lines over the same inputs, so the order of the code is the order of the table.
    rows = []

    def add(finding, source, dataset, paper, this_run, criterion, shown):
        rows.append({"finding": finding, "source": source, "dataset": dataset, "paper": paper,
                     "this_run": this_run, "criterion": criterion, "shown": shown})

    first = bases[(bases.set == "normal") & (bases.component == 1)].ratio
    ratio = _nan_if_missing(first.iloc[0]) if len(first) else float("nan")
    bar = thresholds.first_component_ratio
    add("normal filters concentrate on the first PCA component", "Fig. 2", "all", "about 67 %",
        f"{100 * ratio:.1f} %" if np.isfinite(ratio) else "n/a", f"ratio >= {100 * bar:.0f} %",
        _shown(ratio >= bar, ratio))

    shares = sparse_shares.set_index("training").pooled_share
    normal_share = _nan_if_missing(shares.get("normal"))
    robust_share = _nan_if_missing(shares.get("robust"))
    bar = thresholds.normal_sparse_share
    add("normal models have sparse filters, robust models fewer", "Sec. 4.2, Fig. 7", "all",
        "normal 39.48 %, robust 9.45 %",
        f"normal {100 * normal_share:.2f} %, robust {100 * robust_share:.2f} %"
        if np.isfinite(normal_share) and np.isfinite(robust_share) else "n/a",
        f"normal >= {100 * bar:.0f} % and robust < normal",
        _shown(normal_share >= bar and robust_share < normal_share, normal_share, robust_share))

    accuracy = models.set_index("model_id").robust_acc
    entropy_column = f"entropy_{entropy}"
    for dataset, part in pairs.groupby("dataset", sort=False):
        groups = [g for g in DEPTH_GROUPS if g in set(quality.depth_group)]
        wins, counted = 0, 0
        for group in groups:
            r_mean, n_mean = side_means(quality, part, group, "orthogonality", boxes)
            if np.isfinite(r_mean) and np.isfinite(n_mean):
                counted += 1
                wins += int(r_mean > n_mean)
        add("robust models are more orthogonal", "Fig. 7", dataset, "robust higher in most depth groups",
            f"robust higher in {wins} of {counted} groups" if counted else "n/a",
            "robust mean > normal mean in more than half of the groups",
            _shown(wins > counted / 2, counted if counted else float("nan")))

        r_mean, n_mean = side_means(quality, part, "all", entropy_column, boxes)
        shown = np.isfinite(r_mean) and np.isfinite(n_mean)
        add(f"robust models have a higher variance entropy ({entropy})", "Fig. 7", dataset,
            "robust higher over all layers",
            f"robust {r_mean:.3f}, normal {n_mean:.3f}" if shown else "n/a",
            "robust mean > normal mean over all layers", _shown(r_mean > n_mean, r_mean, n_mean))

        for group, label, group_pooling, source in (
                ("all", "filter distributions differ robust vs normal", pooling, "Sec. 4.1"),
                ("first", "the first layer's distributions differ robust vs normal", "paired", "Fig. 1")):
            row = stats_kl[(stats_kl.dataset == dataset) & (stats_kl.depth_group == group)
                           & (stats_kl.pooling == group_pooling)]
            kl = _nan_if_missing(row.kl.iloc[0]) if len(row) else float("nan")
            q95 = _nan_if_missing(row.null_q95.iloc[0]) if len(row) else float("nan")
            # a side without filters in the group has no KL (docs/method.md §4)
            empty = len(row) and not (row.n_robust_filters.iloc[0] and row.n_normal_filters.iloc[0])
            add(label, source, dataset, "KL above what random halves of the models give",
                f"KL {kl:.3f}, random halves' 95 % point {q95:.3f}" if np.isfinite(kl) and np.isfinite(q95)
                else "no filters" if empty else "n/a", "KL > 95 % point of the permutation baseline",
                _shown(kl > q95, kl, q95))

        gaps = np.array([accuracy.get(r, np.nan) - accuracy.get(n, np.nan) for r, n in zip(part.robust, part.normal)],
                        dtype=np.float64)
        smallest = float(np.min(gaps)) if len(gaps) and np.isfinite(gaps).all() else float("nan")
        bar = thresholds.robust_accuracy_gap
        add("robust models withstand PGD, their counterparts do not", "Table 1", dataset,
            "robust accuracy far above the counterpart's",
            f"smallest gap {smallest:.1f} points" if math.isfinite(smallest) else "n/a",
            f"every pair's gap >= {bar:.0f} points", _shown(smallest >= bar, smallest))
    return pd.DataFrame(rows, columns=COLUMNS)
