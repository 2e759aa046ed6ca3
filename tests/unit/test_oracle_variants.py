"""Self-checks of the oracle's variants (tests/authors_oracle.py: ``authors_pipeline``'s keyword
options and ``headline_numbers``) on the zoo of tests/unit/test_authors_oracle.py: each option
changes what docs/method.md §2-§5 says it changes and nothing else, and the headline numbers
under the defaults are the pipeline's own results."""

from __future__ import annotations

import authors_oracle as oracle
import numpy as np
import pandas as pd
import pytest
from test_authors_oracle import EXAMPLE, PAIRS, SHEET, extract_zoo
from test_authors_oracle import models, onnx_models  # noqa: F401 (module-scope fixtures: the zoo, its exports)

from filterlens.extract.weights import plan_extraction

PAIRINGS = PAIRS.rename(columns={"robust": "Robust", "normal": "Normal", "dataset": "Dataset"})
DATASETS = list(PAIRINGS.Dataset.unique())
METRICS = {"sparsity": "sparsity", "entropy": "entropy_unscaled", "orthogonality": "orthogonality"}


def _run(onnx_models, **options) -> dict:
    return oracle.authors_pipeline(onnx_models, SHEET, PAIRINGS, **options)


@pytest.fixture(scope="module")
def default(onnx_models):
    return _run(onnx_models)


@pytest.fixture(scope="module")
def conv_count(onnx_models):
    return _run(onnx_models, depth_definition="conv_count")


@pytest.fixture(scope="module")
def u_based(onnx_models):
    return _run(onnx_models, pca_sign="u_based")


@pytest.fixture(scope="module")
def probability(onnx_models):
    return _run(onnx_models, empty_bins="probability")


# --- depth_definition conv_count ---------------------------------------------------------------

def test_conv_count_depths_equal_the_stores_column(models, conv_count, tmp_path_factory):
    stores = extract_zoo(models, tmp_path_factory.mktemp("stores"))
    layers = conv_count["layers"]
    differ = 0
    for model_id, store in stores.items():
        theirs = layers[layers.model == model_id].set_index("layer")
        ours = store.layers.set_index("name")
        assert sorted(ours.index) == sorted(theirs.index), model_id
        assert ours.conv_depth_conv_count.to_dict() == theirs.conv_depth.to_dict(), f"{model_id}: conv_depth"
        largest = plan_extraction(models[model_id], EXAMPLE, fold_batchnorm=True).max_conv_depths["conv_count"]
        np.testing.assert_allclose(theirs.conv_depth_norm, ours.conv_depth_conv_count.loc[theirs.index] / largest,
                                   rtol=1e-15, err_msg=f"{model_id}: conv_depth_norm over convs of every kernel")
        differ += int((theirs.conv_depth_conv_count != theirs.conv_depth_graph_level).sum())
    assert differ > 0, "the zoo has convs whose two depths differ"


def test_conv_count_depth_groups_follow_the_chosen_depth(default, conv_count):
    layers = conv_count["layers"]
    assert list(layers.depth_group) == list(oracle.depth_groups(layers))
    assert (layers.depth_group != default["layers"].depth_group).any(), "the depth groups move"
    assert (conv_count["kl_by_depth"].n_robust_filters != default["kl_by_depth"].n_robust_filters).any()
    pd.testing.assert_frame_equal(conv_count["kl"], default["kl"])  # depth moves no filter


# --- pca_sign u_based ----------------------------------------------------------------------------

def test_u_based_signs_flip_components_only(default, u_based):
    ours, theirs = u_based["bases"]["full"], default["bases"]["full"]
    assert (u_based["component_signs"] == -1).any(), "the zoo has a component the two conventions flip"
    np.testing.assert_array_equal(np.abs(ours.components_), np.abs(theirs.components_))
    np.testing.assert_array_equal(ours.explained_variance_ratio_, theirs.explained_variance_ratio_)
    np.testing.assert_array_equal(ours.components_, theirs.components_ * u_based["component_signs"][:, None])
    np.testing.assert_array_equal(u_based["coefficients"], default["coefficients"] * u_based["component_signs"])
    low, high = u_based["coefficients"].min(), u_based["coefficients"].max()
    assert u_based["range"] == (low, high), "the range is over the flipped coefficients"
    assert u_based["range"] != default["range"]


