"""Statistics for every robust-vs-normal comparison, pure functions on small tables.

- :func:`paired_test`: Wilcoxon signed-rank test over robust/normal pairs, the median paired
  difference and the matched-pairs rank-biserial correlation, each with a seeded percentile
  bootstrap interval over pairs; with few pairs the smallest p the exact test can give is
  reported (n pairs without ties: 2 / 2^n two-sided, so n < 6 never reaches 0.05).
- :func:`holm`: Holm's step-down adjustment of a family of p-values (NaN stays NaN);
  :func:`with_holm` adds it to a table of tests.
- :func:`paired_comparisons`: :func:`paired_test` for every dataset, depth group and metric of
  a per-model table, Holm-adjusted over the whole table.
- :func:`correlations`: Spearman's rho of per-model measures with accuracies, with p-values
  and bootstrap intervals over models, per dataset and over all.
- :func:`percentile_interval`: the percentile bootstrap interval of a sample of estimates.

The KL's bootstrap and permutation baseline are in :mod:`filterlens.analyse.kl`.
"""

from __future__ import annotations

import itertools
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05


# --- multiple comparisons ------------------------------------------------------------------

def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values: sort ascending, p_(i) * (m - i + 1) (i from 1), running max, cap 1.

    NaN p-values are not counted in m and stay NaN.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    if not m:
        return adjusted
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = p[order] * (m - np.arange(m))
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


