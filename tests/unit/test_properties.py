"""Properties the definitions of docs/method.md §3-§5 imply, checked on random layers (hypothesis).

A layer is weights (c_out, c_in, 3, 3); its metrics are computed with filterlens.method the
way filterlens.reduce.passes does per layer (:func:`layer_metrics`).

- sparsity: in [0, 1]; unchanged by scaling the layer by c > 0 (exactly for powers of two, and
  for any c when no filter lies within rounding of the threshold max|W|/100) and by permuting
  filters (rows);
- variance entropy, scaled and unscaled: in [0, log10 9] or NaN (fewer than two non-sparse
  filters or zero variance); unchanged by scaling the layer (scaled filters F/max|F| do not
  change; unscaled, the covariance scales by c^2, so the variance ratios do not) and by
  permuting filters;
- orthogonality O = 1 - sum|N - I| / (c_out (c_out - 1)), N the cosine Gram of the
  filterbanks (a zero filterbank's row and column of N are zero): with z zero filterbanks,
  sum|N - I| = z + sum over the off-diagonal pairs of non-zero filterbanks of |cos| <=
  z + (c_out - z)(c_out - z - 1) <= c_out (c_out - 1), so O is in [0, 1] for c_out >= 2
  (1 exactly for orthogonal non-zero filterbanks, 0 exactly when every pair is collinear);
  NaN for c_out = 1. It is unchanged by scaling the layer, by scaling one filterbank by any
  c != 0, and by permuting output channels (and input channels);
- Moments are additive: splitting the rows anywhere, into any number of parts, gives the same
  PCA (mean, variances, covariance) to 1e-9.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from filterlens.method.filters import scale_filters, sparse_mask
from filterlens.method.orthogonality import orthogonality
from filterlens.method.pca import Moments, pca, variance_entropy

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LOG9 = math.log10(9)
ELEMENTS = st.floats(-100, 100, allow_nan=False, allow_subnormal=False, width=32)


@st.composite
def layers(draw, min_c_out=1):
    """A layer (c_out, c_in, 3, 3) in float64 from float32 values, some filters near zero (sparse)."""
    c_out = draw(st.integers(min_c_out, 8))
    c_in = draw(st.integers(1, 6))
    weights = draw(arrays(np.float32, (c_out, c_in, 3, 3), elements=ELEMENTS)).astype(np.float64)
    shrink = draw(arrays(np.bool_, (c_out, c_in)))
    weights[shrink] *= 1e-3  # sparse filters: max|F| <= max|W| / 100
    return weights


def layer_metrics(weights: np.ndarray) -> dict[str, float]:
    """The metrics of one layer, as filterlens.reduce.passes computes them from its rows."""
    rows = weights.reshape(-1, 9)
    sparse = sparse_mask(rows, float(np.abs(rows).max()))
    nonsparse = rows[~sparse]
    return {
        "sparsity": float(sparse.mean()),
        "entropy_unscaled": variance_entropy(pca(Moments.of(nonsparse)).ratio),
        "entropy_scaled": variance_entropy(pca(Moments.of(scale_filters(nonsparse))).ratio),
        "orthogonality": orthogonality(weights.reshape(len(weights), -1)),
    }


def well_conditioned(weights: np.ndarray) -> bool:
    """The variance ratios are defined well above round-off (both variants): at least two
    non-sparse filters, and a total variance that is not a rounding residue of their mean."""
    rows = weights.reshape(-1, 9)
    nonsparse = rows[~sparse_mask(rows, float(np.abs(rows).max()))]
    if len(nonsparse) < 3:
        return False
    for x in (nonsparse, scale_filters(nonsparse)):
        variance = pca(Moments.of(x)).explained_variance
        if not variance.sum() > 1e-6 * (x ** 2).sum(axis=1).mean():
            return False
    return True


def away_from_threshold(weights: np.ndarray, margin: float = 1e-9) -> bool:
    """No filter's peak lies within ``margin`` (relative) of the sparsity threshold."""
    rows = weights.reshape(-1, 9)
    threshold = np.abs(rows).max() / 100
    peaks = np.abs(rows).max(axis=1)
    return bool(np.all(np.abs(peaks - threshold) > margin * max(threshold, 1e-300)))


def same(a: float, b: float, tolerance: float = 1e-9) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tolerance * max(1.0, abs(a), abs(b))


# --- bounds ---------------------------------------------------------------------------------

@SETTINGS
@given(layers())
def test_bounds(weights):
    m = layer_metrics(weights)
    assert 0.0 <= m["sparsity"] <= 1.0
    for key in ("entropy_unscaled", "entropy_scaled"):
        assert math.isnan(m[key]) or -1e-12 <= m[key] <= LOG9 + 1e-12, (key, m[key])
    if len(weights) == 1:
        assert math.isnan(m["orthogonality"])
    else:
        assert -1e-12 <= m["orthogonality"] <= 1.0 + 1e-12, m["orthogonality"]