def test_u_based_largest_coefficient_of_each_component_over_the_fit_set_is_positive(default, u_based):
    fitted = u_based["coefficients"][u_based["set_ids"]["full"]]
    largest = fitted[np.argmax(np.abs(fitted), axis=0), np.arange(9)]
    assert (largest > 0).all(), largest
    default_fitted = default["coefficients"][default["set_ids"]["full"]]
    assert (default_fitted[np.argmax(np.abs(default_fitted), axis=0), np.arange(9)] < 0).any(), \
        "the default (v-based) signs leave some largest coefficient negative on this zoo"


# --- histogram_range paired_nonsparse ------------------------------------------------------------

@pytest.mark.parametrize("pca_sign", oracle.PCA_SIGNS)
def test_paired_nonsparse_range_lies_within_the_all_filters_range(onnx_models, default, u_based, pca_sign):
    everything = default if pca_sign == "v_based" else u_based
    paired = _run(onnx_models, histogram_range="paired_nonsparse", pca_sign=pca_sign)
    fitted = everything["coefficients"][everything["set_ids"]["full"]]
    assert paired["range"] == (fitted.min(), fitted.max())
    (low, high), (all_low, all_high) = paired["range"], everything["range"]
    assert all_low < low < high < all_high, "the zoo's range is set by sparse filters"
    assert not np.allclose(paired["kl"].kl, everything["kl"].kl)


# --- empty_bins probability ----------------------------------------------------------------------

def test_probability_eps_distributions_sum_to_one_and_differ_where_a_bin_is_empty(default):
    layers = default["layers"]
    pool = default["coefficients"][np.hstack(layers[layers.model == "r3"].nonsparse_ids)]
    empty = 0
    for component in range(9):
        counts, _ = np.histogram(pool[:, component], bins=oracle.BINS, range=default["range"])
        probability = oracle.discrete_distribution(pool[:, component], default["range"], empty_bins="probability")
        density = oracle.discrete_distribution(pool[:, component], default["range"])
        assert probability.sum() == pytest.approx(1, abs=1e-12)
        assert np.all(probability > 0)
        if (counts == 0).any():
            empty += 1
            assert not np.allclose(probability, density, rtol=1e-6, atol=0), component
            eps = np.finfo(np.float32).eps
            np.testing.assert_allclose(probability[counts == 0], eps / (1 + eps * (counts == 0).sum()), rtol=1e-12)
        else:
            np.testing.assert_allclose(probability, density, rtol=1e-12)
    assert empty > 0, "a component of the pool has an empty bin"


def test_probability_eps_changes_the_kl_and_nothing_else(default, probability):
    assert not np.allclose(probability["kl"].kl, default["kl"].kl, rtol=1e-6)
    assert probability["range"] == default["range"]
    pd.testing.assert_frame_equal(probability["quality_by_depth"], default["quality_by_depth"])


def test_unknown_options_are_refused_by_name(onnx_models):
    with pytest.raises(ValueError, match="pca_sign='w_based'"):
        _run(onnx_models, pca_sign="w_based")


# --- headline numbers ----------------------------------------------------------------------------

def _ids(datasets, groups) -> set[str]:
    ids = {"first_component_share", "sparse_share/robust", "sparse_share/normal"}
    for dataset in datasets:
        ids |= {f"kl/{dataset}/unique", f"kl/{dataset}/paired", f"kl_first/{dataset}"}
        ids |= {f"{metric}_difference/{dataset}/{group}" for metric in METRICS for group in groups}
    return ids


