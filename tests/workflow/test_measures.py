"""The registry of per-model measures (filterlens.method.measures) is the only list of them: the by-depth
tables, the statistics, the labels and the figures follow it, and no rule, analysis or figure names them
itself."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from filterlens.analyse.filter_measures import filter_measures_by_depth
from filterlens.analyse.quality import quality_by_depth
from filterlens.method import measures
from filterlens.method.measures import FILTER, MEASURES, QUALITY, TABLES, drawn, names, table_columns

REPO = Path(__file__).resolve().parents[2]


def test_every_measure_is_registered_whole():
    assert len({m.name for m in MEASURES}) == len(MEASURES)
    aggregations = {measures.RATIO, measures.WEIGHTED_MEAN, measures.LAYER_MEAN, measures.LAYER_MAX}
    for m in MEASURES:
        assert m.family in {QUALITY, FILTER} and m.table in TABLES and m.aggregation in aggregations, m
        assert (m.over is not None) == (m.aggregation in {measures.RATIO, measures.WEIGHTED_MEAN}), m
        assert m.label and "\n" not in m.label, m
    assert names(QUALITY) + names(FILTER) == [m.name for m in MEASURES]


def _layers(rng):
    rows = []
    for model in ("a", "b"):
        for i in range(6):
            n_filters = 10 + i
            rows.append({"model_id": model, "name": f"l{i}", "depth_group": ("first", "0.9-1.0")[i % 2],
                         "n_filters": n_filters, "n_sparse": i, "n_nonsparse": n_filters - i, "c_out": 2 + i,
                         **{m.column: rng.random() for m in MEASURES if m.table == "layers" and m.aggregation != "ratio"},
                         "l1l2_ratio_sum": rng.random(), "hf_share_sum": rng.random()})
    return pd.DataFrame(rows)


def test_the_by_depth_tables_hold_each_registered_measure_in_its_block():
    rng = np.random.default_rng(0)
    layers = _layers(rng)
    keys = layers[["model_id", "name"]]
    spectra = keys.assign(**{m.column: rng.random(len(keys)) for m in MEASURES if m.table == "spectra"})
    perturbation = keys.assign(**{m.column: rng.random(len(keys)) for m in MEASURES if m.table == "perturbation"})
    sheet = pd.DataFrame({"model_id": ["a", "b"], "dataset": ["d", "d"],
                          "robust": [True, False]}).set_index("model_id", drop=False)
    ids = ["model_id", "dataset", "robust", "depth_group", "n_layers"]
    quality = quality_by_depth(layers, sheet)
    assert list(quality.columns) == [*ids, "n_filters", *(m.name for m in table_columns(QUALITY))]
    merged = filter_measures_by_depth(layers, spectra, perturbation, sheet)
    assert list(merged.columns) == [*ids, "n_nonsparse", *(m.name for m in table_columns(FILTER))]
    assert merged[names(FILTER)].notna().all().all() and quality[names(QUALITY)].notna().all().all()


def test_a_tables_blocks_keep_a_sources_means_before_its_maximum():
    assert [m.name for m in table_columns(FILTER)] == [
        "l1l2_ratio", "hf_share", "spectral_norm", "sigma_mean", "stable_rank_ratio", "effective_rank_ratio",
        "spectral_norm_max", "perturbation_ratio", "perturbation_ratio_random"]


def test_the_figures_draw_the_chosen_entropy():
    assert [n for n, _ in drawn(QUALITY, "unscaled")] == ["sparsity", "entropy_unscaled", "orthogonality"]
    assert dict(drawn(QUALITY, "scaled"))["entropy_scaled"] == "variance entropy\n(scaled)"
    assert all(label for _, label in drawn(FILTER))


# Per-layer columns named where they are written or logged, not lists of per-model measures.
PER_LAYER = {"workflow_scripts/layer_perturbation.py", "src/filterlens/cli/analyze.py"}


def test_no_rule_analysis_or_figure_lists_the_measures_itself():
    """Two measure names quoted near each other outside the registry are a second list to keep in step."""
    quoted = re.compile("[\"'](%s)[\"']" % "|".join(re.escape(m.name) for m in MEASURES))
    places = [REPO / "rules", REPO / "workflow_scripts"] + [REPO / "src" / "filterlens" / stage
                                                           for stage in ("analyse", "report", "cli")]
    found = []
    for path in sorted(p for place in places for p in place.rglob("*") if p.suffix in {".py", ".smk"}):
        if str(path.relative_to(REPO)) in PER_LAYER:
            continue
        hits = [(match.start(), match.group(1)) for match in quoted.finditer(path.read_text())]
        found += [f"{path.relative_to(REPO)}: {a} and {b}" for (i, a), (j, b) in zip(hits, hits[1:])
                  if a != b and j - i < 200]
    assert not found, found


@pytest.mark.workflow
def test_the_runs_statistics_and_labels_follow_the_registry(micro_run):
    analysis = micro_run / "results" / "analysis"
    for family, stats in ((QUALITY, "stats_quality.tsv"), (FILTER, "stats_filter_measures.tsv")):
        tested = list(dict.fromkeys(pd.read_csv(analysis / stats, sep="\t").metric))
        assert tested and tested == [n for n in names(family) if n in tested]
    assert set(tested) >= {"l1l2_ratio", "spectral_norm", "perturbation_ratio"}  # every source table
    correlated = list(dict.fromkeys(pd.read_csv(analysis / "correlations.tsv", sep="\t").measure))
    assert correlated == [n for n in names(QUALITY) + names(FILTER) if n in correlated]
    printed = pd.read_csv(micro_run / "results" / "tables" / "table_statistics.tsv", sep="\t")
    labels = {m.label for m in MEASURES}
    assert {m for m in printed.measure if "KL" not in m} <= labels
