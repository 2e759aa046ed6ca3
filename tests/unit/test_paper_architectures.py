"""The paper's 71 robust models, built on the meta device: their 3x3 filter counts (docs/method.md §1)
and depths under both definitions (docs/method.md §2)."""

import csv
from collections import Counter

import pytest
import torch
from conftest import REPO

from filterlens.config.datasets import dataset_info
from filterlens.extract.weights import plan_extraction
from filterlens.models.architectures import build_architecture

PAPER_TOTALS = {"cifar10": 447_825_488, "cifar100": 158_015_344, "imagenet": 10_022_912}


def paper_robust_models():
    with open(REPO / "config" / "reference" / "paper_models.csv") as handle:
        return [r for r in csv.DictReader(handle) if r["Name"].startswith("robustbench_")]


@pytest.fixture(scope="module")
def plans():
    result = []
    for row in paper_robust_models():
        info = dataset_info(row["Training-Dataset"])
        model = build_architecture("robustbench", {"dataset": info.name, "key": row["Network"]},
                                   info.num_classes, device="meta")
        example = torch.empty(1, 3, info.image_size, info.image_size, device="meta")
        inner = model[1] if isinstance(model, torch.nn.Sequential) else model  # RobustBench's normalize_model
        result.append((info.name, plan_extraction(model, example), row["Network"], type(inner).__name__))
    return result


def test_there_are_71_models_49_17_5(plans):
    assert len(plans) == 71
    assert Counter(d for d, *_ in plans) == {"cifar10": 49, "cifar100": 17, "imagenet": 5}


def test_filter_totals_per_dataset_equal_the_papers_exactly(plans):
    totals = Counter()
    for dataset, plan, *_ in plans:
        totals[dataset] += plan.n_filters
    assert dict(totals) == PAPER_TOTALS
    assert sum(totals.values()) == 615_863_744


def test_every_paper_model_traces_with_fx_and_imagenet_resnets_have_no_3x3_at_depth_0(plans):
    assert {plan.depth_method for _, plan, *_ in plans} == {"fx"}
    for dataset, plan, *_ in plans:
        first = min(layer.conv_depth for layer in plan.layers)
        if dataset == "imagenet":  # a 7x7 stem comes first
            assert first >= 1
        else:
            assert first == 0


def _plan(plans, dataset, key):
    return next(plan for d, plan, k, _ in plans if (d, k) == (dataset, key))


def test_deepest_model_has_the_authors_max_conv_depth_105_where_counting_convs_gives_102(plans):
    plan = _plan(plans, "cifar10", "Rebuffi2021Fixing_106_16_cutmix_ddpm")
    assert plan.depth_definition == "graph_level"
    assert plan.max_conv_depth == 105
    assert plan.max_conv_depths == {"graph_level": 105, "conv_count": 102}
    assert max(layer.conv_depth_conv_count for layer in plan.layers) == 102


def test_a_plain_wrn_28_10_has_the_same_depths_under_both_definitions(plans):
    plan = _plan(plans, "cifar10", "Carmon2019Unlabeled")
    assert plan.max_conv_depths == {"graph_level": 24, "conv_count": 24}
    assert all(layer.conv_depth_graph_level == layer.conv_depth_conv_count for layer in plan.layers)


def test_every_architecture_class_of_the_zoo_is_cross_checked_against_the_onnx_exporter(plans):
    from test_onnx_depth import family_classes

    missing = {name for *_, name in plans} - family_classes()
    assert not missing, f"classes of the paper zoo without an ONNX cross-check in tests/unit/test_onnx_depth.py: {missing}"
