"""Known answers for every metric of docs/method.md §3-§5, degenerate cases included."""

import numpy as np
import pytest

from filterlens.method import orthogonality as orthogonality_module
from filterlens.method.depth_groups import depth_group
from filterlens.method.distributions import (EMPTY_BIN, EqualBins, bin_edges, distribution, histogram_counts,
                                             histogram_edges, symmetric_kl, weighted_kl)
from filterlens.method.filters import layer_reference, scale_filters, sparse_mask
from filterlens.method.orthogonality import orthogonality
from filterlens.method.pca import Moments, fix_signs, pca, variance_entropy

LOG10_9 = np.log10(9)


def _entropy(rows):
    return variance_entropy(pca(Moments.of(rows)).ratio)


def test_sparse_means_at_most_a_hundredth_of_the_layers_largest_weight():
    rows = np.zeros((3, 9), dtype=np.float32)
    rows[0, 4] = 2.0  # the layer's max |W|
    rows[1, 0] = -0.02  # exactly max / 100: sparse (<=)
    rows[2, 8] = 0.0201  # just above: not sparse
    assert sparse_mask(rows, 2.0).tolist() == [False, True, False]


def test_an_all_zero_layer_is_all_sparse():
    assert sparse_mask(np.zeros((5, 9), np.float32), 0.0).all()
    for reference in ("max_abs", "max_row_sum"):
        assert sparse_mask(np.zeros((5, 9), np.float32), layer_reference(np.zeros((5, 9)), reference)).all()


def test_the_row_sum_reference_is_numpys_inf_norm_of_the_layer_and_moves_the_threshold():
    rows = np.zeros((4, 9), dtype=np.float32)
    rows[0] = [2.0, -2.0, 1.0, 0.5, -0.5, 0.0, 0.0, 0.0, 1.0]  # row sum 7: the layer's largest
    rows[1, 4] = -2.0  # max |W| 2, row sum 2
    rows[2, 0] = 0.05  # above 2 / 100, at most 7 / 100: sparse under the row sum only
    rows[3, 8] = -0.0701  # above 7 / 100: sparse under neither
    assert layer_reference(rows, "max_abs") == 2.0
    assert layer_reference(rows, "max_row_sum") == 7.0 == np.linalg.norm(rows, np.inf)
    assert sparse_mask(rows, layer_reference(rows, "max_abs")).tolist() == [False, False, False, False]
    assert sparse_mask(rows, layer_reference(rows, "max_row_sum")).tolist() == [False, False, True, False]
    with pytest.raises(ValueError, match="analysis.sparse_reference"):
        layer_reference(rows, "frobenius")


def test_scaling_divides_by_the_peak_and_leaves_zero_filters():
    rows = np.array([[0.5, -2.0] + [0.0] * 7, [0.0] * 9])
    scaled = scale_filters(rows)
    np.testing.assert_array_equal(scaled[0, :2], [0.25, -1.0])
    np.testing.assert_array_equal(scaled[1], np.zeros(9))


def test_variance_spread_evenly_over_nine_directions_has_entropy_log10_9():
    rows = np.concatenate([np.eye(9), -np.eye(9)])
    assert _entropy(rows) == pytest.approx(LOG10_9, abs=1e-12)


def test_variance_in_one_direction_has_entropy_zero():
    direction = np.arange(1.0, 10.0)
    rows = np.outer(np.linspace(-1, 1, 7), direction)
    assert _entropy(rows) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("rows", [np.ones((1, 9)), np.ones((4, 9)), np.zeros((0, 9))],
                         ids=["one filter", "identical filters", "no filter"])
def test_entropy_is_nan_without_variance(rows):
    assert np.isnan(_entropy(rows))


def test_orthogonal_filterbanks_have_orthogonality_one():
    assert orthogonality(np.eye(4, 18) * 3.0) == pytest.approx(1.0)


def test_identical_filterbanks_have_orthogonality_zero():
    assert orthogonality(np.tile(np.arange(1.0, 19.0), (5, 1))) == pytest.approx(0.0)


def test_all_zero_layer_follows_the_formula_and_c_out_1_is_undefined():
    assert orthogonality(np.zeros((4, 18))) == pytest.approx(1 - 1 / 3)
    assert np.isnan(orthogonality(np.ones((1, 18))))


def test_orthogonality_ignores_the_scale_of_each_filterbank():
    w = np.random.default_rng(0).standard_normal((6, 27))
    assert orthogonality(w * np.arange(1, 7)[:, None]) == pytest.approx(orthogonality(w))


def test_pca_matches_a_known_covariance_and_fixes_signs():
    rng = np.random.default_rng(1)
    scales = np.arange(9, 0, -1.0)
    rows = rng.standard_normal((20000, 9)) * scales
    basis = pca(Moments.of(rows))
    np.testing.assert_allclose(basis.explained_variance, np.var(rows, axis=0, ddof=1)[np.argsort(-scales)], rtol=0.05)
    np.testing.assert_allclose(np.abs(basis.components), np.eye(9), atol=0.05)
    assert (basis.components[np.arange(9), np.abs(basis.components).argmax(axis=1)] > 0).all()
    assert basis.ratio.sum() == pytest.approx(1.0)


