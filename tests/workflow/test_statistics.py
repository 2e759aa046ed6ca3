"""Statistics on synthetic data with known outcomes, and the micro workflow's statistics tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from filterlens.analyse.kl import depth_group_tests, group_counts, kl_comparisons, kl_statistics, pooled_counts
from filterlens.analyse.statistics import (correlations, holm, min_wilcoxon_p, paired_comparisons, paired_test,
                                           rank_biserial, rank_biserials, significance_mark, spearman)

# --- Holm ------------------------------------------------------------------------------------


def test_holm_adjusts_in_step_down_order():
    p = [0.01, 0.04, 0.03, np.nan, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04 (m = 4): x4, x3, x2, x1 -> 0.02, 0.03, 0.06, 0.04 -> running max
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, np.nan, 0.02])
    assert holm([0.9, 0.8])[0] == 1.0  # capped at 1
    assert holm([0.02]) == pytest.approx([0.02])  # a family of one is not adjusted
    adjusted = holm(np.random.default_rng(0).random(20))
    assert (adjusted >= 0).all() and (adjusted <= 1).all()
    assert np.isnan(holm([np.nan])).all()


def test_significance_marks():
    assert [significance_mark(p) for p in (0.2, 0.04, 0.009, 0.0009, np.nan)] == ["", "*", "**", "***", ""]


# --- paired tests ------------------------------------------------------------------------------

def test_identical_groups_give_a_large_p_and_an_interval_containing_zero():
    x = np.random.default_rng(1).normal(size=15)
    result = paired_test(x, x, n_bootstrap=500, seed=0)
    assert result["p_value"] == 1.0 and result["median_difference"] == 0.0
    assert result["median_difference_low"] <= 0 <= result["median_difference_high"]
    noise = paired_test(x, x + np.random.default_rng(2).normal(0, 1, 15), n_bootstrap=500, seed=0)
    assert noise["p_value"] > 0.05 and noise["median_difference_low"] <= 0 <= noise["median_difference_high"]


def test_a_clear_shift_gives_a_small_p():
    rng = np.random.default_rng(3)
    normal = rng.normal(size=12)
    result = paired_test(normal + 1.0, normal + rng.normal(0, 0.1, 12), n_bootstrap=500, seed=0)
    assert result["p_value"] == pytest.approx(2 / 2 ** 12)  # exact: every pair higher
    assert result["rank_biserial"] == 1.0 and result["median_difference_low"] > 0.5
    assert result["can_reach_alpha"]


def test_few_pairs_cannot_reach_alpha_and_say_so():
    result = paired_test([1.0, 2.0, 3.0], [0.0, 1.5, 2.0], n_bootstrap=200)
    assert result["n_pairs"] == 3 and result["p_value"] == pytest.approx(0.25)
    assert result["min_p"] == pytest.approx(0.25) and not result["can_reach_alpha"]
    assert min_wilcoxon_p(5) == pytest.approx(1 / 16) and min_wilcoxon_p(6) == pytest.approx(1 / 32)


def test_paired_test_drops_missing_pairs_and_is_seeded():
    a = paired_test([1, 2, np.nan, 4, 5, 6, 7], [0, 1, 1, 2, 3, 3, 4], n_bootstrap=300, seed=5)
    b = paired_test([1, 2, np.nan, 4, 5, 6, 7], [0, 1, 1, 2, 3, 3, 4], n_bootstrap=300, seed=5)
    assert a == b and a["n_pairs"] == 6


def test_rank_biserial():
    assert rank_biserial([1, 2, 3]) == 1.0 and rank_biserial([-1, -2]) == -1.0
    assert rank_biserial([-1, 2]) == pytest.approx((2 - 1) / 3)
    assert rank_biserial([0, 0]) == 0.0 and rank_biserial([0, -3, 1, 1]) == pytest.approx((2 * 1.5 - 3) / 6)


def _rank_biserial_of_one_row(d):
    """The definition, one row at a time: ranks of the non-zero |d|, T+ and T-."""
    d = d[d != 0]
    ranks = rankdata(np.abs(d))
    return float((ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum()) if len(d) else 0.0


def test_rank_biserials_of_resamples_are_each_rows_own_value():
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 40):
        d = np.round(rng.normal(size=n), 1) * (rng.random(n) > 0.3)  # ties and zero differences
        samples = d[rng.integers(0, n, size=(500, n))]
        assert rank_biserials(samples).tolist() == [_rank_biserial_of_one_row(row) for row in samples]


def test_paired_comparisons_pair_models_and_adjust_over_the_table():
    rng = np.random.default_rng(6)
    models = [f"r{i}" for i in range(8)] + [f"n{i}" for i in range(8)]
    rows = []
    for i in range(8):
        base = rng.normal()
        for group in ("all", "first"):
            rows.append({"model_id": f"n{i}", "depth_group": group, "shifted": base, "same": base})
            rows.append({"model_id": f"r{i}", "depth_group": group, "shifted": base + 2 + rng.normal(0, .1),
                         "same": base})
    table = pd.DataFrame(rows)
    pairs = pd.DataFrame({"robust": models[:8], "normal": models[8:], "dataset": ["d"] * 8})
    result = paired_comparisons(table, pairs, ["shifted", "same"], ["all", "first"], n_bootstrap=200)
    assert len(result) == 4 and result.n_tests.iloc[0] == 4
    shifted = result[result.metric == "shifted"]
    np.testing.assert_allclose(shifted.p_value, 2 / 2 ** 8)
    assert shifted.significant.all()
    np.testing.assert_allclose(shifted.p_holm, 4 * 2 / 2 ** 8)  # p x4 and p x3, then the running max
    same = result[result.metric == "same"]
    assert (same.p_value == 1.0).all() and not same.significant.any()


# --- KL bootstrap and permutation --------------------------------------------------------------

EDGES = np.linspace(-6, 6, 31)


def _counts(rng, shift, n=4000):
    values = rng.normal(shift, 1.0, size=(n, 9))
    return np.stack([np.histogram(values[:, c], 30, (-6, 6))[0] for c in range(9)])


def test_kl_permutation_baseline_separates_a_shift_from_noise():
    rng = np.random.default_rng(7)
    weights = np.full(9, 1 / 9)
    counts = {f"r{i}": _counts(rng, 1.0) for i in range(4)} | {f"n{i}": _counts(rng, 0.0) for i in range(4)}
    robust, normal = [f"r{i}" for i in range(4)], [f"n{i}" for i in range(4)]
    shifted = kl_statistics(robust, normal, counts, weights, EDGES, paired=True, n_bootstrap=200, n_permutations=100)
    assert shifted["exact"] and shifted["n_permutations"] == 70  # C(8, 4) splits
    assert shifted["kl"] > shifted["null_max"] * 0.99 and shifted["p_permutation"] == pytest.approx(2 / 70)
    assert shifted["kl_low"] <= shifted["kl"] * 1.001 and shifted["kl_high"] > 0
    same = {f"r{i}": _counts(rng, 0.0) for i in range(4)} | {f"n{i}": _counts(rng, 0.0) for i in range(4)}
    noise = kl_statistics(robust, normal, same, weights, EDGES, paired=True, n_bootstrap=200, n_permutations=100)
    assert noise["p_permutation"] > 0.05 and noise["kl"] < shifted["null_mean"] * 50
    sampled = kl_statistics(robust, normal, counts, weights, EDGES, paired=False, n_bootstrap=50,
                            n_permutations=30, seed=1)
    assert not sampled["exact"] and sampled["n_permutations"] == 30
    again = kl_statistics(robust, normal, counts, weights, EDGES, paired=False, n_bootstrap=50,
                          n_permutations=30, seed=1)
    assert sampled == again


def test_kl_comparisons_pool_unique_models_once_and_pairs_with_their_counterparts():
    pairs = pd.DataFrame({"dataset": ["b", "b", "a"], "robust": ["r1", "r2", "r3"], "normal": ["n1", "n1", "n3"]})
    comparisons = list(kl_comparisons(pairs, ["first"]))
    assert comparisons == [("b", "unique", "all", ["r1", "r2"], ["n1"]),
                           ("b", "paired", "all", ["r1", "r2"], ["n1", "n1"]),
                           ("b", "paired", "first", ["r1", "r2"], ["n1", "n1"]),
                           ("a", "unique", "all", ["r3"], ["n3"]), ("a", "paired", "all", ["r3"], ["n3"]),
                           ("a", "paired", "first", ["r3"], ["n3"])]


def test_group_counts_sum_the_layers_of_a_group_and_pooling_counts_a_model_once_per_listing():
    histograms = {"m": np.arange(3 * 9 * 2).reshape(3, 9, 2)}
    layers = {"m": pd.DataFrame({"layer_id": [2, 0, 1], "depth_group": ["0.9-1.0", "first", "0.9-1.0"]})}
    np.testing.assert_array_equal(group_counts(histograms, layers, "first")["m"], histograms["m"][0])
    np.testing.assert_array_equal(group_counts(histograms, layers, "0.9-1.0")["m"], histograms["m"][1:].sum(axis=0))
    np.testing.assert_array_equal(group_counts(histograms, layers, "all")["m"], histograms["m"].sum(axis=0))
    counts = {"a": np.ones((9, 2)), "b": np.full((9, 2), 2.0)}
    np.testing.assert_array_equal(pooled_counts(["a", "b", "b"], counts), np.full((9, 2), 5.0))


def test_depth_group_tests_are_holm_adjusted_within_each_dataset():
    stats = pd.DataFrame({"dataset": ["a"] * 4 + ["b"] * 2, "pooling": ["unique", "paired", "paired", "paired",
                                                                          "paired", "paired"],
                          "depth_group": ["all", "all", "first", "0.0-0.1", "first", "0.0-0.1"],
                          "p_permutation": [0.001, 0.001, 0.01, 0.04, 0.02, np.nan]})
    tests = depth_group_tests(stats)
    assert tests.index.tolist() == [2, 3, 4, 5]  # paired depth groups only ('all' is no depth group)
    np.testing.assert_allclose(tests.p_holm, [0.02, 0.04, 0.02, np.nan])  # families of 2 and of 1


# --- correlations ------------------------------------------------------------------------------

def test_spearman_known_answers():
    perfect = spearman([1, 2, 3, 4, 5, 6], [10, 20, 30, 40, 50, 60], n_bootstrap=200)
    assert perfect["rho"] == pytest.approx(1.0) and perfect["p_value"] == pytest.approx(2 / 720)
    assert perfect["rho_low"] == pytest.approx(1.0)
    assert np.isnan(spearman([1, 2, 3], [5, 5, 5])["rho"])  # a constant side
    rng = np.random.default_rng(8)
    x = rng.normal(size=40)
    large = spearman(x, x + rng.normal(0, .3, 40), n_bootstrap=300)
    assert large["p_value"] < 1e-6 and large["rho_low"] > 0.5


def test_correlations_per_dataset_and_overall():
    rng = np.random.default_rng(9)
    n = 12
    accuracies = pd.DataFrame({"model_id": [f"m{i}" for i in range(n)], "dataset": ["a"] * 6 + ["b"] * 6,
                               "clean_acc": rng.normal(size=n), "robust_acc": rng.normal(size=n)})
    measures = pd.DataFrame({"model_id": accuracies.model_id, "x": accuracies.robust_acc * 3 + 1})
    result = correlations(measures, accuracies, ["x"], n_bootstrap=100)
    assert set(result.dataset) == {"a", "b", "all"} and len(result) == 6
    robust = result[result.accuracy == "robust_acc"].set_index("dataset")
    np.testing.assert_allclose(robust.rho, 1.0)
    assert robust.p_value["all"] < 1e-6
    assert result.p_holm.notna().all() and (result.p_holm >= result.p_value).all()


# --- the micro workflow ----------------------------------------------------------------------

@pytest.mark.workflow
def test_micro_workflow_writes_the_statistics_tables(micro_run):
    analysis = micro_run / "results" / "analysis"
    quality = pd.read_csv(analysis / "stats_quality.tsv", sep="\t")
    for column in ("dataset", "depth_group", "metric", "n_pairs", "median_difference", "median_difference_low",
                   "median_difference_high", "rank_biserial", "p_value", "min_p", "can_reach_alpha", "p_holm"):
        assert column in quality.columns, column
    assert set(quality.metric) == {"sparsity", "entropy_unscaled", "entropy_scaled", "orthogonality"}
    assert (quality.n_pairs == 1).all() and not quality.can_reach_alpha.any()  # one pair: p >= 1
    kl = pd.read_csv(analysis / "stats_kl.tsv", sep="\t")
    for column in ("pooling", "kl", "kl_low", "kl_high", "null_mean", "null_q95", "p_permutation", "exact"):
        assert column in kl.columns, column
    by_dataset = pd.read_csv(analysis / "kl_by_dataset.tsv", sep="\t").set_index("pooling")
    whole = kl[kl.depth_group == "all"].set_index("pooling")
    assert whole.kl["unique"] == pytest.approx(by_dataset.kl["unique"], rel=1e-12)
    measures = pd.read_csv(analysis / "stats_filter_measures.tsv", sep="\t")
    assert {"l1l2_ratio", "hf_share", "spectral_norm", "perturbation_ratio"} <= set(measures.metric)
    corr = pd.read_csv(analysis / "correlations.tsv", sep="\t")
    assert {"dataset", "measure", "accuracy", "rho", "p_value", "rho_low", "rho_high", "p_holm"} <= set(corr.columns)
    assert set(corr.accuracy) == {"clean_acc", "robust_acc"}
    table = pd.read_csv(micro_run / "results" / "tables" / "table_statistics.tsv", sep="\t")
    assert {"measure", "test", "estimate", "low", "high", "p_value", "p_holm"} <= set(table.columns)
    for name in ("fig8_correlations", "fig9_filter_measures"):
        for ext in ("pdf", "png"):
            assert (micro_run / "results" / "figures" / f"{name}.{ext}").stat().st_size > 5_000
