"""KL divergence between robust and normal coefficient distributions, pooled from per-layer
histogram counts (docs/method.md §4): no analysis here reads a filter.

- :func:`group_counts`: per model, its counts summed over the layers of one depth group.
- :func:`kl_comparisons`: the robust/normal model lists of every comparison: per dataset the
  whole models with the unique and the paired pooling, then each depth group paired (Fig. 1).
- :func:`divergence`: the weighted symmetric KL of two pooled counts, NaN where either has no filter.
- :func:`kl_tables`: the weighted symmetric KL of every comparison.
- :func:`kl_statistics`, :func:`kl_statistics_table`: the same KL with a bootstrap interval over
  models (a reweighting of per-model counts, no pass over filters) and a permutation baseline:
  the KL between random halves of the pooled models, i.e. what KL value label noise gives.
- :func:`depth_group_tests`: the permutation tests of the depth groups, Holm-adjusted per dataset.
"""

from __future__ import annotations

import itertools
import math
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from filterlens.analyse.statistics import holm, percentile_interval
from filterlens.io.files import read_tsv
from filterlens.method.depth_groups import DEPTH_GROUPS
from filterlens.method.distributions import histogram_edges, weighted_kl
from filterlens.method.pca import N_COMPONENTS

POOLINGS = ("unique", "paired")  # docs/method.md §4: unique is the paper's text and the default
ALL = "all"  # the depth group of every layer


# --- pooling -------------------------------------------------------------------------------

def group_counts(histograms: Mapping[str, np.ndarray], layers: Mapping[str, pd.DataFrame],
                 group: str) -> dict[str, np.ndarray]:
    """Per model, its counts (9, bins) summed over the layers of depth group ``group`` ('all': every
    layer); ``histograms[model]`` is (n_layers, 9, bins) in layer_id order, ``layers[model]`` its layer table."""
    out = {}
    for model, counts in histograms.items():
        if group != ALL:
            counts = counts[(layers[model].sort_values("layer_id").depth_group == group).to_numpy()]
        out[model] = counts.sum(axis=0)
    return out


def pooled_counts(models: Iterable[str], counts: Mapping[str, np.ndarray]) -> np.ndarray:
    """``counts`` (9, bins) summed over ``models``; a model listed twice counts twice (the paired pooling)."""
    total = None
    for model in models:
        total = counts[model] if total is None else total + counts[model]
    return total


def kl_comparisons(pairs: pd.DataFrame, groups: Sequence[str]) -> Iterator[tuple[str, str, str, list, list]]:
    """(dataset, pooling, depth group, robust models, normal models) of every comparison, per
    dataset in the sheet's order: group 'all' with the unique pooling (each model once) and the
    paired one (a counterpart once per pair, so robust[i] is paired with normal[i]), then every
    group of ``groups`` with the paired pooling (as the authors' by-depth analysis)."""
    for dataset, part in pairs.groupby("dataset", sort=False):
        unique = (list(dict.fromkeys(part.robust)), list(dict.fromkeys(part.normal)))
        paired = (list(part.robust), list(part.normal))
        yield dataset, "unique", ALL, *unique
        yield dataset, "paired", ALL, *paired
        for group in groups:
            yield dataset, "paired", group, *paired


def _counts_by_group(histograms: Mapping[str, np.ndarray], layers: Mapping[str, pd.DataFrame],
                     groups: Sequence[str]) -> dict[str, dict[str, np.ndarray]]:
    return {group: group_counts(histograms, layers, group) for group in [ALL, *groups]}


# --- KL divergence -------------------------------------------------------------------------

def divergence(p: np.ndarray, q: np.ndarray, weights: np.ndarray, edges: np.ndarray,
               empty_bins: str = "density") -> tuple[float, np.ndarray]:
    """:func:`filterlens.method.distributions.weighted_kl` of the counts ``p`` and ``q`` (9, bins),
    and NaN (per component too) where either holds no coefficient: a depth group without
    filters has no distribution to compare (docs/method.md §4), so its KL is not a number."""
    if not p.sum() or not q.sum():
        return float("nan"), np.full(N_COMPONENTS, np.nan)
    return weighted_kl(p, q, weights, edges, empty_bins)