def test_coefficients_of_scaled_filters_equal_projecting_the_scaled_filters():
    rng = np.random.default_rng(3)
    rows = (rng.standard_normal((5000, 9)) * rng.uniform(1e-3, 10, (5000, 1))).astype(np.float32)
    rows[:3] = 0  # all-zero filters stay zero, so their coefficients are those of the zero filter
    basis = pca(Moments.of(scale_filters(rows)))
    peaks = np.abs(rows).max(axis=1)
    coefficients = basis.project_scaled(rows, peaks)
    np.testing.assert_allclose(coefficients, basis.project(scale_filters(rows)), rtol=0, atol=1e-14)
    np.testing.assert_allclose(coefficients[:, 0], -basis.components @ basis.mean, rtol=0, atol=1e-15)


def test_sign_fix_makes_the_largest_entry_positive():
    flipped = fix_signs(np.array([[0.1, -0.9, 0.2], [0.5, 0.4, -0.3]]))
    np.testing.assert_array_equal(flipped, [[-0.1, 0.9, -0.2], [0.5, 0.4, -0.3]])


def test_histogram_counts_equal_numpy_histogram_edges_included():
    rng = np.random.default_rng(2)
    values = rng.uniform(-1, 1, (5000, 3))
    edges = np.linspace(-1, 1, 71)
    values[:70, 0] = edges[:70]  # values exactly on bin edges
    values[0, 1], values[1, 1] = -1.0, 1.0  # the range's ends
    counts = histogram_counts(values, -1.0, 1.0, 70)
    for c in range(3):
        np.testing.assert_array_equal(counts[c], np.histogram(values[:, c], 70, (-1.0, 1.0))[0])


def test_empty_bins_get_float32_eps_on_densities_before_normalising():
    # 3 bins of width 0.5 over [0, 1.5]: densities 3/(4*0.5) = 1.5, 0, 1/(4*0.5) = 0.5
    p = distribution(np.array([3, 0, 1]), np.array([0.0, 0.5, 1.0, 1.5]))
    expected = np.array([1.5, EMPTY_BIN, 0.5]) / (2 + EMPTY_BIN)
    np.testing.assert_allclose(p, expected, rtol=1e-15)
    # so against probabilities an empty bin weighs eps x width: here eps / 2
    assert p[1] / p[0] == pytest.approx((EMPTY_BIN * 0.5) / 0.75, rel=1e-12)


def test_empty_bins_get_float32_eps_on_probabilities_when_chosen():
    # analysis.empty_bins: probability: shares 3/4, 0, 1/4, then eps in the empty bin, normalised
    p = distribution(np.array([3, 0, 1]), np.array([0.0, 0.5, 1.0, 1.5]), "probability")
    np.testing.assert_allclose(p, np.array([0.75, EMPTY_BIN, 0.25]) / (1 + EMPTY_BIN), rtol=1e-15)
    with pytest.raises(ValueError, match="analysis.empty_bins"):
        distribution(np.array([3, 0, 1]), np.array([0.0, 0.5, 1.0, 1.5]), "densities")


def test_distribution_is_numpys_density_histogram_with_eps_then_normalised():
    rng = np.random.default_rng(3)
    values = rng.normal(0, 0.3, 2000)
    edges = histogram_edges(-2.0, 3.0, 70)  # most bins far right are empty
    counts = histogram_counts(values[:, None], -2.0, 3.0, 70)[0]
    density = np.histogram(values, 70, (-2.0, 3.0), density=True)[0]
    density[density == 0] = np.float32(np.finfo(np.float32).eps)
    np.testing.assert_array_equal(distribution(counts, edges), density / density.sum())


def test_distribution_of_an_empty_histogram_is_uniform_and_bins_must_match():
    np.testing.assert_allclose(distribution(np.zeros(4), np.linspace(0, 1, 5)), np.full(4, 0.25))
    with pytest.raises(ValueError, match="bin edges"):
        distribution(np.ones(4), np.linspace(0, 1, 4))


def test_symmetric_kl_known_value_and_zero_for_equal_distributions():
    p, q = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    expected = 0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(0.5 / 0.1) + 0.9 * np.log(0.9 / 0.5) + 0.1 * np.log(0.1 / 0.5)
    assert symmetric_kl(p, q) == pytest.approx(expected, rel=1e-12)
    assert symmetric_kl(p, p) == 0.0


def test_weighted_kl_weights_each_component():
    counts_p = np.array([[5, 5], [9, 1]])
    counts_q = np.array([[9, 1], [9, 1]])
    total, per_component = weighted_kl(counts_p, counts_q, np.array([0.25, 0.75]), np.array([0.0, 1.0, 2.0]))
    assert per_component[1] == 0.0
    assert total == pytest.approx(0.25 * per_component[0])


