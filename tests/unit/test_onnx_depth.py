"""Depth and BatchNorm folding against the authors' exporter itself (docs/method.md §2).

The authors exported each model with ``torch.onnx.export(model.eval(), x, opset_version=13)``
(TorchScript exporter; Swish replaced by SiLU), gave every ONNX node the length of the longest
path to it from the nodes that read the input (constant-only nodes get none), and ranked the
levels holding a Conv node. Here every architecture family of the paper's zoo is exported on the
CPU with random weights (small configurations of the same classes where the real one is large),
the levels are computed on the ONNX graph that way, each ONNX Conv is matched to its module by
its weights, and the workflow's ``graph_level`` depth (computed from the fx graph, the original
Swish included) must equal it for every conv. The exported weights double as the folding check:
a conv whose only consumer is a BatchNorm must be exported folded, exactly as extraction folds.
"""

from __future__ import annotations

import copy
import io
import warnings

import numpy as np
import onnx
import pytest
import torch
from authors_oracle import node_levels
from onnx import numpy_helper
from torch import nn

from filterlens.extract.weights import batchnorm_scale, iter_layer_rows, plan_extraction
from filterlens.models.compat import import_robustbench

import_robustbench()  # the whole package, with the import fixes of models/compat.py

from robustbench.model_zoo import cifar10 as rb_cifar10
from robustbench.model_zoo import cifar100 as rb_cifar100
from robustbench.model_zoo.architectures.boosting_wide_resnet import BoostingWideResNet
from robustbench.model_zoo.architectures.dm_wide_resnet import (CIFAR10_MEAN, CIFAR10_STD, DMPreActResNet, DMWideResNet,
                                                                Swish)
from robustbench.model_zoo.architectures.paf_wide_resnet import PAF_WideResNet, PSSiLU
from robustbench.model_zoo.architectures.resnet import BasicBlock, PreActBlock, PreActBlockV2, PreActResNet
from robustbench.model_zoo.architectures.robust_wide_resnet import RobustWideResNet
from robustbench.model_zoo.architectures.utils_architectures import normalize_model
from robustbench.model_zoo.architectures.wide_resnet import WideResNet

# --- the authors' side: export and levels on the ONNX graph -----------------------------------

def export_onnx(model: nn.Module, image_size: int) -> onnx.ModelProto:
    """The authors' export: eval mode, opset 13, the TorchScript exporter, Swish as SiLU."""
    model = _swish_as_silu(copy.deepcopy(model)).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(1, 3, image_size, image_size), buffer, opset_version=13,
                          dynamo=False)
    return onnx.load_from_string(buffer.getvalue())


def _swish_as_silu(model: nn.Module) -> nn.Module:
    for name, child in list(model.named_children()):
        if isinstance(child, Swish):
            setattr(model, name, nn.SiLU())
        else:
            _swish_as_silu(child)
    return model


def onnx_conv_depths(model: onnx.ModelProto) -> list[tuple[int, np.ndarray]]:
    """(conv_depth, exported weight) of every Conv node: the rank of its level among the levels
    holding a Conv, as the authors' extract_filters.py numbers them."""
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    level = node_levels(model)  # the oracle's get_layers_by_depth levels
    convs = [(level[i], numpy_helper.to_array(initializers[node.input[1]]))
             for i, node in enumerate(graph.node) if node.op_type == "Conv"]
    rank = {lvl: r for r, lvl in enumerate(sorted({lvl for lvl, _ in convs}))}
    return [(rank[lvl], weight) for lvl, weight in convs]


# --- the workflow's side, matched conv by conv --------------------------------------------------

