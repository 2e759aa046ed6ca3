"""Known answers for the filter measures of neighbouring work (docs/method.md §7), the pass-1 sums
they come from, and the micro workflow's per-model and merged tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from filterlens.analyse.filter_measures import filter_measures_by_depth
from filterlens.method.filter_measures import (conv_singular_values, filter_measure_sums, high_frequency_share,
                                               l1l2_ratio, perturbation_ratio, spectrum_summary)

# --- per-filter measures ---------------------------------------------------------------------


def test_l1l2_ratio_known_answers():
    one = np.zeros((1, 9))
    one[0, 4] = -3.0
    assert l1l2_ratio(one)[0] == pytest.approx(0.0, abs=1e-15)
    assert l1l2_ratio(np.full((1, 9), 0.7))[0] == pytest.approx(1.0)
    signs = np.array([[1, -1, 1, -1, 1, -1, 1, -1, 1]], float)  # equal magnitudes: 1 whatever the signs
    assert l1l2_ratio(signs)[0] == pytest.approx(1.0)
    two = np.zeros((1, 9))
    two[0, :2] = 1.0  # (2^2 / 2 - 1) / 8
    assert l1l2_ratio(two)[0] == pytest.approx(1 / 8)
    rows = np.random.default_rng(0).standard_normal((50, 9))
    np.testing.assert_allclose(l1l2_ratio(rows), l1l2_ratio(5 * rows))  # scale invariant
    assert np.isnan(l1l2_ratio(np.zeros((1, 9)))[0])


def test_high_frequency_share_is_the_energy_outside_the_dc_term():
    assert high_frequency_share(np.full((1, 9), -2.5))[0] == pytest.approx(0.0, abs=1e-15)
    rows = np.random.default_rng(1).standard_normal((100, 9))
    spectrum = np.abs(np.fft.fft2(rows.reshape(-1, 3, 3))) ** 2  # Parseval: the total is 9 sum F^2
    expected = 1 - spectrum[:, 0, 0] / spectrum.sum(axis=(1, 2))
    np.testing.assert_allclose(high_frequency_share(rows), expected, rtol=1e-12)
    np.testing.assert_allclose(high_frequency_share(rows), 1 - 9 * rows.mean(axis=1) ** 2 / (rows ** 2).sum(axis=1))
    zero_mean = rows - rows.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(high_frequency_share(zero_mean), 1.0)
    assert np.isnan(high_frequency_share(np.zeros((1, 9)))[0])


def test_filter_measure_sums_add_over_pieces():
    rows = np.random.default_rng(2).standard_normal((40, 9))
    whole = filter_measure_sums(rows)
    parts = np.add(filter_measure_sums(rows[:13]), filter_measure_sums(rows[13:]))
    np.testing.assert_allclose(whole, parts, rtol=1e-12)
    assert filter_measure_sums(np.zeros((0, 9))) == (0.0, 0.0)


# --- singular values of a conv layer --------------------------------------------------------

def _dense_operator(weight: np.ndarray, n: int, stride: int = 1, groups: int = 1) -> np.ndarray:
    """The explicit matrix of the conv with circular padding: the conv applied to every basis image."""
    kernel = weight.shape[-1]
    c_in = weight.shape[1] * groups
    basis = torch.eye(c_in * n * n, dtype=torch.float64).reshape(-1, c_in, n, n)
    padded = F.pad(basis, (kernel // 2,) * 4, mode="circular")
    out = F.conv2d(padded, torch.as_tensor(weight, dtype=torch.float64), stride=stride, groups=groups)
    return out.reshape(len(basis), -1).T.numpy()


@pytest.mark.parametrize("c_out, c_in, n, stride, groups", [
    (4, 3, 5, 1, 1), (3, 3, 4, 1, 1), (5, 2, 2, 1, 1), (2, 3, 1, 1, 1),  # kernel larger than the input wraps
    (4, 3, 6, 2, 1), (4, 4, 4, 2, 2), (6, 4, 4, 1, 2), (3, 3, 6, 3, 3),
])
def test_fft_singular_values_equal_those_of_the_dense_operator(c_out, c_in, n, stride, groups):
    weight = np.random.default_rng(c_out * 100 + n).standard_normal((c_out, c_in // groups, 3, 3))
    dense = np.linalg.svd(_dense_operator(weight, n, stride, groups), compute_uv=False)
    fast = conv_singular_values(weight, n, stride=stride, groups=groups)
    assert len(fast) == len(dense)
    np.testing.assert_allclose(fast, np.sort(dense)[::-1], rtol=0, atol=1e-9)


def test_fft_singular_values_in_small_frequency_blocks_are_the_same():
    weight = np.random.default_rng(3).standard_normal((8, 6, 3, 3))
    np.testing.assert_allclose(conv_singular_values(weight, 8, max_block_bytes=1),
                               conv_singular_values(weight, 8), rtol=1e-12)


def test_identity_and_one_by_one_kernels():
    # identity kernel (centre tap 1, channel to itself): the identity operator, every value 1
    identity = np.zeros((3, 3, 3, 3))
    identity[np.arange(3), np.arange(3), 1, 1] = 1.0
    np.testing.assert_allclose(conv_singular_values(identity, 5), np.ones(3 * 25), atol=1e-12)
    # a 1x1-equivalent kernel (centre tap only): the singular values of the channel matrix, each n^2 times
    matrix = np.random.default_rng(4).standard_normal((4, 3))
    kernel = np.zeros((4, 3, 3, 3))
    kernel[:, :, 1, 1] = matrix
    expected = np.repeat(np.linalg.svd(matrix, compute_uv=False), 16)
    np.testing.assert_allclose(conv_singular_values(kernel, 4), np.sort(expected)[::-1], atol=1e-12)
    # a constant 3x3 kernel on one channel: 9 at the DC frequency, |sum of a 3-tap cosine|^2 elsewhere
    constant = np.ones((1, 1, 3, 3))
    values = conv_singular_values(constant, 6)
    assert values[0] == pytest.approx(9.0)


def test_spectrum_summary_known_answers():
    summary = spectrum_summary(np.array([2.0, 1.0, 1.0, 0.0]))
    assert summary["spectral_norm"] == 2.0 and summary["sigma_min"] == 0.0 and summary["n_singular"] == 4
    assert summary["sigma_mean"] == 1.0
    assert summary["stable_rank"] == pytest.approx(6 / 4)
    p = np.array([0.5, 0.25, 0.25])
    assert summary["effective_rank"] == pytest.approx(np.exp(-(p * np.log(p)).sum()))
    flat = spectrum_summary(np.ones(10))
    assert flat["effective_rank_ratio"] == pytest.approx(1.0) and flat["stable_rank_ratio"] == pytest.approx(1.0)
    assert np.isnan(spectrum_summary(np.array([]))["spectral_norm"])


def test_perturbation_ratio():
    clean = np.array([[3.0, 4.0], [0.0, 0.0]])
    perturbed = np.array([[3.0, 4.5], [1.0, 0.0]])
    ratio = perturbation_ratio(clean, perturbed)
    assert ratio[0] == pytest.approx(0.1) and np.isnan(ratio[1])


def test_merge_by_depth_weights_filters_and_layers():
    layers = pd.DataFrame({"model_id": ["m"] * 3, "name": ["a", "b", "c"], "depth_group": ["first", "0.9-1.0", "0.9-1.0"],
                           "n_nonsparse": [10, 30, 0], "l1l2_ratio_sum": [5.0, 6.0, 0.0],
                           "hf_share_sum": [1.0, 3.0, 0.0]})
    spectra = pd.DataFrame({"model_id": ["m"] * 3, "name": ["a", "b", "c"], "spectral_norm": [1.0, 2.0, 4.0],
                            "sigma_mean": [1.0] * 3, "stable_rank_ratio": [0.5] * 3, "effective_rank_ratio": [0.5] * 3})
    sheet = pd.DataFrame({"model_id": ["m"], "dataset": ["d"], "robust": [True]}).set_index("model_id", drop=False)
    table = filter_measures_by_depth(layers, spectra, None, sheet).set_index("depth_group")
    assert table.l1l2_ratio["all"] == pytest.approx(11 / 40) and table.hf_share["0.9-1.0"] == pytest.approx(0.1)
    assert table.spectral_norm["0.9-1.0"] == pytest.approx(3.0) and table.spectral_norm_max["all"] == 4.0
    assert table.perturbation_ratio.isna().all()
    assert list(table.index) == ["all", "first", "0.9-1.0"]
    # Without spectra (config analysis.spectra off): the other measures as before, spectral ones NaN.
    bare = filter_measures_by_depth(layers, None, None, sheet).set_index("depth_group")
    assert bare.l1l2_ratio.equals(table.l1l2_ratio) and bare.hf_share.equals(table.hf_share)
    assert bare[["spectral_norm", "spectral_norm_max", "sigma_mean"]].isna().all().all()


# --- the micro workflow ---------------------------------------------------------------------

@pytest.mark.workflow
def test_micro_workflow_writes_the_filter_measure_tables(micro_run):
    summaries = micro_run / "results" / "summaries"
    for model in ("micro_normal", "micro_robust"):
        layers = pd.read_csv(summaries / model / "layers.tsv", sep="\t")
        assert list(layers.columns[-4:]) == ["l1l2_ratio_sum", "hf_share_sum", "l1l2_ratio", "hf_share"]
        assert layers.l1l2_ratio.between(0, 1).all() and layers.hf_share.between(0, 1).all()
        spectra = pd.read_csv(summaries / model / "spectra.tsv", sep="\t")
        assert list(spectra.name) == list(layers.name)
        assert (spectra.spectral_norm > 0).all() and (spectra.input_size > 0).all()
        m = spectra.input_size // spectra.stride  # one c_out x (c_in stride^2) matrix per frequency of m x m
        expected = m ** 2 * np.minimum(spectra.c_out, spectra.c_in * spectra.stride ** 2)
        assert (spectra.n_singular == expected).all()
        perturbation = pd.read_csv(summaries / model / "perturbation.tsv", sep="\t")
        assert list(perturbation.name) == list(layers.name) and (perturbation.perturbation_ratio > 0).all()
    merged = pd.read_csv(micro_run / "results" / "analysis" / "filter_measures_by_depth.tsv", sep="\t")
    expected = ["model_id", "dataset", "robust", "depth_group", "l1l2_ratio", "hf_share", "spectral_norm",
                "spectral_norm_max", "effective_rank_ratio", "stable_rank_ratio", "perturbation_ratio"]
    assert set(expected) <= set(merged.columns)
    assert set(merged.model_id) == {"micro_normal", "micro_robust"} and "all" in set(merged.depth_group)
    assert merged[merged.depth_group == "all"][expected[4:]].notna().all().all()
