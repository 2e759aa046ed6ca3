"""Which of the paper's findings and headline numbers depend on which documented choice
(docs/method.md, "Choices"): the same merges as the default analyses, run on the passes'
results of each variant (one choice changed alone, :meth:`filterlens.method.choices.Settings.variants`).

- :class:`MergeInputs`: what the merges of one variant read, the per-model results of the
  passes; :meth:`MergeInputs.for_variant` swaps in a variant's files where its passes differ.
- :func:`headline`: per finding of the findings table and per headline number, the value and
  whether it holds (:data:`COLUMNS`).
- :func:`holds_counts`: per finding, under how many variants it holds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

import numpy as np
import pandas as pd

from filterlens.analyse.bases import bases_table, basis_sets, set_moments
from filterlens.analyse.findings import FindingThresholds, paper_findings, side_means
from filterlens.analyse.kl import kl_statistics_table
from filterlens.analyse.quality import quality_by_depth, sparse_shares
from filterlens.method.choices import Settings
from filterlens.method.depth_groups import DEPTH_GROUPS
from filterlens.method.distributions import histogram_edges
from filterlens.method.measures import BY_NAME, QUALITY, drawn
from filterlens.method.pca import Moments, pca

DEFAULT = "default"  # the variant column of the configured settings
COLUMNS = ["variant", "row", "kind", "label", "dataset", "depth_group", "value", "text", "holds"]
FINDING, NUMBER = "finding", "number"



@dataclass(frozen=True)
class MergeInputs:
    """Per model of the sheet its layer table and scaled moments (pass 1); per paired model its
    histogram counts (pass 3) and the range they were made over."""

    layers: Mapping[str, pd.DataFrame]
    moments: Mapping[str, list[Moments]]
    histograms: Mapping[str, np.ndarray]
    low: float
    high: float

    def for_variant(self, name: str, layers: Mapping[str, pd.DataFrame], moments: Mapping[str, Mapping],
                    histograms: Mapping[str, Mapping]) -> "MergeInputs":
        """These inputs with variant ``name``'s per-model files where its passes wrote any:
        ``layers[model]`` a model's variant layer tables (column ``variant``), ``moments[model]``
        and ``histograms[model]`` its variant arrays by ``{name}/{key}``. A model without its
        variant's layer rows where another model has them raises ValueError."""
        has_layers = {m for m, t in layers.items() if (t.variant == name).any()}
        if has_layers and has_layers != set(layers):
            missing = sorted(set(layers) - has_layers)
            raise ValueError(f"variant {name}: no layer table of model(s) {', '.join(missing)}")
        out = self
        if has_layers:
            out = replace(out, layers={m: t[t.variant == name].drop(columns="variant").reset_index(drop=True)
                                       for m, t in layers.items()})
        if any(f"{name}/scaled_n" in arrays for arrays in moments.values()):
            out = replace(out, moments={m: scaled_moments_of(arrays, name) for m, arrays in moments.items()})
        if any(f"{name}/counts" in arrays for arrays in histograms.values()):
            some = next(iter(histograms.values()))
            out = replace(out, histograms={m: arrays[f"{name}/counts"] for m, arrays in histograms.items()},
                          low=float(some[f"{name}/low"]), high=float(some[f"{name}/high"]))
        return out


def scaled_moments_of(arrays: Mapping, variant: str | None = None) -> list[Moments]:
    """The per-layer scaled moments in a model's moments.npz as pass 1 writes it (of ``variant``:
    in its sensitivity/moments.npz, keys ``{variant}/...``)."""
    prefix = f"{variant}/" if variant else ""
    return [Moments(int(n), s, g) for n, s, g in
            zip(arrays[f"{prefix}scaled_n"], arrays[f"{prefix}scaled_sum"], arrays[f"{prefix}scaled_gram"])]