def kl_tables(pairs: pd.DataFrame, histograms: Mapping[str, np.ndarray], layers: Mapping[str, pd.DataFrame],
              weights: np.ndarray, edges: np.ndarray, empty_bins: str = "density",
              pooling: str = "unique") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Weighted symmetric KL robust vs normal: per dataset and pooling, per dataset and depth
    group (paired), and the per-component values behind both; NaN where a side has no filters
    (:func:`divergence`). Counts are pooled (summed), then
    converted by :func:`filterlens.method.distributions.distribution` with the bin ``edges`` they were made
    with (``empty_bins``: where an empty bin gets eps). ``pooling`` (config analysis.kl_pooling) is the
    one the by-dataset table marks ``default``."""
    per_group = _counts_by_group(histograms, layers, DEPTH_GROUPS)
    by_dataset, by_depth, components = [], [], []
    default = pooling
    for dataset, pooling, group, robust, normal in kl_comparisons(pairs, DEPTH_GROUPS):
        p, q = pooled_counts(robust, per_group[group]), pooled_counts(normal, per_group[group])
        total, per_component = divergence(p, q, weights, edges, empty_bins)
        for c in range(N_COMPONENTS):
            components.append({"dataset": dataset, "pooling": pooling, "depth_group": group, "component": c + 1,
                               "weight": weights[c], "kl": per_component[c],
                               "weighted_kl": weights[c] * per_component[c]})
        row = {"dataset": dataset, "pooling": pooling, "depth_group": group, "kl": total,
               "n_robust_filters": int(p[0].sum()), "n_normal_filters": int(q[0].sum())}
        if group == ALL:
            by_dataset.append({**row, "default": pooling == default})
        else:
            by_depth.append(row)
    return pd.DataFrame(by_dataset), pd.DataFrame(by_depth), pd.DataFrame(components)


# --- KL: bootstrap intervals and a permutation baseline ------------------------------------

def _kl_of_weights(counts: np.ndarray, a: np.ndarray, b: np.ndarray, weights: np.ndarray, edges: np.ndarray,
                   empty_bins: str = "density") -> float:
    """KL between the pooled counts sum_i a_i counts_i and sum_i b_i counts_i; counts (k, 9, bins)
    made over the bin ``edges`` (converted by :func:`filterlens.method.distributions.distribution`)."""
    p = np.tensordot(a, counts, axes=1)
    q = np.tensordot(b, counts, axes=1)
    if p.sum() == 0 or q.sum() == 0:
        return float("nan")
    return weighted_kl(p, q, weights, edges, empty_bins)[0]


def kl_statistics(robust: Sequence[str], normal: Sequence[str], counts: Mapping[str, np.ndarray],
                  weights: np.ndarray, edges: np.ndarray, paired: bool, n_bootstrap: int = 2000,
                  n_permutations: int = 2000, seed: int = 0, level: float = 0.95,
                  empty_bins: str = "density") -> dict:
    """Weighted symmetric KL of ``robust`` vs ``normal`` models (lists, a model listed twice
    counts twice), whose pooled counts (9, bins) over the bin ``edges`` are ``counts[model]``.

    Bootstrap: ``paired`` (robust[i] with normal[i]) resamples pairs, otherwise each side's
    models are resampled on their own; each resample reweights the per-model counts.
    Permutation baseline: the pooled list of models is split at random into halves of the
    original sizes (every distinct split when there are at most ``n_permutations``, then
    ``exact`` is True), and the KL between the halves is the null distribution. ``p_permutation``
    = share of splits with a KL at least the observed one (the observed split included).
    """
    robust, normal = list(robust), list(normal)
    slots = robust + normal
    stack = np.stack([counts[m] for m in slots]).astype(np.float64)
    nr, nn = len(robust), len(normal)
    a0 = np.r_[np.ones(nr), np.zeros(nn)]
    b0 = np.r_[np.zeros(nr), np.ones(nn)]
    observed = _kl_of_weights(stack, a0, b0, weights, edges, empty_bins)
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(n_bootstrap):
        if paired:
            w = np.bincount(rng.integers(0, nr, nr), minlength=nr).astype(float)
            a, b = np.r_[w, np.zeros(nn)], np.r_[np.zeros(nr), w]
        else:
            a = np.r_[np.bincount(rng.integers(0, nr, nr), minlength=nr), np.zeros(nn)]
            b = np.r_[np.zeros(nr), np.bincount(rng.integers(0, nn, nn), minlength=nn)]
        boot.append(_kl_of_weights(stack, a, b, weights, edges, empty_bins))
    boot = np.asarray(boot)
    total = nr + nn
    n_splits = math.comb(total, nr)
    exact = n_splits <= n_permutations
    if exact:
        splits = (list(c) for c in itertools.combinations(range(total), nr))
    else:
        splits = (rng.permutation(total)[:nr] for _ in range(n_permutations))
    null = []
    for first in splits:
        a = np.zeros(total)
        a[list(first)] = 1.0
        null.append(_kl_of_weights(stack, a, 1.0 - a, weights, edges, empty_bins))
    null = np.asarray(null)
    finite = null[np.isfinite(null)]
    low, high = percentile_interval(boot, level)
    p_perm = float(((finite >= observed - 1e-12).sum() + (0 if exact else 1)) / (len(finite) + (0 if exact else 1))) \
        if len(finite) and np.isfinite(observed) else float("nan")
    return {"kl": observed, "kl_low": low, "kl_high": high,
            "bootstrap_mean": float(np.nanmean(boot)) if np.isfinite(boot).any() else np.nan,
            "null_mean": float(finite.mean()) if len(finite) else np.nan,
            "null_q95": float(np.quantile(finite, 0.95)) if len(finite) else np.nan,
            "null_max": float(finite.max()) if len(finite) else np.nan,
            "p_permutation": p_perm, "n_permutations": len(finite), "exact": exact,
            "n_robust_models": nr, "n_normal_models": nn}


def kl_statistics_table(pairs: pd.DataFrame, histograms: Mapping[str, np.ndarray],
                        layers: Mapping[str, pd.DataFrame], weights: np.ndarray, edges: np.ndarray,
                        groups: Sequence[str],
                        n_bootstrap: int = 2000, n_permutations: int = 2000, seed: int = 0,
                        level: float = 0.95, empty_bins: str = "density") -> pd.DataFrame:
    """:func:`kl_statistics` of every comparison of :func:`kl_comparisons` (unique pooling:
    bootstrap per side; paired pooling: bootstrap over pairs)."""
    per_group = _counts_by_group(histograms, layers, groups)
    rows = []
    for dataset, pooling, group, robust, normal in kl_comparisons(pairs, groups):
        counts = per_group[group]
        result = kl_statistics(robust, normal, counts, weights, edges, pooling == "paired", n_bootstrap,
                               n_permutations, seed, level, empty_bins)
        rows.append({"dataset": dataset, "pooling": pooling, "depth_group": group, **result,
                     "n_robust_filters": int(pooled_counts(robust, counts)[0].sum()),
                     "n_normal_filters": int(pooled_counts(normal, counts)[0].sum())})
    return pd.DataFrame(rows)


def depth_group_tests(stats: pd.DataFrame, groups: Sequence[str] = DEPTH_GROUPS) -> pd.DataFrame:
    """The rows of a :func:`kl_statistics_table` with the paired pooling and a depth group of
    ``groups``, with ``p_holm``: the permutation p Holm-adjusted over the depth groups of each
    dataset (the family of one dataset's bars in Fig. 1)."""
    tests = stats[(stats.pooling == "paired") & stats.depth_group.isin(groups)].copy()
    tests["p_holm"] = np.nan
    for _, part in tests.groupby("dataset"):
        tests.loc[part.index, "p_holm"] = holm(part.p_permutation.to_numpy())
    return tests


# --- reading -------------------------------------------------------------------------------

def read_paired_histograms(sheet_path, histogram_paths, layer_paths):
    """The sheet's robust/normal pairs; per paired model (in sheet order, as the rules list
    them) its histogram counts (n_layers, 9, bins) and its layer table; and the bin edges
    (bins + 1,) every model's counts were made with (one shared range, else an error)."""
    from filterlens.config.sheet import pairs, read_sheet

    sheet = read_sheet(sheet_path)
    model_pairs = pairs(sheet)
    paired = set(model_pairs.robust) | set(model_pairs.normal)
    models = [m for m in sheet.model_id if m in paired]
    histograms, layers, ranges = {}, {}, set()
    for model, histogram_path, layers_path in zip(models, histogram_paths, layer_paths, strict=True):
        with np.load(histogram_path) as data:
            histograms[model] = data["counts"]
            ranges.add((float(data["low"]), float(data["high"]), int(data["counts"].shape[-1])))
        layers[model] = read_tsv(layers_path)
    if len(ranges) != 1:
        raise ValueError(f"the models' histograms do not share one range and bin count: {sorted(ranges)}; "
                         "rerun coefficient_histograms (they must all use results/analysis/coefficient_range.tsv)")
    (low, high, bins), = ranges
    return model_pairs, histograms, layers, histogram_edges(low, high, bins)