def test_depth_groups_first_and_deciles_with_exact_edges():
    groups = depth_group(np.arange(11), 10)
    assert groups.tolist() == ["first", "0.0-0.1", "0.1-0.2", "0.2-0.3", "0.3-0.4", "0.4-0.5", "0.5-0.6",
                               "0.6-0.7", "0.7-0.8", "0.8-0.9", "0.9-1.0"]
    assert depth_group(np.array([3]), 30).tolist() == ["0.0-0.1"]  # 3/30 = 0.1 on the edge: first decile


def _ulps_around(values, n):
    """``values`` and their neighbours up to ``n`` ulps below and above."""
    out = [values]
    for direction in (-np.inf, np.inf):
        step = values
        for _ in range(n):
            step = np.nextafter(step, direction)
            out.append(step)
    return np.concatenate(out)


@pytest.mark.parametrize("low, high, bins", [(-1.0, 1.0, 70), (-2.7182818, 3.14159, 70), (0.1, 0.7, 3),
                                             (-0.3, 0.9, 7), (1e5, 1e5 + 1e-3, 70), (-3.0, 5.0, 1),
                                             (0.0, 1e-3, 1000), (1e5, 1e5 + 1e-8, 70)])
def test_histogram_counts_equal_numpy_within_two_ulps_of_every_edge(low, high, bins):
    edges = bin_edges(low, high, bins)
    values = _ulps_around(edges, 2)
    values = np.stack([values, values[::-1], np.roll(values, 3)], axis=1)
    counts = histogram_counts(values, low, high, bins)
    for c in range(3):
        np.testing.assert_array_equal(counts[c], np.histogram(values[:, c], bins, (low, high))[0])


def test_the_edge_values_need_numpys_corrections_both_ways_and_only_they_are_tested():
    """The values above are the hard ones: numpy's first estimate of their bin, and the
    multiply that EqualBins estimates with, are off, down and up, so the corrections are
    exercised; every value whose estimate is off lies within the margin of a whole number,
    where EqualBins tests it, and a value half a bin from an edge is not tested."""
    low, high, bins = -2.7182818, 3.14159, 70
    values = _ulps_around(bin_edges(low, high, bins), 2)
    values = values[(values >= low) & (values <= high)]
    final = np.minimum(np.searchsorted(bin_edges(low, high, bins), values, side="right") - 1, bins - 1)
    numpy_estimate = np.minimum(((values - low) / (high - low) * bins).astype(np.intp), bins - 1)
    assert (numpy_estimate > final).any() and (numpy_estimate < final).any()
    equal_bins = EqualBins(low, high, bins)
    position = (values - low) * equal_bins.scale
    estimate = np.minimum(np.floor(position).astype(np.intp), bins - 1)
    assert (estimate > final).any() and (estimate < final).any()
    fraction = position - np.floor(position)
    tested = (fraction < equal_bins.margin) | (fraction > 1 - equal_bins.margin)
    assert tested[estimate != final].all()
    assert 0 < equal_bins.margin < 1e-11
    middles = (bin_edges(low, high, bins)[:-1] + bin_edges(low, high, bins)[1:]) / 2
    middle_fraction = (middles - low) * equal_bins.scale % 1
    assert ((middle_fraction > equal_bins.margin) & (middle_fraction < 1 - equal_bins.margin)).all()


def test_histogram_of_an_empty_range_widens_it_as_numpy_does():
    values = np.array([[1.0], [1.0], [0.7], [1.4], [1.6]])
    np.testing.assert_array_equal(histogram_counts(values, 1.0, 1.0, 5)[0], np.histogram(values[:, 0], 5, (1.0, 1.0))[0])


def test_orthogonality_does_not_depend_on_the_channel_blocks(monkeypatch):
    w = np.random.default_rng(3).standard_normal((40, 27))
    w[5] = 0
    one_block = orthogonality(w)
    monkeypatch.setattr(orthogonality_module, "GRAM_BLOCK_WEIGHTS", 100)
    assert len(orthogonality_module.channel_blocks(40, 27)) == 10  # of 4 channels
    assert orthogonality(w) == pytest.approx(one_block, rel=1e-13)


def test_float32_gram_stays_within_1e_7_of_the_float64_formula():
    w = np.random.default_rng(4).standard_normal((orthogonality_module.FLOAT32_GRAM_MIN_C_OUT, 36)).astype(np.float32)
    assert orthogonality_module.gram_dtype(len(w)) == np.float32
    n = w / np.linalg.norm(w.astype(np.float64), axis=1)[:, None]
    expected = 1 - np.abs(n @ n.T - np.eye(len(w))).sum() / (len(w) * (len(w) - 1))
    assert orthogonality(w) == pytest.approx(expected, abs=1e-7)


def test_histogram_counts_leave_out_values_outside_the_range():
    values = np.array([[-2.0, 0.5], [0.0, 3.0], [1.0, 1.0]])
    counts = histogram_counts(values, -1.0, 1.0, 4)
    np.testing.assert_array_equal(counts[0], np.histogram(values[:, 0], 4, (-1.0, 1.0))[0])
    np.testing.assert_array_equal(counts[1], np.histogram(values[:, 1], 4, (-1.0, 1.0))[0])
