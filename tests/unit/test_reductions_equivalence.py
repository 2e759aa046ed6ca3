"""The streamed reductions against the plain way: every filter in memory, scikit-learn PCA,
numpy histograms, scipy entropy. Counts agree exactly; bases, variances, KL and quality to
1e-9 relative. The stores are chunked small and the segments smaller than some layers, so
layers are split across chunks, segments and orthogonality blocks. Layers of 256 output
channels or more take the float32 Gram (orthogonality_module.gram_dtype): their orthogonality is checked
to 1e-7 absolute, on a store of its own."""

import numpy as np
import pandas as pd
import pytest
from conftest import write_filter_store
from reference_reductions import all_scaled_filters, distributions, fit_pca, scaled_filters, split_layer
from reference_reductions import orthogonality as plain_orthogonality
from scipy.stats import entropy
from sklearn.decomposition import PCA

from filterlens.analyse.bases import basis_sets, set_moments
from filterlens.analyse.kl import kl_tables
from filterlens.analyse.quality import quality_by_depth
from filterlens.extract.store import open_filter_store
from filterlens.method import orthogonality as orthogonality_module
from filterlens.method.distributions import distribution, histogram_edges
from filterlens.method.pca import pca
from filterlens.reduce.passes import coefficient_histograms, coefficient_range, summarize

BINS = 70
CHUNK_ROWS = 500
MAX_ROWS = 1500
# (c_in, c_out, groups) per layer; 64 x 128 = 8192 rows is split into several segments
SHAPES = [(3, 16, 1), (16, 16, 1), (16, 32, 2), (32, 1, 1), (32, 64, 1), (64, 128, 1), (16, 16, 1)]
SHEET = pd.DataFrame({
    "model_id": ["r1", "r2", "r3", "n1", "n2", "r4", "n3"],
    "dataset": ["cifar10"] * 5 + ["cifar100"] * 2,
    "robust": [True, True, True, False, False, True, False],
    "counterpart": ["n1", "n1", "n2", "", "", "n3", ""],
}).set_index("model_id", drop=False)
PAIRS = pd.DataFrame({"robust": ["r1", "r2", "r3", "r4"], "normal": ["n1", "n1", "n2", "n3"],
                      "dataset": ["cifar10"] * 3 + ["cifar100"]})