def headline(settings: Settings, inputs: MergeInputs, sheet: pd.DataFrame, pairs: pd.DataFrame,
             models: pd.DataFrame, bins: int, statistics: Mapping,
             thresholds: FindingThresholds = FindingThresholds()) -> pd.DataFrame:
    """The findings and headline numbers of the merges of ``inputs`` under ``settings`` (the
    merge choices: empty bins, KL pooling, entropy, its weights, Fig. 7's boxes; the pass choices
    are in ``inputs``): columns :data:`COLUMNS` but ``variant``. ``statistics`` is config
    statistics (the permutation baseline of the KL findings, as rule stats_kl takes it)."""
    sets = basis_sets(pairs, [])
    bases = {name: pca(set_moments(sets[name], inputs.moments)) for name in ("full", "normal")}  # KL weights, Fig. 2
    layers = pd.concat([inputs.layers[m] for m in sheet.model_id], ignore_index=True)
    quality = quality_by_depth(layers, sheet, settings.entropy_weights)
    shares = sparse_shares(layers, sheet)
    paired = [m for m in sheet.model_id if m in set(pairs.robust) | set(pairs.normal)]
    edges = histogram_edges(inputs.low, inputs.high, bins)
    stats = kl_statistics_table(pairs, {m: inputs.histograms[m] for m in paired}, {m: inputs.layers[m] for m in paired},
                                bases["full"].ratio, edges, ["first"], n_bootstrap=statistics["n_bootstrap"],
                                n_permutations=statistics["n_permutations"], seed=statistics["seed"],
                                level=statistics["level"], empty_bins=settings.empty_bins)
    findings = paper_findings(bases_table(bases), shares, quality, stats, models, pairs, entropy=settings.entropy,
                              thresholds=thresholds, pooling=settings.kl_pooling, boxes=settings.boxes)
    rows = [{"row": f"finding/{i}", "kind": FINDING, "label": f.finding, "dataset": f.dataset, "depth_group": "",
             "value": np.nan, "text": f.this_run, "holds": f.shown} for i, f in enumerate(findings.itertuples())]

    def number(row, label, value, holds, dataset="all", group="all"):
        rows.append({"row": row, "kind": NUMBER, "label": label, "dataset": dataset, "depth_group": group,
                     "value": value, "text": "", "holds": _holds(holds, value)})

    first = float(bases["normal"].ratio[0])
    number("first_component_share", "normal set's first PCA component, share of variance", first,
           first >= thresholds.first_component_ratio)
    share = shares.set_index("training").pooled_share
    robust_share, normal_share = float(share.get("robust", np.nan)), float(share.get("normal", np.nan))
    for side, value in (("robust", robust_share), ("normal", normal_share)):
        number(f"sparse_share/{side}", f"sparse share, {side} models (robust < normal)", value,
               robust_share < normal_share and np.isfinite(robust_share) and np.isfinite(normal_share))
    for dataset, part in pairs.groupby("dataset", sort=False):
        for pooling, group, row in (("unique", "all", f"kl/{dataset}/unique"), ("paired", "all", f"kl/{dataset}/paired"),
                                    ("paired", "first", f"kl_first/{dataset}")):
            s = stats[(stats.dataset == dataset) & (stats.pooling == pooling) & (stats.depth_group == group)]
            kl, q95 = (float(s.kl.iloc[0]), float(s.null_q95.iloc[0])) if len(s) else (np.nan, np.nan)
            what = "first layer" if group == "first" else "all layers"
            number(row, f"KL robust vs normal, {what}, {pooling} pooling (> random halves' 95 % point)", kl,
                   kl > q95 if np.isfinite(q95) else np.nan, dataset, group)
        present = set(quality[quality.model_id.isin({*part.robust, *part.normal})].depth_group)
        for group in ["all", *DEPTH_GROUPS]:
            if group not in present:
                continue
            # Fig. 7's measures (of the variance entropies the chosen one) and the paper's direction of each
            for column, _ in drawn(QUALITY, settings.entropy):
                measure, sign = column.split("_")[0], BY_NAME[column].paper_direction
                r_mean, n_mean = side_means(quality, part, group, column, settings.boxes)
                difference = r_mean - n_mean
                number(f"{measure}_difference/{dataset}/{group}",
                       f"{measure}, robust minus normal ({'< 0' if sign < 0 else '> 0'})", difference,
                       sign * difference > 0, dataset, group)
    return pd.DataFrame(rows, columns=COLUMNS[1:])


def _holds(condition, value) -> float:
    if isinstance(condition, float) and np.isnan(condition):
        return np.nan
    return float(bool(condition)) if np.isfinite(value) else np.nan


def holds_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Per finding row of a sensitivity ``table`` (:data:`COLUMNS`): under how many of the
    variants (the default excluded) it holds, and under how many it could be evaluated."""
    findings = table[(table.kind == FINDING) & (table.variant != DEFAULT)]
    counted = findings[findings.holds.notna()]
    out = pd.DataFrame({"holds": counted.groupby("row").holds.sum().astype(int),
                        "evaluated": counted.groupby("row").size()})
    return out.reindex(findings.row.unique(), fill_value=0)


def wide(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """A sensitivity ``table`` (:data:`COLUMNS`) one row per finding or number (in the default's
    order, then those only a variant has: a depth group of another depth definition) and, per
    variant (the default first), columns ``{variant}`` (the value, NaN for a finding or where the
    variant has no such row) and ``{variant} holds``; and the variants in order."""
    variants = list(dict.fromkeys(table.variant))
    keys = ["row", "kind", "label", "dataset", "depth_group"]
    base = table[keys].drop_duplicates("row").reset_index(drop=True)
    out = base.copy()
    for variant in variants:
        part = table[table.variant == variant].set_index("row").reindex(base.row)
        out[variant] = part.value.to_numpy()
        out[f"{variant} holds"] = part.holds.to_numpy()
    return out, variants
