"""The workflow's library path against an independent implementation of the authors' pipeline
(tests/authors_oracle.py: ONNX export, graph levels, scikit-learn PCA, density histograms,
scipy KL, pd.cut deciles, pairings with duplicates) on a synthetic zoo.

The zoo has what matters: a normal model paired with two robust ones, a model in the sheet but
in no pairing, sparse and all-zero filters and an all-zero layer, BatchNorms that are a conv's
only consumer (folded) and others that are not, empty histogram bins, a 1x1 shortcut on a
branch shorter than its block's first conv (so graph levels and conv counts differ), and 3x3
layers in every depth decile, and filters that are sparse under one sparse reference and not the
other. Every KL, basis, share and box value must equal the oracle's to 1e-9 relative
(docs/method.md), under each sparse reference (analysis.sparse_reference): the oracle takes the
layer's max |w| or np.linalg.norm(W, np.inf) as the authors' notebook does, the workflow reads
the reference from the store's layer table.
"""

from __future__ import annotations

import authors_oracle as oracle
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from filterlens.analyse.bases import basis_sets, set_moments
from filterlens.analyse.kl import kl_tables
from filterlens.analyse.quality import quality_by_depth, sparse_shares
from filterlens.extract.store import open_filter_store
from filterlens.extract.weights import iter_layer_rows, plan_extraction, write_filter_store
from filterlens.method.depth_groups import DEPTH_GROUPS, depth_group
from filterlens.method.distributions import histogram_edges
from filterlens.method.filters import SPARSE_REFERENCES
from filterlens.method.pca import pca
from filterlens.models.compat import import_robustbench
from filterlens.reduce.passes import coefficient_histograms, coefficient_range, summarize
from filterlens.report.figure_data import quality_over_pairings

import_robustbench()
from robustbench.model_zoo.architectures.wide_resnet import WideResNet  # noqa: E402

RTOL = 1e-9
CHUNK_ROWS = 1000
MAX_ROWS = 4096
EXAMPLE = torch.zeros(1, 3, 32, 32)

# model -> (dataset, robust, architecture, seed); u1 is in the sheet but in no pairing.
ZOO = {
    "r1": ("cifar10", True, "wrn", 1), "r2": ("cifar10", True, "wrn", 2), "n1": ("cifar10", False, "wrn", 3),
    "u1": ("cifar10", False, "wrn", 4),
    "r3": ("cifar100", True, "shortcut", 5), "n2": ("cifar100", False, "shortcut", 6),
}
PAIRS = pd.DataFrame({"robust": ["r1", "r2", "r3"], "normal": ["n1", "n1", "n2"],
                      "dataset": ["cifar10", "cifar10", "cifar100"]})
SHEET = pd.DataFrame([{"model_id": m, "dataset": d, "robust": r} for m, (d, r, _, _) in ZOO.items()]
                     ).set_index("model_id", drop=False)


class ShortcutBlock(nn.Module):
    """conv1 sees relu(bn(x)), the 1x1 shortcut sees x itself: the shortcut's branch is shorter."""

    def __init__(self, width: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(width)
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)  # conv1's only consumer: folded by the export
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.shortcut = nn.Conv2d(width, width, 1, bias=False)

    def forward(self, x):
        out = self.conv2(torch.relu(self.bn2(self.conv1(torch.relu(self.bn1(x))))))
        return out + self.shortcut(x)


class ShortcutNet(nn.Module):
    def __init__(self, width: int = 12, blocks: int = 7, num_classes: int = 100):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.blocks = nn.Sequential(*[ShortcutBlock(width) for _ in range(blocks)])
        self.bn = nn.BatchNorm2d(width)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x):
        out = torch.relu(self.bn(self.blocks(self.conv1(x))))
        return self.fc(out.mean(dim=(2, 3)))