def _layer_weights(rng, c_in, c_out, groups, robust, index):
    if index == 6:  # an all-zero layer: every filter sparse
        return np.zeros((c_out * c_in // groups, 9), np.float32)
    # Robust-like models: smoother, more structured filters; normal: noisier and sparser.
    base = rng.standard_normal((c_out * c_in // groups, 9))
    if robust:
        base = base @ np.diag(np.linspace(2.0, 0.3, 9)) + 0.3
    rows = base.astype(np.float32)
    sparse = rng.random(len(rows)) < (0.05 if robust else 0.3)
    rows[sparse] *= 1e-4
    return rows


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """Per model: its store path and its layers' rows in memory."""
    root = tmp_path_factory.mktemp("zoo")
    rng = np.random.default_rng(42)
    result = {}
    for model in SHEET.model_id:
        robust = bool(SHEET.loc[model, "robust"])
        rows = [_layer_weights(rng, *shape, robust, index) for index, shape in enumerate(SHAPES)]
        result[model] = (write_filter_store(root / f"{model}.zarr", SHAPES, rows, CHUNK_ROWS), rows)
    return result


@pytest.fixture(scope="module")
def streamed(zoo):
    summaries = {}
    for model, (path, _) in zoo.items():
        summaries[model] = summarize(open_filter_store(path), threads=2, max_rows=MAX_ROWS)
    moments = {m: s[1].scaled for m, s in summaries.items()}
    bases = {name: pca(set_moments(models, moments)) for name, models in basis_sets(PAIRS, SHEET.model_id).items()}
    ranges = [coefficient_range(open_filter_store(zoo[m][0]), bases["full"], 2, MAX_ROWS) for m in zoo]
    low, high = min(r[0].min() for r in ranges), max(r[1].max() for r in ranges)
    histograms = {m: coefficient_histograms(open_filter_store(zoo[m][0]), bases["full"], low, high, BINS, 2, MAX_ROWS)
                  for m in zoo}
    return summaries, bases, (low, high), histograms


# --- the plain way: reference_reductions -------------------------------------------------------

@pytest.fixture(scope="module")
def plain(zoo):
    full = basis_sets(PAIRS, SHEET.model_id)["full"]
    pca_full = fit_pca(np.concatenate([scaled_filters(zoo[m][1]) for m in full]))
    def transform(scaled):
        return pca_full.transform(scaled) if len(scaled) else np.zeros((0, 9))

    coefficients = {m: [transform(split_layer(r)[1]) for r in zoo[m][1]] for m in zoo}
    # the range: every scaled filter, sparse ones included, of every model (not only the paired)
    everything = np.concatenate([transform(all_scaled_filters(zoo[m][1])) for m in zoo])
    return pca_full, coefficients, (everything.min(), everything.max())


def test_layer_counts_are_exact(zoo, streamed):
    for model, (_, rows) in zoo.items():
        table = streamed[0][model][0]
        assert table.n_filters.tolist() == [len(r) for r in rows]
        assert table.n_sparse.tolist() == [int(split_layer(r)[0].sum()) for r in rows]


def test_full_basis_and_variances_agree_with_scikit_learn(streamed, plain):
    basis, reference = streamed[1]["full"], plain[0]
    np.testing.assert_allclose(basis.explained_variance, reference.explained_variance_, rtol=1e-9)
    np.testing.assert_allclose(basis.ratio, reference.explained_variance_ratio_, rtol=1e-9)
    np.testing.assert_allclose(basis.components, reference.components_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(basis.mean, reference.mean_, rtol=1e-9)


@pytest.mark.parametrize("name, members", [("robust", ["r1", "r2", "r3", "r4"]), ("normal", ["n1", "n2", "n3"]),
                                           ("model:r3", ["r3"])])
def test_other_bases_agree_with_scikit_learn(zoo, streamed, name, members):
    reference = fit_pca(np.concatenate([scaled_filters(zoo[m][1]) for m in members]))
    np.testing.assert_allclose(streamed[1][name].ratio, reference.explained_variance_ratio_, rtol=1e-9)
    np.testing.assert_allclose(streamed[1][name].components, reference.components_, rtol=1e-9, atol=1e-12)


def test_coefficient_range_and_histogram_counts_are_exact(zoo, streamed, plain):
    low, high = plain[2]
    assert streamed[2] == pytest.approx((low, high), rel=1e-12)
    for model in zoo:
        for layer, coefficients in enumerate(plain[1][model]):
            for c in range(9):
                expected = np.histogram(coefficients[:, c], BINS, (low, high))[0]
                np.testing.assert_array_equal(streamed[3][model][layer, c], expected, err_msg=f"{model} {layer} {c}")


def _plain_kl(robust_models, normal_models, plain, weights, layer_filter=slice(None)):
    low, high = plain[2]

    def dist(models):
        return distributions(np.concatenate([co for m in models for co in plain[1][m][layer_filter]]), low, high, BINS)

    p, q = dist(robust_models), dist(normal_models)
    return sum(weights[c] * (entropy(p[c], q[c]) + entropy(q[c], p[c])) for c in range(9))


def test_the_range_includes_sparse_filters_and_unpaired_models(zoo, streamed, plain):
    # the plain range over the paired models' non-sparse filters only is strictly narrower here
    full = basis_sets(PAIRS, SHEET.model_id)["full"]
    narrow = np.concatenate([c for m in full for c in plain[1][m]])
    low, high = plain[2]
    assert low <= narrow.min() and high >= narrow.max() and (low, high) != (narrow.min(), narrow.max())


def test_distributions_agree_with_numpys_density_histograms(zoo, streamed, plain):
    low, high = plain[2]
    edges = histogram_edges(low, high, BINS)
    for model in ("r1", "n3"):
        counts = streamed[3][model].sum(axis=0)
        expected = distributions(np.concatenate(plain[1][model]), low, high, BINS)
        np.testing.assert_allclose(distribution(counts, edges), expected, rtol=1e-12, err_msg=model)


def test_kl_unique_paired_and_by_depth_agree_with_the_plain_way(zoo, streamed, plain):
    layers = {m: streamed[0][m][0] for m in zoo}
    edges = histogram_edges(*streamed[2], BINS)
    by_dataset, by_depth, _ = kl_tables(PAIRS, streamed[3], layers, streamed[1]["full"].ratio, edges)
    weights = plain[0].explained_variance_ratio_
    kl = by_dataset.set_index(["dataset", "pooling"]).kl
    assert kl["cifar10", "unique"] == pytest.approx(_plain_kl(["r1", "r2", "r3"], ["n1", "n2"], plain, weights), rel=1e-9)
    assert kl["cifar10", "paired"] == pytest.approx(
        _plain_kl(["r1", "r2", "r3"], ["n1", "n1", "n2"], plain, weights), rel=1e-9)
    assert kl["cifar10", "unique"] != pytest.approx(kl["cifar10", "paired"], rel=1e-6)  # n1 counts twice
    depth = by_depth.set_index(["dataset", "depth_group"]).kl
    # conv_depth 5 of max 6 -> (0.8, 0.9]: layer index 5 only
    assert depth["cifar100", "0.8-0.9"] == pytest.approx(_plain_kl(["r4"], ["n3"], plain, weights, slice(5, 6)),
                                                         rel=1e-9)
    assert depth["cifar10", "first"] == pytest.approx(
        _plain_kl(["r1", "r2", "r3"], ["n1", "n1", "n2"], plain, weights, slice(0, 1)), rel=1e-9)


def test_layer_quality_agrees_with_the_plain_way(zoo, streamed):
    for model, (_, rows) in zoo.items():
        table = streamed[0][model][0]
        for layer, (shape, weights) in enumerate(zip(SHAPES, rows)):
            sparse, scaled = split_layer(weights) if np.abs(weights).max() > 0 else (None, np.zeros((0, 9)))
            if len(scaled) >= 9:
                unscaled = weights[~sparse].astype(np.float64)
                expected = entropy(PCA().fit(unscaled).explained_variance_ratio_, base=10)
                assert table.entropy_unscaled[layer] == pytest.approx(expected, rel=1e-9)
                assert table.entropy_scaled[layer] == pytest.approx(
                    entropy(PCA().fit(scaled).explained_variance_ratio_, base=10), rel=1e-9)
            else:
                assert np.isnan(table.entropy_unscaled[layer])
            if shape[1] > 1:
                expected = plain_orthogonality(weights.reshape(shape[1], -1))
                assert table.orthogonality[layer] == pytest.approx(expected, rel=1e-9)
            else:
                assert np.isnan(table.orthogonality[layer])


def test_quality_by_depth_weights_layers_as_the_method_says(zoo, streamed):
    layers = pd.concat([streamed[0][m][0] for m in zoo])
    table = quality_by_depth(layers, SHEET).set_index(["model_id", "depth_group"])
    r1 = streamed[0]["r1"][0]
    row = table.loc[("r1", "all")]
    assert row.sparsity == r1.n_sparse.sum() / r1.n_filters.sum()
    ok = r1.entropy_unscaled.notna()
    assert row.entropy_unscaled == pytest.approx(np.average(r1.entropy_unscaled[ok], weights=r1.n_nonsparse[ok]))
    ok = r1.orthogonality.notna()
    assert row.orthogonality == pytest.approx(np.average(r1.orthogonality[ok], weights=r1.c_out[ok]))


@pytest.fixture(params=["one", "many"])
def gram_blocks(request, monkeypatch):
    """The Gram in one channel block per layer (the default at these sizes), or in many."""
    if request.param == "many":
        monkeypatch.setattr(orthogonality_module, "GRAM_BLOCK_WEIGHTS", 2048)


def _assert_same_summaries(store, reference_threads, reference_max_rows, runs):
    reference_table, reference = summarize(store, threads=reference_threads, max_rows=reference_max_rows)
    for threads, max_rows in runs:
        table, moments = summarize(store, threads=threads, max_rows=max_rows)
        for a, b in zip(moments.to_arrays().values(), reference.to_arrays().values()):
            assert np.array_equal(a, b)
        pd.testing.assert_frame_equal(table, reference_table, check_exact=True)
    return reference_table


def test_summaries_are_bitwise_identical_across_segment_sizes_and_threads(zoo, gram_blocks):
    """Orthogonality included: a layer split across segments is read in the same channel
    blocks as one inside a segment."""
    _assert_same_summaries(open_filter_store(zoo["r1"][0]), 1, MAX_ROWS, ((2, MAX_ROWS), (2, 10**6), (1, 4096)))


# (c_in, c_out, groups): float32 Gram layers, split across segments: random, with zero
# filterbanks, orthonormal filterbanks (every |cos| is rounding noise: float32's worst case)
WIDE_SHAPES = [(8, 256, 1), (4, 300, 1), (32, 256, 1), (16, 64, 1)]


@pytest.fixture(scope="module")
def wide_store(tmp_path_factory):
    rng = np.random.default_rng(7)
    random = rng.standard_normal((256 * 8, 9)).astype(np.float32)
    with_zeros = rng.standard_normal((300, 4, 9)).astype(np.float32)
    with_zeros[::10] = 0
    orthonormal = np.linalg.qr(rng.standard_normal((32 * 9, 256)))[0].T.astype(np.float32)
    smooth = (rng.standard_normal((64 * 16, 9)) + 0.5).astype(np.float32)
    rows = [random, with_zeros.reshape(-1, 9), orthonormal.reshape(-1, 9), smooth]
    return write_filter_store(tmp_path_factory.mktemp("wide") / "wide.zarr", WIDE_SHAPES, rows, CHUNK_ROWS), rows


def test_float32_gram_orthogonality_is_within_1e_7_and_bitwise_reproducible(wide_store, gram_blocks):
    path, rows = wide_store
    table = _assert_same_summaries(open_filter_store(path), 2, 10**6, ((1, MAX_ROWS), (2, 4096)))
    for layer, ((_, c_out, _), weights) in enumerate(zip(WIDE_SHAPES, rows)):
        expected = plain_orthogonality(weights.reshape(c_out, -1))
        tolerance = 1e-7 if orthogonality_module.gram_dtype(c_out) == np.float32 else 1e-9 * expected
        assert abs(table.orthogonality[layer] - expected) <= tolerance, (layer, table.orthogonality[layer], expected)
