"""Extraction against known answers: layers, depths and filter rows of hand-built models."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from filterlens.extract.weights import iter_layer_rows, plan_extraction


class Toy(nn.Module):
    """7x7 stem, a 3x3, then a grouped 3x3 beside a 1x1 shortcut, a 3x3, and an unused conv."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 7, padding=3)  # depth 0, not 3x3: no filters
        self.conv_a = nn.Conv2d(4, 6, 3, padding=1)  # depth 1: 6 * 4 = 24 rows
        self.grouped = nn.Conv2d(6, 8, 3, padding=1, groups=2)  # depth 2: 8 * 3 = 24 rows
        self.shortcut = nn.Conv2d(6, 8, 1)  # depth 2 too (same level), not 3x3
        self.conv_b = nn.Conv2d(8, 2, 3, padding=1)  # depth 3: 2 * 8 = 16 rows
        self.unused = nn.Conv2d(2, 2, 3)  # in the model and its state dict, never called

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        x = F.relu(self.conv_a(x))
        return self.grouped(x) + self.shortcut(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.features(x))


class ToyWithUntraceableBranch(Toy):
    """The same model with data-dependent control flow, which torch.fx cannot trace."""

    def __init__(self) -> None:
        super().__init__()
        self.branch = nn.Conv2d(8, 8, 3, padding=1, bias=False)  # 64 rows

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        if x.abs().sum() >= 0:  # always true, but decided by data
            x = self.branch(x)
        return self.conv_b(x)


def _example() -> torch.Tensor:
    return torch.zeros(1, 3, 16, 16)


def _table(plan):
    return [(l.name, l.conv_depth, l.c_in, l.c_out, l.groups, l.row_start, l.row_stop) for l in plan.layers]


def test_traced_graph_gives_levels_shared_by_parallel_convs_and_skips_unused_modules():
    torch.manual_seed(0)
    model = Toy()
    plan = plan_extraction(model, _example())
    assert plan.depth_method == "fx"
    assert plan.max_conv_depth == 3
    # Equally many operations before the grouped conv and the shortcut: both definitions agree.
    assert plan.max_conv_depths == {"graph_level": 3, "conv_count": 3}
    assert [l.conv_depth_conv_count for l in plan.layers] == [l.conv_depth for l in plan.layers]
    assert _table(plan) == [
        ("conv_a", 1, 4, 6, 1, 0, 24),
        ("grouped", 2, 6, 8, 2, 24, 48),
        ("conv_b", 3, 8, 2, 1, 48, 64),
    ]
    assert [l.conv_depth_norm for l in plan.layers] == pytest.approx([1 / 3, 2 / 3, 1.0])
    rows = dict((layer.name, r) for layer, r in iter_layer_rows(model, plan))
    for name in ("conv_a", "grouped", "conv_b"):
        expected = getattr(model, name).weight.detach().numpy().reshape(-1, 9)
        np.testing.assert_array_equal(rows[name], expected)
    # Row-major 3x3: row 0 of conv_a is out channel 0, in channel 0.
    np.testing.assert_array_equal(rows["conv_a"][0], model.conv_a.weight[0, 0].detach().numpy().ravel())
    np.testing.assert_array_equal(rows["conv_a"][5], model.conv_a.weight[1, 1].detach().numpy().ravel())


def test_untraceable_model_falls_back_to_execution_order_and_says_so():
    model = ToyWithUntraceableBranch()
    plan = plan_extraction(model, _example())
    assert plan.depth_method == "hooks"
    assert plan.max_conv_depths == {"graph_level": 5, "conv_count": 5}
    # Execution order: stem 0, conv_a 1, grouped 2, shortcut 3, branch 4, conv_b 5.
    assert plan.max_conv_depth == 5
    assert _table(plan) == [
        ("conv_a", 1, 4, 6, 1, 0, 24),
        ("grouped", 2, 6, 8, 2, 24, 48),
        ("branch", 4, 8, 8, 1, 48, 112),
        ("conv_b", 5, 8, 2, 1, 112, 128),
    ]


