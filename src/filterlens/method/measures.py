"""The registry of per-model measures: every measure that the by-depth tables hold, the statistics test,
the correlations relate to accuracy and the figures draw, with what each reader needs of it.

The rules (rules/common.smk: the measures each statistics rule tests), the analyses
(:mod:`filterlens.analyse.quality`, :mod:`filterlens.analyse.filter_measures`: the by-depth columns and how
each is aggregated from per-layer rows), the statistics table and Fig. 8 (:data:`LABELS`) and the box plots
of Fig. 7, Fig. 9 and the placement figure (:func:`drawn`) read it. Adding a measure is one entry here,
its per-layer definition (where its ``table`` is written) and its test.

Order matters: it is the order of the statistics' rows and of Fig. 8's measures. A by-depth table holds
its family's measures block by block, one block per ``(table, aggregation)`` in the order the blocks first
appear here (:func:`table_columns`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

# Families: the layer quality of docs/method.md §5 (results/analysis/quality_by_depth.tsv, rule
# layer_quality) and the filter measures of neighbouring work of §7 (filter_measures_by_depth.tsv,
# rule filter_measures).
QUALITY = "quality"
FILTER = "filter"

# Aggregations of a depth group's per-layer rows into one number per model and group:
RATIO = "ratio"  # sum of `column` / sum of `over` (NaN where that sum is 0)
WEIGHTED_MEAN = "weighted_mean"  # mean of `column` weighted by `over`, over rows with a value and weight > 0
LAYER_MEAN = "layer_mean"  # mean of the finite values of `column` over the group's layers
LAYER_MAX = "layer_max"  # the largest value of `column` (NaN where no layer has one)

# The per-layer tables a measure is aggregated from, by the rule that writes each.
TABLES = {
    "layers": "summarize_model (pass 1): results/summaries/<model>/layers.tsv",
    "spectra": "layer_spectra: results/summaries/<model>/spectra.tsv",
    "perturbation": "layer_perturbation: results/summaries/<model>/perturbation.tsv",
}


@dataclass(frozen=True)
class Measure:
    """One per-model measure.

    ``name``: its column in the by-depth tables and its ``metric``/``measure`` in the statistics;
    ``label``: tables and Fig. 8; ``figure_label``: the y axis of the box plots (None: not drawn);
    ``table``/``column``: the per-layer table (:data:`TABLES`) and column it is aggregated from;
    ``aggregation``/``over``: how (the aggregations above), ``over`` the denominator or weight column;
    ``paper_direction``: the sign of robust minus normal the paper reports (docs/method.md §5), 0 where
    it states none.
    """

    name: str
    family: str
    label: str
    figure_label: str | None
    table: str
    column: str
    aggregation: str
    over: str | None = None
    paper_direction: int = 0


MEASURES = (
    Measure("sparsity", QUALITY, "sparsity", "sparsity", "layers", "n_sparse", RATIO, "n_filters", -1),
    Measure("entropy_unscaled", QUALITY, "variance entropy (unscaled)", "variance entropy\n(unscaled)", "layers",
            "entropy_unscaled", WEIGHTED_MEAN, "n_nonsparse", 1),
    Measure("entropy_scaled", QUALITY, "variance entropy (scaled)", "variance entropy\n(scaled)", "layers",
            "entropy_scaled", WEIGHTED_MEAN, "n_nonsparse", 1),
    Measure("orthogonality", QUALITY, "orthogonality", "orthogonality", "layers", "orthogonality", WEIGHTED_MEAN,
            "c_out", 1),
    Measure("l1l2_ratio", FILTER, "L1/L2 sparsity ratio", "L1/L2 sparsity\nratio", "layers", "l1l2_ratio_sum",
            RATIO, "n_nonsparse"),
    Measure("hf_share", FILTER, "high-frequency energy share", "high-frequency\nenergy share", "layers",
            "hf_share_sum", RATIO, "n_nonsparse"),
    Measure("spectral_norm", FILTER, "spectral norm (mean over layers)", "spectral norm", "spectra", "spectral_norm",
            LAYER_MEAN),
    Measure("spectral_norm_max", FILTER, "spectral norm (max over layers)", None, "spectra", "spectral_norm",
            LAYER_MAX),
    Measure("sigma_mean", FILTER, "mean singular value", None, "spectra", "sigma_mean", LAYER_MEAN),
    Measure("stable_rank_ratio", FILTER, "stable rank / count", None, "spectra", "stable_rank_ratio", LAYER_MEAN),
    Measure("effective_rank_ratio", FILTER, "effective rank / count", "effective rank\n/ count", "spectra",
            "effective_rank_ratio", LAYER_MEAN),
    Measure("perturbation_ratio", FILTER, "perturbation-to-signal ratio (PGD)", "perturbation-to-\nsignal ratio (PGD)",
            "perturbation", "perturbation_ratio", LAYER_MEAN),
    Measure("perturbation_ratio_random", FILTER, "perturbation-to-signal ratio (random)", None, "perturbation",
            "perturbation_ratio_random", LAYER_MEAN),
)
BY_NAME = {m.name: m for m in MEASURES}
# Labels of every measure for tables and Fig. 8.
LABELS = {m.name: m.label for m in MEASURES}
# The two variance entropies are one measure on unscaled and scaled filters; config figures.entropy
# picks the one the figures draw (and the findings state).
ENTROPY_VARIANTS = ("unscaled", "scaled")
# What a depth group's variance entropy is weighted by (config analysis.entropy_weights, docs/method.md §5):
# each layer's non-sparse filters (default) or all its filters.
ENTROPY_WEIGHTS = {"nonsparse": "n_nonsparse", "all": "n_filters"}


def of_family(family: str) -> tuple[Measure, ...]:
    """The measures of a family, in registry order."""
    return tuple(m for m in MEASURES if m.family == family)


def names(family: str) -> list[str]:
    """The names of a family's measures, in registry order (the statistics' order)."""
    return [m.name for m in of_family(family)]


def table_columns(family: str, entropy_weights: str = "nonsparse") -> list[Measure]:
    """A family's measures in the column order of its by-depth table: block by block, a block being the
    measures of one (table, aggregation) in registry order, the blocks in the order they first appear;
    the variance entropies weighted as ``entropy_weights`` names (:data:`ENTROPY_WEIGHTS`)."""
    blocks = list(dict.fromkeys((m.table, m.aggregation) for m in of_family(family)))
    over = ENTROPY_WEIGHTS[entropy_weights]
    return [dataclasses.replace(m, over=over) if m.name.startswith("entropy_") else m
            for m in sorted(of_family(family), key=lambda m: blocks.index((m.table, m.aggregation)))]


def drawn(family: str, entropy: str = "scaled") -> list[tuple[str, str]]:
    """(name, figure label) of a family's measures the box plots draw, of the variance entropies only the
    variant ``entropy`` (config figures.entropy)."""
    others = {f"entropy_{v}" for v in ENTROPY_VARIANTS} - {f"entropy_{entropy}"}
    return [(m.name, m.figure_label) for m in of_family(family) if m.figure_label and m.name not in others]


def aggregate(part, measure: Measure) -> float:
    """One depth group's per-layer rows (a DataFrame holding the measure's column and ``over``) into the
    measure's value for the group."""
    values = part[measure.column]
    if measure.aggregation == RATIO:
        total = part[measure.over].sum()
        return values.sum() / total if total else float("nan")
    if measure.aggregation == WEIGHTED_MEAN:
        weights = part[measure.over]
        ok = values.notna() & (weights > 0)
        return float(np.average(values[ok], weights=weights[ok])) if ok.any() else float("nan")
    if measure.aggregation == LAYER_MEAN:
        finite = np.asarray(values, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        return float(finite.mean()) if len(finite) else float("nan")
    if measure.aggregation == LAYER_MAX:
        return float(values.max()) if values.notna().any() else np.nan
    raise ValueError(f"measure {measure.name}: unknown aggregation {measure.aggregation!r}. Fix: one of "
                     f"{RATIO}, {WEIGHTED_MEAN}, {LAYER_MEAN}, {LAYER_MAX} in filterlens.method.measures.")