def _model(architecture: str, robust: bool, seed: int, all_zero_layer: bool, extreme_sparse: bool) -> nn.Module:
    torch.manual_seed(seed)
    model = WideResNet(depth=16, widen_factor=1, num_classes=10) if architecture == "wrn" else ShortcutNet()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5, generator=generator)
                module.running_var.uniform_(0.3, 3.0, generator=generator)
                module.weight.uniform_(0.2, 2.0, generator=generator)
                module.bias.uniform_(-0.5, 0.5, generator=generator)
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
        for index, conv in enumerate(convs):
            w = conv.weight.view(-1, 9)
            if robust:  # smoother, centre-weighted filters
                w.add_(0.6 * w.mean(dim=1, keepdim=True)).mul_(torch.tensor([.5, .8, .5, .8, 1.2, .8, .5, .8, .5]))
            draw = torch.rand(len(w), generator=generator)
            w[draw < (0.04 if robust else 0.12)] = 0.0  # all-zero filters
            w[(draw >= 0.2) & (draw < (0.25 if robust else 0.4))] *= 1e-3  # sparse, not zero
            w[(draw >= 0.5) & (draw < 0.6)] *= 3e-2  # many sparse under the row-sum reference only
            if all_zero_layer and index == 5:  # its decile (0.4-0.5] holds another layer
                w.zero_()
            if extreme_sparse and index == 1:  # sparse filters whose scaled coefficients set the range
                checkerboard = torch.tensor([1., -1, 1, -1, 1, -1, 1, -1, 1])
                w[:4] = 1e-5 * torch.stack([checkerboard, -checkerboard, torch.ones(9), -torch.ones(9)])
    return model.eval()


def build_zoo() -> dict[str, nn.Module]:
    return {m: _model(arch, robust, seed, all_zero_layer=(m == "n1"), extreme_sparse=(m == "u1"))
            for m, (_, robust, arch, seed) in ZOO.items()}


def export_zoo(models: dict[str, nn.Module]) -> dict:
    return {m: oracle.export_onnx(model, EXAMPLE) for m, model in models.items()}


def run_authors(onnx_models: dict, sparse_reference: str) -> dict:
    pairings = PAIRS.rename(columns={"robust": "Robust", "normal": "Normal", "dataset": "Dataset"})
    return oracle.authors_pipeline(onnx_models, SHEET, pairings, sparse_reference)


def extract_zoo(models: dict[str, nn.Module], root) -> dict:
    """Rule extract_filters: a filter store per model."""
    stores = {}
    for model_id, model in models.items():
        plan = plan_extraction(model, EXAMPLE, fold_batchnorm=True)
        path = root / f"{model_id}.zarr"
        write_filter_store(path, plan, iter_layer_rows(model, plan), CHUNK_ROWS, model_id=model_id,
                           dataset=ZOO[model_id][0])
        stores[model_id] = open_filter_store(path)
    return stores


def run_workflow(stores: dict, sparse_reference: str) -> dict:
    """The library path as the rules chain it after extract_filters: summarize_model, pca_bases,
    coefficient_range + global_coefficient_range, coefficient_histograms, kl_divergence,
    layer_quality, fig7_layer_quality."""
    tables, moments = {}, {}
    for model_id, store in stores.items():
        tables[model_id], layer_moments = summarize(store, threads=1, max_rows=MAX_ROWS,
                                                    sparse_reference=sparse_reference)
        moments[model_id] = layer_moments.scaled
    bases = {name: pca(set_moments(members, moments)) for name, members in basis_sets(PAIRS, SHEET.model_id).items()}
    ranges = [coefficient_range(stores[m], bases["full"], 1, MAX_ROWS) for m in SHEET.model_id]
    low, high = min(r[0].min() for r in ranges), max(r[1].max() for r in ranges)
    paired = list(dict.fromkeys([*PAIRS.robust, *PAIRS.normal]))
    histograms = {m: coefficient_histograms(stores[m], bases["full"], low, high, oracle.BINS, 1, MAX_ROWS,
                                            sparse_reference) for m in paired}
    by_dataset, by_depth, components = kl_tables(PAIRS, histograms, {m: tables[m] for m in paired},
                                                 bases["full"].ratio, histogram_edges(low, high, oracle.BINS))
    layers = pd.concat(tables.values(), ignore_index=True)
    result = {"stores": stores, "tables": tables, "bases": bases, "range": (low, high), "kl": by_dataset,
            "kl_by_depth": by_depth, "components": components, "layers": layers,
            "quality_by_depth": quality_by_depth(layers, SHEET), "sparse_shares": sparse_shares(layers, SHEET)}
    result["boxes"] = quality_over_pairings(result["quality_by_depth"], PAIRS)
    return result


@pytest.fixture(scope="module")
def models():
    return build_zoo()