def with_holm(tests: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """``tests`` (a ``p_value`` column) with ``p_holm`` over the whole table and ``significant``
    (p_holm < alpha); an empty table stays as it is."""
    if len(tests):
        tests["p_holm"] = holm(tests.p_value.to_numpy())
        tests["significant"] = tests.p_holm < alpha
    return tests


def families_by_dataset(table: pd.DataFrame, overall: bool | None = None) -> list[tuple[str, pd.DataFrame]]:
    """The families of tests of a table with a ``dataset`` column: each dataset's rows (in order
    of appearance), then with ``overall`` every row as dataset 'all'; by default when there are
    several datasets."""
    datasets = list(dict.fromkeys(table.dataset))
    if overall is None:
        overall = len(datasets) > 1
    return [(d, table[table.dataset == d]) for d in datasets] + ([("all", table)] if overall else [])


def significance_mark(p: float, alpha: float = ALPHA) -> str:
    """'***' < alpha/50, '**' < alpha/5, '*' < alpha, '' otherwise (and for NaN)."""
    if p is None or not np.isfinite(p):
        return ""
    for mark, level in (("***", alpha / 50), ("**", alpha / 5), ("*", alpha)):
        if p < level:
            return mark
    return ""


# --- paired tests --------------------------------------------------------------------------

def min_wilcoxon_p(n: int) -> float:
    """The smallest two-sided p the exact signed-rank test can give with n pairs (no ties)."""
    return min(1.0, 2.0 / 2 ** n) if n > 0 else float("nan")


def rank_biserial(differences: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation (T+ - T-) / (T+ + T-) over the non-zero
    differences (ranks of |d|, ties averaged): +1 when every pair is higher on the robust side;
    0 when every difference is zero."""
    return float(rank_biserials(np.asarray(differences, dtype=np.float64)[None])[0])


def rank_biserials(samples: np.ndarray) -> np.ndarray:
    """:func:`rank_biserial` of every row of ``samples`` (n_rows, n) at once: a bootstrap's
    thousands of resamples in one ranking instead of one call each. Ranks are multiples of 1/2,
    so the sums are exact and each row's value is the one of its own call."""
    d = np.asarray(samples, dtype=np.float64)
    ranks = stats.rankdata(np.where(d != 0, np.abs(d), np.nan), axis=1, nan_policy="omit")
    positive = np.where(d > 0, ranks, 0.0).sum(axis=1)
    negative = np.where(d < 0, ranks, 0.0).sum(axis=1)
    total = positive + negative
    return np.where(total > 0, (positive - negative) / np.where(total > 0, total, 1.0), 0.0)


def percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` percentile interval of the finite ``values`` (NaN, NaN when there are none)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def paired_test(robust: Sequence[float], normal: Sequence[float], n_bootstrap: int = 2000, seed: int = 0,
                level: float = 0.95, alpha: float = ALPHA) -> dict:
    """Robust minus normal over pairs (NaN pairs dropped): Wilcoxon signed-rank (two-sided,
    exact where scipy can be, zero differences dropped), effect sizes and bootstrap intervals."""
    r = np.asarray(robust, dtype=np.float64)
    q = np.asarray(normal, dtype=np.float64)
    ok = np.isfinite(r) & np.isfinite(q)
    d = r[ok] - q[ok]
    n = len(d)
    nonzero = int((d != 0).sum())
    row = {"n_pairs": n, "n_nonzero": nonzero, "mean_robust": float(r[ok].mean()) if n else np.nan,
           "mean_normal": float(q[ok].mean()) if n else np.nan,
           "median_difference": float(np.median(d)) if n else np.nan,
           "rank_biserial": rank_biserial(d) if n else np.nan, "n_positive": int((d > 0).sum()),
           "statistic": np.nan, "p_value": np.nan, "min_p": min_wilcoxon_p(nonzero) if nonzero else np.nan,
           "can_reach_alpha": bool(nonzero and min_wilcoxon_p(nonzero) <= alpha),
           "median_difference_low": np.nan, "median_difference_high": np.nan,
           "rank_biserial_low": np.nan, "rank_biserial_high": np.nan}
    if nonzero:
        result = stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided")
        row["statistic"], row["p_value"] = float(result.statistic), float(result.pvalue)
    elif n:
        row["p_value"] = 1.0  # every pair equal: no evidence of a difference
    if n:
        rng = np.random.default_rng(seed)
        index = rng.integers(0, n, size=(n_bootstrap, n))
        samples = d[index]
        row["median_difference_low"], row["median_difference_high"] = percentile_interval(
            np.median(samples, axis=1), level)
        row["rank_biserial_low"], row["rank_biserial_high"] = percentile_interval(
            rank_biserials(samples), level)
    return row


def paired_comparisons(table: pd.DataFrame, pairs: pd.DataFrame, metrics: Sequence[str],
                       groups: Sequence[str], n_bootstrap: int = 2000, seed: int = 0, level: float = 0.95,
                       alpha: float = ALPHA, overall: bool | None = None) -> pd.DataFrame:
    """One row per dataset, depth group and metric of ``table`` (model_id, depth_group, metrics):
    :func:`paired_test` over the pairs of the dataset (a normal model counts once per robust
    model it is paired with), then ``p_holm`` over every row with a p-value (the family is the
    whole table). ``overall`` adds dataset 'all' (every pair); by default when there are
    several datasets. A model or group missing from ``table`` is a NaN value (its pair drops)."""
    values = table.set_index(["model_id", "depth_group"])
    rows = []
    for dataset, part in families_by_dataset(pairs, overall):
        for group in groups:
            for metric in metrics:
                def lookup(models):
                    return [values[metric].get((m, group), np.nan) for m in models]
                result = paired_test(lookup(part.robust), lookup(part.normal), n_bootstrap, seed, level, alpha)
                rows.append({"dataset": dataset, "depth_group": group, "metric": metric, **result})
    out = with_holm(pd.DataFrame(rows), alpha)
    if len(out):
        out["n_tests"] = int(out.p_value.notna().sum())
    return out


# --- correlations with accuracy ------------------------------------------------------------

EXACT_SPEARMAN_N = 8  # 8! = 40320 permutations


def _exact_spearman_p(x: np.ndarray, y: np.ndarray, rho: float) -> float:
    """Share of the permutations of y whose |rho| is at least the observed |rho| (ties: midranks)."""
    rx = stats.rankdata(x)
    ry = np.asarray(list(itertools.permutations(stats.rankdata(y))))
    rx_c = rx - rx.mean()
    ry_c = ry - ry.mean(axis=1, keepdims=True)
    values = (ry_c @ rx_c) / (np.sqrt((ry_c ** 2).sum(axis=1)) * np.sqrt((rx_c ** 2).sum()))
    return float((np.abs(values) >= abs(rho) - 1e-12).mean())


def _rowwise_spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair of x and y (k, n), midranks; NaN where a row is constant
    (a resample with a constant side has no rank correlation)."""
    rx = stats.rankdata(x, axis=1)
    ry = stats.rankdata(y, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    denominator = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, (rx * ry).sum(axis=1) / denominator, np.nan)


def spearman(x: Sequence[float], y: Sequence[float], n_bootstrap: int = 2000, seed: int = 0,
             level: float = 0.95) -> dict:
    """Spearman's rho of x and y over the finite pairs, its two-sided p-value and a percentile
    bootstrap interval over samples. The p-value is exact for n <= EXACT_SPEARMAN_N (every
    permutation of y's ranks), else scipy's t approximation. NaN where either side is constant
    or there are fewer than 3 pairs."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = len(x)
    row = {"n_models": n, "rho": np.nan, "p_value": np.nan, "rho_low": np.nan, "rho_high": np.nan}
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return row
    result = stats.spearmanr(x, y)
    row["rho"] = float(result.statistic)
    row["p_value"] = _exact_spearman_p(x, y, row["rho"]) if n <= EXACT_SPEARMAN_N else float(result.pvalue)
    index = np.random.default_rng(seed).integers(0, n, size=(n_bootstrap, n))
    row["rho_low"], row["rho_high"] = percentile_interval(_rowwise_spearman(x[index], y[index]), level)
    return row


def correlations(measures: pd.DataFrame, accuracies: pd.DataFrame, columns: Iterable[str],
                 targets: Sequence[str] = ("clean_acc", "robust_acc"), n_bootstrap: int = 2000, seed: int = 0,
                 level: float = 0.95, alpha: float = ALPHA) -> pd.DataFrame:
    """Spearman of every measure column (one row per model_id in ``measures``) with every
    accuracy (``accuracies``: model_id, dataset, targets), per dataset and over all models
    ('all', when there are several datasets); ``p_holm`` over the whole table."""
    data = measures.merge(accuracies[["model_id", "dataset", *targets]], on="model_id", how="inner",
                          suffixes=("", "_acc"))
    if "dataset_acc" in data:
        data["dataset"] = data["dataset_acc"]
    rows = []
    for dataset, part in families_by_dataset(data):
        for target in targets:
            for column in columns:
                rows.append({"dataset": dataset, "measure": column, "accuracy": target,
                             **spearman(part[column], part[target], n_bootstrap, seed, level)})
    return with_holm(pd.DataFrame(rows), alpha)