def randomize_batchnorms(model: nn.Module, seed: int) -> nn.Module:
    """Distinct, non-trivial BatchNorm statistics so that folded weights differ from raw ones."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                shape = module.running_var.shape
                module.running_var.copy_(0.25 + 2 * torch.rand(shape, generator=generator))
                module.running_mean.copy_(torch.randn(shape, generator=generator))
                module.weight.copy_(0.5 + torch.rand(shape, generator=generator))
                module.bias.copy_(torch.randn(shape, generator=generator))
    return model


def exported_weight_expected(model: nn.Module, call) -> np.ndarray:
    weight = call.module.weight.detach()
    if call.following_batchnorm is not None:
        weight = weight * batchnorm_scale(model.get_submodule(call.following_batchnorm)).view(-1, 1, 1, 1)
    return weight.numpy()


def compare_with_exporter(model: nn.Module, image_size: int) -> dict[str, int]:
    """Assert that every conv's graph_level depth and (folded) weight equal the export's; return
    the depths by conv name."""
    model = randomize_batchnorms(model, seed=1).eval()
    plan = plan_extraction(model, torch.zeros(1, 3, image_size, image_size), fold_batchnorm=True)
    assert plan.depth_method == "fx"
    exported = onnx_conv_depths(export_onnx(model, image_size))
    assert len(exported) == len(plan.calls)
    unmatched = list(exported)
    depths = {}
    for name, call in plan.calls.items():
        expected = exported_weight_expected(model, call)
        hits = [k for k, (_, w) in enumerate(unmatched)
                if w.shape == expected.shape and np.allclose(w, expected, rtol=1e-5, atol=1e-7)]
        assert len(hits) == 1, f"{name}: {len(hits)} exported convs carry its (folded) weights"
        onnx_depth, _ = unmatched.pop(hits[0])
        assert call.depth_graph_level == onnx_depth, f"{name}: graph_level {call.depth_graph_level}, ONNX {onnx_depth}"
        depths[name] = onnx_depth
    # The 3x3 rows extraction writes with folding on are the exported initializers.
    for layer, rows in iter_layer_rows(model, plan):
        np.testing.assert_allclose(rows, exported_weight_expected(model, plan.calls[layer.name]).reshape(-1, 9),
                                   rtol=1e-6, atol=0)
        assert layer.bn_folded == (plan.calls[layer.name].following_batchnorm is not None)
    return depths


def _smaller(cls, base, *args, **kwargs):
    """An instance of ``cls`` (its forward, its normalisation buffers) whose base class is built
    with ``args`` (fewer blocks) instead of the arguments ``cls.__init__`` fixes."""
    net = cls.__new__(cls)
    base.__init__(net, *args, **kwargs)
    return net


def _with_buffers(net: nn.Module, mean, std) -> nn.Module:
    net.register_buffer("mu", torch.tensor(mean).view(1, 3, 1, 1))
    net.register_buffer("sigma", torch.tensor(std).view(1, 3, 1, 1))
    return net


CIFAR10_MU, CIFAR10_SIGMA = (0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616)


def _small_chen2020_adversarial() -> nn.Module:
    """Chen2020AdversarialNet's class and forward (three ResNet branches on the normalised input,
    their softmaxes averaged); each branch is its ResNet of its bottleneck with one block in each
    of the first three stages (no fourth) instead of ResNet-50."""
    net = rb_cifar10.Chen2020AdversarialNet.__new__(rb_cifar10.Chen2020AdversarialNet)
    nn.Module.__init__(net)
    for k in (1, 2, 3):
        branch = rb_cifar10.ResNet(rb_cifar10.BottleneckChen2020AdversarialNet, [1, 1, 1, 0])
        branch.linear = nn.Linear(2048, 10)  # the third stage's output after the branch's pooling
        setattr(net, f"branch{k}", branch)
    net.models = nn.ModuleList([net.branch1, net.branch2, net.branch3])
    return _with_buffers(net, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _torchvision(block: str, **kwargs) -> nn.Module:
    """torchvision's ResNet class (resnet18/50, wide_resnet50_2) with one block per stage, behind
    RobustBench's ImageNet normalisation, as the leaderboard builds them."""
    from torchvision.models import resnet

    model = resnet.ResNet(getattr(resnet, block), [1, 1, 1, 1], **kwargs)
    return normalize_model(model, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _timm(block: str, **kwargs) -> nn.Module:
    """timm's ResNet class (the ImageNet counterparts) with one block per stage."""
    from timm.models import resnet

    return resnet.ResNet(block=getattr(resnet, block), layers=[1, 1, 1, 1], **kwargs)


# Every architecture family of config/models/paper.tsv (the robust models' RobustBench classes,
# the ImageNet counterparts' timm ResNets): (builder, input size). Small configurations of the
# same classes (same blocks, same forward) keep the exports fast; the number of blocks does not
# change how a block's branches line up.
FAMILIES = {
    "WideResNet sub_block1": (lambda: WideResNet(depth=10, widen_factor=2, sub_block1=True), 32),
    "WideResNet": (lambda: WideResNet(depth=10, widen_factor=2, sub_block1=False), 32),
    "Ding2020MMANet": (lambda: rb_cifar10.Ding2020MMANet(depth=10, widen_factor=1), 32),
    "Hendrycks2019UsingNet": (lambda: rb_cifar100.Hendrycks2019UsingNet(depth=10, widen_factor=1), 32),
    "Chen2020EfficientNet": (lambda: rb_cifar10.Chen2020EfficientNet(depth=10, widen_factor=1), 32),
    "Rice2020OverfittingNet WRN": (lambda: rb_cifar10.Rice2020OverfittingNet(depth=10, widen_factor=1), 32),
    "Wu2020AdversarialNet": (lambda: rb_cifar100.Wu2020AdversarialNet(depth=10, widen_factor=1), 32),
    "BoostingWideResNet": (lambda: BoostingWideResNet(depth=10, widen_factor=1), 32),
    "RobustWideResNet": (lambda: RobustWideResNet(num_classes=10, channel_configs=[16, 32, 64, 128],
                                                  depth_configs=[2, 2, 2]), 32),
    "PAF_WideResNet": (lambda: PAF_WideResNet(PSSiLU(), depth=10, widen_factor=1), 32),
    "DMWideResNet Swish": (lambda: DMWideResNet(num_classes=10, depth=16, width=1, activation_fn=Swish,
                                                mean=CIFAR10_MEAN, std=CIFAR10_STD), 32),
    # DMPreActResNet fixes its width and has no depth below 18: the real one.
    "DMPreActResNet Swish": (lambda: DMPreActResNet(num_classes=10, depth=18, width=0, activation_fn=Swish,
                                                    mean=CIFAR10_MEAN, std=CIFAR10_STD), 32),
    "PreActResNet": (lambda: PreActResNet(PreActBlock, [1, 1, 1, 1]), 32),
    "PreActResNet V2": (lambda: PreActResNet(PreActBlockV2, [1, 1, 1, 1], num_classes=100, bn_before_fc=True), 32),
    "Wong2020FastNet": (lambda: _with_buffers(_smaller(rb_cifar10.Wong2020FastNet, PreActResNet, PreActBlock,
                                                       [1, 1, 1, 1]), CIFAR10_MU, CIFAR10_SIGMA), 32),
    "Rice2020OverfittingNet PreAct": (lambda: _with_buffers(
        _smaller(rb_cifar100.Rice2020OverfittingNet, PreActResNet, PreActBlock, [1, 1, 1, 1], num_classes=100,
                 bn_before_fc=True, out_shortcut=True), CIFAR10_MU, CIFAR10_SIGMA), 32),
    "ResNet CIFAR BasicBlock": (lambda: rb_cifar10.ResNet(BasicBlock, [1, 1, 1, 1]), 32),
    "Engstrom2019RobustnessNet": (lambda: _with_buffers(_smaller(rb_cifar10.Engstrom2019RobustnessNet,
                                                                 rb_cifar10.ResNet, rb_cifar10.Bottleneck,
                                                                 [1, 1, 1, 1]), CIFAR10_MU, CIFAR10_SIGMA), 32),
    "Chen2020AdversarialNet": (_small_chen2020_adversarial, 32),
    "torchvision resnet18": (lambda: _torchvision("BasicBlock"), 32),
    "torchvision resnet50": (lambda: _torchvision("Bottleneck"), 32),
    "torchvision wide_resnet50_2": (lambda: _torchvision("Bottleneck", width_per_group=128), 32),
    "timm resnet18": (lambda: _timm("BasicBlock", channels=(16, 32, 64, 128), stem_width=16), 32),
    "timm resnet50": (lambda: _timm("Bottleneck", channels=(16, 32, 64, 128), stem_width=16), 32),
    "timm wide_resnet50_2": (lambda: _timm("Bottleneck", channels=(16, 32, 64, 128), stem_width=16,
                                           base_width=128), 32),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_graph_level_depth_and_folding_equal_the_onnx_export(family):
    build, size = FAMILIES[family]
    torch.manual_seed(0)
    compare_with_exporter(build(), size)


def family_classes() -> set[str]:
    """Class names of the cross-checked models (the network inside RobustBench's normalize_model);
    tests/unit/test_paper_architectures.py requires them to cover the 71 robust models' classes."""
    names = set()
    with torch.device("meta"):
        for build, _ in FAMILIES.values():
            model = build()
            names.add(type(model[1] if isinstance(model, nn.Sequential) else model).__name__)
    return names


def test_an_eval_export_of_conv_then_batchnorm_has_no_batchnormalization_node():
    """The exporter folds a BatchNorm that is its conv's only consumer, and not one whose conv
    output feeds something else too; extraction's folding gives the same weights."""
    torch.manual_seed(0)

    class Fork(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv_a, self.bn_a = nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4)
            self.conv_b, self.bn_b = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)

        def forward(self, x):
            a = torch.relu(self.bn_a(self.conv_a(x)))
            b = self.conv_b(a)
            return self.bn_b(b) + b  # conv_b's output has two consumers: not folded

    model = randomize_batchnorms(Fork(), seed=2).eval()
    ops = [node.op_type for node in export_onnx(model, 8).graph.node]
    assert ops.count("BatchNormalization") == 1 and ops.count("Conv") == 2
    plan = plan_extraction(model, torch.zeros(1, 3, 8, 8), fold_batchnorm=True)
    assert [layer.bn_folded for layer in plan.layers] == [True, False]
    compare_with_exporter(model, 8)


def test_the_known_answer_toy_of_the_convgraph_tests_has_the_exporters_depths():
    from test_convgraph_known_answers import PreActToy

    depths = compare_with_exporter(PreActToy(), 16)
    assert depths == {"stem": 0, "shortcut": 1, "conv1": 2, "conv2": 3, "conv3": 4}