def test_headline_numbers_under_the_defaults_are_the_pipelines_results(default):
    numbers = oracle.headline_numbers(default, PAIRINGS)
    assert set(numbers) == _ids(DATASETS, oracle.HEADLINE_GROUPS)
    assert all(type(value) is float for value in numbers.values())
    assert numbers["first_component_share"] == default["bases"]["normal"].explained_variance_ratio_[0]
    shares = default["sparse_shares"].set_index("training").pooled_share
    assert numbers["sparse_share/robust"] == shares["robust"] and numbers["sparse_share/normal"] == shares["normal"]
    kl, by_depth = default["kl"].set_index(["dataset", "pooling"]).kl, default["kl_by_depth"]
    for dataset in DATASETS:
        for pooling in ("unique", "paired"):
            assert numbers[f"kl/{dataset}/{pooling}"] == kl[(dataset, pooling)]
        first = by_depth[(by_depth.dataset == dataset) & (by_depth.depth_group == "first")].kl.item()
        assert numbers[f"kl_first/{dataset}"] == first
    # Fig. 7's boxes (one row per pairing position and side): robust mean minus normal mean.
    boxes = default["boxes"]
    for (dataset, group), part in boxes.groupby(["dataset", "depth_group"]):
        sides = part.pivot(index="pair", columns="training")
        for metric, column in METRICS.items():
            kept = sides[column].dropna()
            expected = kept.robust.mean() - kept.normal.mean() if len(kept) else np.nan
            np.testing.assert_allclose(numbers[f"{metric}_difference/{dataset}/{group}"], expected, rtol=1e-12,
                                       err_msg=f"{metric} {dataset} {group}")


def test_headline_entropy_options_pick_the_column_and_the_weights(default):
    numbers = oracle.headline_numbers(default, PAIRINGS)
    scaled = oracle.headline_numbers(default, PAIRINGS, entropy="scaled")
    every = oracle.headline_numbers(default, PAIRINGS, entropy_weights="all")
    layers = default["layers"]
    for name in numbers:
        if not name.startswith("entropy_difference/"):
            assert scaled[name] == numbers[name] and every[name] == numbers[name], name
            continue
        assert scaled[name] != numbers[name], name
        _, dataset, group = name.split("/")
        members = layers[(layers.dataset == dataset) & (layers.depth_group == group if group != "all" else True)]
        if members.groupby("model").size().max() == 1:  # one layer per model: its weight cancels
            assert every[name] == pytest.approx(numbers[name], rel=1e-12), name
        else:
            assert every[name] != pytest.approx(numbers[name], rel=1e-9), name


def test_quality_without_the_pairings_counts_each_model_once_and_drops_nans_per_side():
    values = pd.Series({"r1": 1.0, "r2": 3.0, "r4": np.nan, "n1": 10.0, "n2": 20.0})
    pairs = pd.DataFrame({"Robust": ["r1", "r2", "r4"], "Normal": ["n1", "n1", "n2"]})
    # Over the pairings: (1, 10), (3, 10); (nan, 20) left out.
    assert oracle._side_difference(values, pairs, True) == 2.0 - 10.0
    # Each model once: robust r1, r2 (r4 is NaN); normal n1, n2.
    assert oracle._side_difference(values, pairs, False) == 2.0 - 15.0
    assert np.isnan(oracle._side_difference(values.where(values.index.str.startswith("n")), pairs, False))


def test_headline_numbers_leave_out_groups_no_model_of_the_dataset_has(default):
    quality = default["quality_by_depth"]
    cifar100 = quality[quality.model.isin(["r3", "n2"])]
    kept = cifar100[cifar100.depth_group != "0.5-0.6"].depth_group.unique()
    result = {**default, "layers": default["layers"][~((default["layers"].model.isin(["r3", "n2"]))
                                                       & (default["layers"].depth_group == "0.5-0.6"))]}
    numbers = oracle.headline_numbers(result, PAIRINGS)
    assert set(numbers) == _ids(["cifar10"], oracle.HEADLINE_GROUPS) | _ids(["cifar100"], kept)