def test_batchnorm_folding_scales_each_output_channel():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 3))
    bn = model[1]
    bn.running_var.copy_(torch.tensor([1.0, 4.0, 9.0, 16.0]) - bn.eps)
    bn.weight.data.copy_(torch.tensor([1.0, 1.0, 3.0, -2.0]))
    plan = plan_extraction(model, torch.zeros(1, 3, 8, 8), fold_batchnorm=True)
    assert [l.bn_folded for l in plan.layers] == [True, False]
    rows = next(iter_layer_rows(model, plan))[1].reshape(4, 3, 9)
    raw = model[0].weight.detach().numpy().reshape(4, 3, 9)
    np.testing.assert_allclose(rows, raw * np.array([1.0, 0.5, 1.0, -0.5])[:, None, None], rtol=1e-6)


class PreActToy(nn.Module):
    """A pre-activation block: the 1x1 shortcut takes relu(bn(x)), conv1 takes pad(relu(bn(x))).

    ONNX levels (the input's first node is level 0): stem 0, bn0 (folded into the stem, its only
    consumer: no node), relu 1, shortcut 2, pad 2, conv1 3, bn1 (folded: no node), silu 4-5
    (Sigmoid, Mul), conv2 6, add 7, conv3 8. Conv levels {0, 2, 3, 6, 8} rank to graph_level
    depths stem 0, shortcut 1, conv1 2, conv2 3, conv3 4 (tests/unit/test_onnx_depth.py checks them on
    the exporter). Counting convs: stem 0, shortcut 1, conv1 1, conv2 2, conv3 3.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.bn0 = nn.BatchNorm2d(4)
        self.shortcut = nn.Conv2d(4, 6, 1)
        self.conv1 = nn.Conv2d(4, 6, 3)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.conv3 = nn.Conv2d(6, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn0(self.stem(x)))
        out = self.conv2(F.silu(self.bn1(self.conv1(F.pad(x, (1, 1, 1, 1))))))
        return self.conv3(out + self.shortcut(x))


def test_graph_level_ranks_onnx_levels_and_conv_count_counts_convs_on_the_longest_path():
    model = PreActToy()
    graph_level = plan_extraction(model, _example())
    assert graph_level.depth_definition == "graph_level"
    assert [(l.name, l.conv_depth) for l in graph_level.layers] == [("stem", 0), ("conv1", 2), ("conv2", 3),
                                                                    ("conv3", 4)]
    assert graph_level.max_conv_depth == 4
    assert [l.conv_depth_norm for l in graph_level.layers] == pytest.approx([0, 0.5, 0.75, 1.0])
    conv_count = plan_extraction(model, _example(), depth_definition="conv_count")
    assert [(l.name, l.conv_depth) for l in conv_count.layers] == [("stem", 0), ("conv1", 1), ("conv2", 2),
                                                                   ("conv3", 3)]
    assert conv_count.max_conv_depth == 3
    assert graph_level.max_conv_depths == conv_count.max_conv_depths == {"graph_level": 4, "conv_count": 3}
    # Both depths travel in every layer whichever definition fills conv_depth.
    for plan in (graph_level, conv_count):
        assert [l.conv_depth_graph_level for l in plan.layers] == [0, 2, 3, 4]
        assert [l.conv_depth_conv_count for l in plan.layers] == [0, 1, 2, 3]
    assert plan.calls["shortcut"].depth_graph_level == 1 and plan.calls["shortcut"].depth_conv_count == 1


def test_unknown_depth_definition_is_refused_with_the_config_key():
    with pytest.raises(ValueError, match="unknown depth definition 'levels'.*analysis.depth_definition"):
        plan_extraction(Toy(), _example(), depth_definition="levels")
