"""The findings table: known answers on crafted analysis tables, and the micro run's table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from filterlens.analyse.findings import COLUMNS, FindingThresholds, paper_findings, side_means
from filterlens.method.depth_groups import DEPTH_GROUPS

PAIRS = pd.DataFrame({"robust": ["a_r", "b_r"], "normal": ["a_n", "b_n"], "dataset": ["d", "d"]})


def _bases(first_ratio: float) -> pd.DataFrame:
    rest = (1 - first_ratio) / 8
    rows = [{"set": s, "component": c + 1, "ratio": first_ratio if c == 0 else rest}
            for s in ("full", "robust", "normal") for c in range(9)]
    return pd.DataFrame(rows)


def _quality(orthogonality_gap_by_group: dict[str, float], entropy_gap: float) -> pd.DataFrame:
    rows = []
    for model in ("a_r", "a_n", "b_r", "b_n"):
        robust = model.endswith("_r")
        for group in ["all", *orthogonality_gap_by_group]:
            gap = orthogonality_gap_by_group.get(group, 0.0)
            rows.append({"model_id": model, "robust": robust, "depth_group": group,
                         "orthogonality": 0.5 + (gap if robust else 0.0),
                         "entropy_unscaled": 0.6 + (entropy_gap if robust else 0.0),
                         "entropy_scaled": 0.6 - (entropy_gap if robust else 0.0)})
    return pd.DataFrame(rows)


def _stats_kl(kl_all: float, kl_first: float, q95: float, first_filters: int = 10) -> pd.DataFrame:
    filters = {"n_robust_filters": 10, "n_normal_filters": 10}
    return pd.DataFrame([
        {"dataset": "d", "pooling": "unique", "depth_group": "all", "kl": kl_all, "null_q95": q95, **filters},
        {"dataset": "d", "pooling": "paired", "depth_group": "all", "kl": kl_all, "null_q95": q95, **filters},
        {"dataset": "d", "pooling": "paired", "depth_group": "first", "kl": kl_first, "null_q95": q95,
         "n_robust_filters": first_filters, "n_normal_filters": first_filters},
    ])


def _models(gaps: tuple[float, float]) -> pd.DataFrame:
    return pd.DataFrame({"model_id": ["a_r", "a_n", "b_r", "b_n"],
                         "robust_acc": [10.0 + gaps[0], 10.0, 5.0 + gaps[1], 5.0]})


def _shares(normal: float, robust: float) -> pd.DataFrame:
    return pd.DataFrame({"training": ["robust", "normal"], "pooled_share": [robust, normal]})


def _findings(**overrides) -> pd.DataFrame:
    parts = {"bases": _bases(0.5), "sparse_shares": _shares(0.2, 0.05),
             "quality": _quality({"first": 0.1, "0.4-0.5": 0.1, "0.9-1.0": -0.1}, 0.05),
             "stats_kl": _stats_kl(0.3, 0.4, 0.2), "models": _models((40.0, 30.0))}
    parts.update(overrides)
    return paper_findings(parts["bases"], parts["sparse_shares"], parts["quality"], parts["stats_kl"],
                          parts["models"], PAIRS).set_index("finding")


def test_every_finding_is_shown_when_every_value_points_the_papers_way():
    table = _findings()
    assert list(table.reset_index().columns) == COLUMNS
    assert len(table) == 7 and (table.shown == 1.0).all()
    assert table.loc["normal filters concentrate on the first PCA component", "this_run"] == "50.0 %"
    assert table.loc["robust models are more orthogonal", "this_run"] == "robust higher in 2 of 3 groups"
    assert table.loc["robust models withstand PGD, their counterparts do not", "this_run"] == \
        "smallest gap 30.0 points"


@pytest.mark.parametrize("override, finding", [
    ({"bases": _bases(0.39)}, "normal filters concentrate on the first PCA component"),
    ({"sparse_shares": _shares(0.04, 0.0)}, "normal models have sparse filters, robust models fewer"),
    ({"sparse_shares": _shares(0.2, 0.2)}, "normal models have sparse filters, robust models fewer"),
    ({"quality": _quality({"first": 0.1, "0.4-0.5": -0.1, "0.9-1.0": -0.1}, 0.05)},
     "robust models are more orthogonal"),
    # a tie (1 of 2 groups) is no majority
    ({"quality": _quality({"first": 0.1, "0.9-1.0": -0.1}, 0.05)}, "robust models are more orthogonal"),
    ({"quality": _quality({"first": 0.1}, -0.01)}, "robust models have a higher variance entropy (unscaled)"),
    ({"stats_kl": _stats_kl(0.3, 0.2, 0.2)}, "the first layer's distributions differ robust vs normal"),
    ({"stats_kl": _stats_kl(0.1, 0.4, 0.2)}, "filter distributions differ robust vs normal"),
    ({"models": _models((40.0, 24.9))}, "robust models withstand PGD, their counterparts do not"),
])
def test_a_value_against_the_paper_marks_its_finding_not_shown(override, finding):
    table = _findings(**override)
    assert table.loc[finding, "shown"] == 0.0
    assert (table.drop(index=finding).shown == 1.0).all()


def test_the_entropy_row_follows_the_chosen_entropy():
    quality = _quality({"first": 0.1}, 0.05)  # scaled entropy is lower for robust models here
    table = paper_findings(_bases(0.5), _shares(0.2, 0.05), quality, _stats_kl(0.3, 0.4, 0.2), _models((40.0, 30.0)),
                           PAIRS, entropy="scaled").set_index("finding")
    row = table.loc["robust models have a higher variance entropy (scaled)"]
    assert row.shown == 0.0 and row.this_run == "robust 0.550, normal 0.600"


def test_a_first_layer_without_filters_has_no_kl_to_show():
    table = _findings(stats_kl=_stats_kl(0.3, np.nan, np.nan, first_filters=0))
    assert np.isnan(table.loc["the first layer's distributions differ robust vs normal", "shown"])
    assert table.loc["the first layer's distributions differ robust vs normal", "this_run"] == "no filters"


def test_missing_values_are_not_evaluated_rather_than_not_shown():
    table = _findings(stats_kl=_stats_kl(0.3, np.nan, np.nan), models=_models((np.nan, 30.0)))
    assert np.isnan(table.loc["the first layer's distributions differ robust vs normal", "shown"])
    assert np.isnan(table.loc["robust models withstand PGD, their counterparts do not", "shown"])
    assert table.loc["the first layer's distributions differ robust vs normal", "this_run"] == "n/a"


def test_thresholds_are_the_criteria_of_the_rows():
    table = paper_findings(_bases(0.3), _shares(0.02, 0.0), _quality({"first": 0.1}, 0.05), _stats_kl(0.3, 0.4, 0.2),
                           _models((40.0, 30.0)), PAIRS,
                           thresholds=FindingThresholds(0.25, 0.01, 35.0)).set_index("finding")
    assert table.loc["normal filters concentrate on the first PCA component", "shown"] == 1.0
    assert table.loc["normal models have sparse filters, robust models fewer", "shown"] == 1.0
    assert table.loc["robust models withstand PGD, their counterparts do not", "shown"] == 0.0
    assert table.loc["robust models withstand PGD, their counterparts do not", "criterion"] == \
        "every pair's gap >= 35 points"


def test_an_unknown_entropy_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="'unscaled' or 'scaled'"):
        paper_findings(_bases(0.5), _shares(0.2, 0.05), _quality({}, 0.0), _stats_kl(0.3, 0.4, 0.2),
                       _models((40.0, 30.0)), PAIRS, entropy="raw")


def test_depth_groups_are_the_methods_groups():
    # the orthogonality row counts the groups of docs/method.md §2 only, never 'all'
    quality = _quality({g: 0.1 for g in DEPTH_GROUPS}, 0.05)
    table = _findings(quality=quality)
    assert table.loc["robust models are more orthogonal", "this_run"] == f"robust higher in {len(DEPTH_GROUPS)} of " \
                                                                        f"{len(DEPTH_GROUPS)} groups"


@pytest.mark.workflow
def test_fig7_boxes_over_the_pairings_count_a_shared_counterpart_per_pair_and_over_models_once():
    # r1 and r2 share the counterpart n1; r3's counterpart n2 has no value in the group
    pairs = pd.DataFrame({"robust": ["r1", "r2", "r3"], "normal": ["n1", "n1", "n2"], "dataset": ["d"] * 3})
    quality = pd.DataFrame({"model_id": ["r1", "r2", "r3", "n1", "n2"], "depth_group": "all",
                            "orthogonality": [0.2, 0.4, 0.9, 0.5, np.nan]})
    # pairings: pairs (r1, n1) and (r2, n1), r3's pair left out for n2's missing value
    assert side_means(quality, pairs, "all", "orthogonality", "pairings") == pytest.approx((0.3, 0.5))
    # models: each robust model once (n2 has no value: left out)
    assert side_means(quality, pairs, "all", "orthogonality", "models") == pytest.approx((0.5, 0.5))
    with pytest.raises(ValueError, match="figures.boxes"):
        side_means(quality, pairs, "all", "orthogonality", "pairs")


def test_the_kl_finding_takes_the_chosen_pooling():
    stats = _stats_kl(0.3, 0.4, 0.2)
    stats.loc[stats.pooling == "unique", "kl"] = 0.1  # below the 95 % point: not shown under unique
    parts = (_bases(0.5), _shares(0.2, 0.05), _quality({"first": 0.1}, 0.05), stats, _models((40.0, 30.0)), PAIRS)
    finding = "filter distributions differ robust vs normal"
    assert paper_findings(*parts).set_index("finding").shown[finding] == 0.0
    assert paper_findings(*parts, pooling="paired").set_index("finding").shown[finding] == 1.0


def test_the_micro_run_has_a_findings_table_with_every_finding(micro_run):
    table = pd.read_csv(micro_run / "results" / "tables" / "findings.tsv", sep="\t")
    # with the sensitivity analysis (the default), under how many variants each finding holds
    assert list(table.columns) == [*COLUMNS, "holds_under"] and len(table) == 7
    assert set(table.shown.dropna()) <= {0.0, 1.0}
    html = (micro_run / "results" / "tables" / "findings.html").read_text()
    assert "Finding" in html and "Criterion" in html