@pytest.fixture(scope="module")
def onnx_models(models):
    return export_zoo(models)


@pytest.fixture(scope="module")
def stores(models, tmp_path_factory):
    return extract_zoo(models, tmp_path_factory.mktemp("stores"))


@pytest.fixture(scope="module", params=SPARSE_REFERENCES)
def sparse_reference(request):
    return request.param


@pytest.fixture(scope="module")
def authors(onnx_models, sparse_reference):
    return run_authors(onnx_models, sparse_reference)


@pytest.fixture(scope="module")
def workflow(stores, sparse_reference):
    return run_workflow(stores, sparse_reference)


def _assert_close(actual, expected, what: str) -> None:
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert np.array_equal(np.isnan(actual), np.isnan(expected)), f"{what}: NaNs differ\n{actual}\n{expected}"
    ok = ~np.isnan(expected)
    np.testing.assert_allclose(actual[ok], expected[ok], rtol=RTOL, atol=1e-13, err_msg=what)


# --- filters and depth ---------------------------------------------------------------------------

def test_layers_filters_and_depths_equal_the_onnx_exports(workflow, authors):
    database = authors["layers"]
    for model_id, store in workflow["stores"].items():
        theirs = database[database.model == model_id].set_index("layer")
        ours = store.layers.set_index("name")
        assert sorted(ours.index) == sorted(theirs.index), model_id
        assert ours.conv_depth.to_dict() == theirs.conv_depth.to_dict(), f"{model_id}: conv_depth"
        _assert_close(ours.conv_depth_norm.loc[theirs.index], theirs.conv_depth_norm, f"{model_id}: conv_depth_norm")
        for name, layer in ours.iterrows():
            rows = np.asarray(store.filters[layer.row_start:layer.row_stop], dtype=np.float64)
            assert np.array_equal(rows, authors["filters"][theirs.loc[name, "filter_ids"]]), f"{model_id} {name}"


def test_the_zoo_exercises_what_matters(workflow, authors):
    layers = authors["layers"]
    shortcut = layers[layers.model == "r3"]
    assert set(shortcut.depth_group) == {"first", *DEPTH_GROUPS[1:]}, "3x3 layers in every depth decile"
    assert (layers.n_sparse > 0).mean() > 0.8, "sparse filters in most layers"
    assert (layers.n_sparse == layers.n_filters).any(), "an all-zero layer"
    counts = coefficient_histograms(workflow["stores"]["r3"], workflow["bases"]["full"], *workflow["range"],
                                    oracle.BINS, 1, MAX_ROWS).sum(axis=0)
    assert (counts == 0).any(), "empty bins"
    assert shortcut.conv_depth.max() == 21
    nonsparse = authors["coefficients"][np.hstack(layers.nonsparse_ids)]
    low, high = authors["range"]
    assert nonsparse.min() > low and nonsparse.max() < high, "the range is set by sparse filters"


def test_the_row_sum_reference_makes_more_filters_sparse_in_most_layers(stores):
    by_peak = pd.concat([summarize(s, 1, MAX_ROWS)[0] for s in stores.values()], ignore_index=True)
    by_row_sum = pd.concat([summarize(s, 1, MAX_ROWS, "max_row_sum")[0] for s in stores.values()], ignore_index=True)
    assert (by_row_sum.n_sparse >= by_peak.n_sparse).all()
    assert (by_row_sum.n_sparse > by_peak.n_sparse).mean() > 0.5, "the two references differ in most layers"


# --- bases, range, divergence ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["full", "robust", "normal", "model:r1", "model:n1", "model:r3", "model:n2"])
def test_bases_equal_scikit_learn_pca(workflow, authors, name):
    ours, theirs = workflow["bases"][name], authors["bases"][name]
    _assert_close(ours.mean, theirs.mean_, f"{name}: mean")
    _assert_close(ours.components, theirs.components_, f"{name}: components (scikit-learn's sign convention)")
    _assert_close(ours.explained_variance, theirs.explained_variance_, f"{name}: explained variance")
    _assert_close(ours.ratio, theirs.explained_variance_ratio_, f"{name}: ratio")


def test_histogram_range_is_that_of_every_scaled_filter_of_every_model(workflow, authors):
    _assert_close(workflow["range"], authors["range"], "coefficient range")