@SETTINGS
@given(st.integers(2, 9), st.integers(0, 6))
def test_orthogonality_reaches_its_bounds(c_out, zero_rows):
    zero_rows = min(zero_rows, c_out)
    # orthonormal non-zero filterbanks: 1; then zero rows pull it down by z / (c_out (c_out - 1))
    basis = np.linalg.qr(np.random.default_rng(c_out).standard_normal((18, 18)))[0][:c_out]
    basis[:zero_rows] = 0
    expected = 1 - zero_rows / (c_out * (c_out - 1))
    assert orthogonality(basis) == pytest.approx(expected, abs=1e-12)
    # every pair collinear (one direction, any non-zero scale and sign): 0
    direction = np.random.default_rng(0).standard_normal(18)
    scales = np.linspace(-3, 3, c_out + 1)
    collinear = np.outer(scales[scales != 0][:c_out], direction)
    assert orthogonality(collinear) == pytest.approx(0.0, abs=1e-12)
    # all zero: the formula's value, 1 - 1/(c_out - 1)
    assert orthogonality(np.zeros((c_out, 18))) == pytest.approx(1 - 1 / (c_out - 1), abs=1e-15)


# --- scaling --------------------------------------------------------------------------------

@SETTINGS
@given(layers(), st.integers(-20, 20))
def test_a_power_of_two_scale_changes_no_metric(weights, exponent):
    a, b = layer_metrics(weights), layer_metrics(weights * 2.0 ** exponent)
    assert a["sparsity"] == b["sparsity"]
    for key in ("entropy_unscaled", "entropy_scaled", "orthogonality"):
        assert same(a[key], b[key]), (key, a[key], b[key])


@SETTINGS
@given(layers(), st.floats(1e-3, 1e3))
def test_any_positive_scale_changes_no_metric(weights, scale):
    assume(away_from_threshold(weights))
    assume(well_conditioned(weights))
    a, b = layer_metrics(weights), layer_metrics(weights * scale)
    assert a["sparsity"] == b["sparsity"]
    for key in ("entropy_unscaled", "entropy_scaled", "orthogonality"):
        assert same(a[key], b[key]), (key, a[key], b[key])


@SETTINGS
@given(layers(min_c_out=2), st.data())
def test_scaling_one_filterbank_leaves_orthogonality(weights, data):
    channel = data.draw(st.integers(0, len(weights) - 1))
    scale = data.draw(st.floats(1e-3, 1e3) | st.floats(-1e3, -1e-3))
    scaled = weights.copy()
    scaled[channel] *= scale
    assert same(orthogonality(weights.reshape(len(weights), -1)), orthogonality(scaled.reshape(len(weights), -1)))


# --- permutations ---------------------------------------------------------------------------

@SETTINGS
@given(layers(), st.randoms(use_true_random=False))
def test_permuting_filters_changes_neither_sparsity_nor_entropy(weights, random):
    rows = weights.reshape(-1, 9)
    order = list(range(len(rows)))
    random.shuffle(order)
    shuffled = rows[order].reshape(weights.shape)
    a, b = layer_metrics(weights), layer_metrics(shuffled)
    assert a["sparsity"] == b["sparsity"]
    if well_conditioned(weights):
        for key in ("entropy_unscaled", "entropy_scaled"):
            assert same(a[key], b[key]), (key, a[key], b[key])


@SETTINGS
@given(layers(min_c_out=2), st.randoms(use_true_random=False))
def test_permuting_channels_leaves_orthogonality(weights, random):
    outputs, inputs = list(range(weights.shape[0])), list(range(weights.shape[1]))
    random.shuffle(outputs)
    random.shuffle(inputs)
    a = orthogonality(weights.reshape(len(weights), -1))
    assert same(a, orthogonality(weights[outputs].reshape(len(weights), -1)), 1e-12)
    assert same(a, orthogonality(weights[:, inputs].reshape(len(weights), -1)), 1e-12)


# --- moments --------------------------------------------------------------------------------

@SETTINGS
@given(arrays(np.float32, st.tuples(st.integers(2, 60), st.just(9)), elements=ELEMENTS),
       st.lists(st.integers(0, 60), max_size=5))
def test_moments_are_additive_over_any_split(rows, cuts):
    rows = rows.astype(np.float64)
    cuts = sorted({min(c, len(rows)) for c in cuts})
    parts = np.split(rows, cuts)
    whole, merged = Moments.of(rows), Moments.sum(Moments.of(p) for p in parts)
    assert merged.n == whole.n
    scale = max(1.0, float((rows ** 2).sum()))
    np.testing.assert_allclose(merged.total, whole.total, rtol=1e-9, atol=1e-9 * math.sqrt(scale))
    np.testing.assert_allclose(merged.gram, whole.gram, rtol=1e-9, atol=1e-9 * scale)
    a, b = pca(whole), pca(merged)
    np.testing.assert_allclose(b.mean, a.mean, rtol=1e-9, atol=1e-9 * math.sqrt(scale))
    variance_scale = max(float(a.explained_variance.sum()), 1e-300)
    np.testing.assert_allclose(b.explained_variance, a.explained_variance, rtol=1e-9, atol=1e-9 * scale)
    # the covariance (unique even where eigenvectors are not)
    cov_a = a.components.T @ np.diag(a.explained_variance) @ a.components
    cov_b = b.components.T @ np.diag(b.explained_variance) @ b.components
    np.testing.assert_allclose(cov_b, cov_a, rtol=1e-9, atol=1e-9 * scale)
    if variance_scale > 1e-6 * scale:  # ratios are defined well above round-off
        np.testing.assert_allclose(b.ratio, a.ratio, rtol=1e-9, atol=1e-9)