@pytest.mark.parametrize("pooling", ["unique", "paired"])
def test_kl_by_dataset(workflow, authors, pooling):
    ours = workflow["kl"][workflow["kl"].pooling == pooling].set_index("dataset")
    theirs = authors["kl"][authors["kl"].pooling == pooling].set_index("dataset")
    assert (ours.n_robust_filters == theirs.n_robust_filters.loc[ours.index]).all()
    assert (ours.n_normal_filters == theirs.n_normal_filters.loc[ours.index]).all()
    _assert_close(ours.kl, theirs.kl.loc[ours.index], f"KL {pooling}")
    components = workflow["components"]
    for dataset in ours.index:
        mine = components[(components.dataset == dataset) & (components.pooling == pooling)
                          & (components.depth_group == "all")].sort_values("component").kl
        _assert_close(mine, theirs.loc[dataset, "components"], f"KL {pooling} {dataset} per component")


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
def test_kl_by_depth(workflow, authors, dataset):
    ours = workflow["kl_by_depth"][workflow["kl_by_depth"].dataset == dataset].set_index("depth_group")
    theirs = authors["kl_by_depth"][authors["kl_by_depth"].dataset == dataset].set_index("depth_group")
    assert list(ours.index) == list(theirs.index) == DEPTH_GROUPS
    assert (ours.n_robust_filters == theirs.n_robust_filters).all(), "filters per depth group (robust)"
    assert (ours.n_normal_filters == theirs.n_normal_filters).all(), "filters per depth group (normal)"
    _assert_close(ours.kl, theirs.kl, f"KL by depth {dataset}")


# --- layer quality -------------------------------------------------------------------------------

METRICS = ["sparsity", "entropy_unscaled", "entropy_scaled", "orthogonality"]


def test_layer_quality(workflow, authors):
    ours = workflow["layers"].set_index(["model_id", "name"]).sort_index()
    theirs = authors["layers"].set_index(["model", "layer"]).sort_index()
    assert list(ours.index) == list(theirs.index)
    assert (ours.n_sparse.to_numpy() == theirs.n_sparse.to_numpy()).all()
    for metric in METRICS:
        _assert_close(ours[metric], theirs[metric], f"layer {metric}")


def test_layer_depth_groups_equal_pandas_cut_of_the_export_depths(workflow, authors):
    ours = workflow["layers"].set_index(["model_id", "name"]).sort_index()
    theirs = authors["layers"].set_index(["model", "layer"]).sort_index()
    assert ours.depth_group.to_dict() == theirs.depth_group.to_dict()


def test_sparse_shares(workflow, authors):
    ours = workflow["sparse_shares"].set_index("training")
    theirs = authors["sparse_shares"].set_index("training")
    for column in ("pooled_share", "mean_layer_share"):
        _assert_close(ours[column].loc[["robust", "normal"]], theirs[column].loc[["robust", "normal"]], column)


def test_quality_by_depth_and_fig7_boxes_over_the_pairings(workflow, authors):
    ours = workflow["quality_by_depth"].set_index(["model_id", "depth_group"]).sort_index()
    theirs = authors["quality_by_depth"].set_index(["model", "depth_group"]).sort_index()
    assert list(ours.index) == list(theirs.index)
    for metric in METRICS:
        _assert_close(ours[metric], theirs[metric], f"{metric} by depth group")
    # Fig. 7 (figures.quality_over_pairings): a normal model counts once per pairing it serves.
    boxes = workflow["boxes"].set_index(["pair", "training", "depth_group"]).sort_index()
    expected = authors["boxes"].set_index(["pair", "training", "depth_group"]).sort_index()
    assert list(boxes.index) == list(expected.index)
    assert list(boxes.model_id) == list(expected.model)
    assert (boxes.dataset == expected.dataset).all()
    for metric in METRICS:
        _assert_close(boxes[metric], expected[metric], f"Fig. 7 boxes {metric}")


# --- deciles: integer arithmetic against pd.cut on conv_depth / max ----------------------------------

def test_depth_deciles_equal_pandas_cut_for_every_depth_of_models_up_to_300_levels():
    for max_depth in range(1, 301):
        depth = np.arange(max_depth + 1)
        frame = pd.DataFrame({"conv_depth": depth, "conv_depth_norm": depth / max_depth})
        assert list(depth_group(depth, max_depth)) == list(oracle.depth_groups(frame)), max_depth
