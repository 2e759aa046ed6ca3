"""Which convolutions a model's forward pass executes, and their depth (docs/method.md §2).

Two depth definitions, both from the traced forward graph (``torch.fx``):

``graph_level`` (the authors', the default)
    The authors exported every model to ONNX (``torch.onnx.export(model.eval(), x,
    opset_version=13)``) and gave every graph node a *level*: the length of the longest path to
    it from the nodes that read the input (those are level 0), counting every operation node.
    Nodes fed by constants only have no level. A conv's depth is the rank of its level among
    the distinct levels that hold a conv of any kernel size, the first being 0. This module
    emulates that graph on the fx graph: each fx operation counts as the number of ONNX nodes
    the exporter emits for it on its longest path (``_onnx_path_length``): a BatchNorm folded
    into the conv before it is no node, SiLU is Sigmoid then Mul, ``F.pad`` a Pad, eval-mode
    dropout and identities nothing. tests/unit/test_onnx_depth.py checks the emulation against the
    exporter itself for every architecture family of the paper's zoo.
``conv_count``
    The number of convs (any kernel size) on the longest path from the input to a conv. It
    agrees with ``graph_level`` where parallel branches have equally many operations before
    their convs (plain WideResNets), not where they differ (a shortcut conv that takes x
    beside a branch that takes relu(bn(x)), a Pad before one branch's conv).

Modules that sit in the model but are never called do not appear. A model that fx cannot
trace (data-dependent control flow) falls back to execution order seen by forward hooks, where
each executed conv gets the next depth under both definitions; the method used (``fx`` or
``hooks``) is returned with the layers so that it can be recorded.
"""

from __future__ import annotations

import contextlib
import operator
from dataclasses import dataclass
from typing import Callable, Iterator, Literal

import torch
from torch import fx, nn

# The definitions' names live in config (no torch: the reduction jobs check them).
from filterlens.config.depth_definitions import DepthDefinition, check_depth_definition

DepthMethod = Literal["fx", "hooks"]


@dataclass(frozen=True)
class ConvCall:
    """One executed convolution module, in forward order, with its depth under each definition."""

    name: str
    module: nn.Conv2d
    depth_graph_level: int
    depth_conv_count: int
    # Name of a BatchNorm2d that consumes this conv's output and nothing else does (fx only):
    # the eval-mode ONNX export folds exactly these, and so does extraction's fold option.
    following_batchnorm: str | None = None

    def depth(self, definition: DepthDefinition) -> int:
        check_depth_definition(definition)
        return self.depth_graph_level if definition == "graph_level" else self.depth_conv_count


class _ConvLeafTracer(fx.Tracer):
    """Keeps every Conv2d (subclasses such as timm's Conv2dSame too) a single graph node."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, nn.Conv2d) or super().is_leaf_module(m, module_qualified_name)


# ONNX nodes (opset 13, TorchScript exporter, eval mode) on the longest path through one fx
# operation, by module type or function/method name. An operation not listed counts as one
# node; only operations on a path from the input to a conv affect conv depths.
_NO_NODE = 0
_MODULE_PATH_LENGTH: dict[type, int] = {
    nn.Identity: _NO_NODE, nn.Dropout: _NO_NODE, nn.Dropout2d: _NO_NODE, nn.Dropout1d: _NO_NODE,
    nn.AlphaDropout: _NO_NODE,
    nn.SiLU: 2,  # Sigmoid, Mul(x, sigmoid)
    nn.Hardswish: 2,  # HardSigmoid, Mul (HardSwish is opset 14)
    nn.Mish: 3,  # Softplus, Tanh, Mul
    nn.GELU: 5,  # Div, Erf, Add, Mul, Mul
}
_FUNCTION_PATH_LENGTH: dict[str, int] = {
    "dropout": _NO_NODE, "dropout2d": _NO_NODE, "alpha_dropout": _NO_NODE, "feature_alpha_dropout": _NO_NODE,
    "contiguous": _NO_NODE, "clone": _NO_NODE, "detach": _NO_NODE, "getitem": _NO_NODE,
    "silu": 2, "hardswish": 2, "mish": 3, "gelu": 5,
}


def _operation_name(node: fx.Node) -> str:
    target = node.target
    if node.op == "call_method":
        return str(target)
    if target is operator.getitem:
        return "getitem"
    return str(getattr(target, "__name__", target))


def _onnx_path_length(node: fx.Node, modules: dict[str, nn.Module], folded: set[str]) -> int:
    """ONNX nodes the exporter emits for ``node`` on its longest path (see the table above)."""
    if node.op == "call_module":
        module = modules[str(node.target)]
        if isinstance(module, nn.Conv2d):
            return 1 if module.padding_mode == "zeros" else 2  # other padding modes: Pad, Conv
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            return _NO_NODE if str(node.target) in folded else 1
        for kind, length in _MODULE_PATH_LENGTH.items():
            if isinstance(module, kind):
                return length
        return 1
    return _FUNCTION_PATH_LENGTH.get(_operation_name(node), 1)


def _trace_fx(model: nn.Module) -> list[ConvCall]:
    graph = _ConvLeafTracer().trace(model)
    modules = dict(model.named_modules())
    is_conv = {n: n.op == "call_module" and isinstance(modules.get(n.target), nn.Conv2d) for n in graph.nodes}
    sole_bn = {n: _sole_batchnorm_user(n, modules) for n in graph.nodes if is_conv[n]}
    folded = {bn for bn in sole_bn.values() if bn is not None}
    convs_before: dict[fx.Node, int] = {}  # longest count of convs on a path ending at the node
    level: dict[fx.Node, int | None] = {}  # level of the node's last ONNX node; None: constant
    conv_levels: dict[fx.Node, int] = {}
    for node in graph.nodes:  # fx graphs are in topological order
        inputs = node.all_input_nodes
        before = max((convs_before[p] for p in inputs), default=0)
        convs_before[node] = before + 1 if is_conv[node] else before
        if node.op == "placeholder":
            level[node] = -1  # the nodes that read the input are level 0
        elif node.op in ("get_attr", "output"):
            level[node] = None
        else:
            data = [level[p] for p in inputs if level[p] is not None]
            level[node] = max(data) + _onnx_path_length(node, modules, folded) if data else None
            if is_conv[node] and level[node] is not None:
                conv_levels[node] = level[node]
    rank = {lvl: r for r, lvl in enumerate(sorted(set(conv_levels.values())))}
    calls: dict[str, ConvCall] = {}
    for node in graph.nodes:
        if is_conv[node] and node.target not in calls:  # a conv called twice counts once, at its first call
            graph_level = rank[conv_levels[node]] if node in conv_levels else 0
            calls[node.target] = ConvCall(node.target, modules[node.target], graph_level, convs_before[node] - 1,
                                          sole_bn[node])
    return list(calls.values())


def _sole_batchnorm_user(node: fx.Node, modules: dict[str, nn.Module]) -> str | None:
    users = list(node.users)
    if len(users) == 1 and users[0].op == "call_module":
        if isinstance(modules.get(users[0].target), nn.BatchNorm2d):
            return str(users[0].target)
    return None


def _trace_hooks(model: nn.Module, example_input: torch.Tensor) -> list[ConvCall]:
    calls: dict[str, ConvCall] = {}
    names = {module: name for name, module in model.named_modules()}

    def record(module: nn.Module, _inputs: object) -> None:
        name = names[module]
        if name not in calls:
            calls[name] = ConvCall(name, module, len(calls), len(calls))

    run_with_pre_hooks(model, example_input, {m: record for m in model.modules() if isinstance(m, nn.Conv2d)})
    return list(calls.values())


@contextlib.contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode inside the block, every module's own mode restored after.

    Every forward that probes a model (its convs, their input sizes) runs in eval mode: in
    training mode a BatchNorm that sees one value per channel (a batch of one image after global
    pooling, as in torchvision's ResNets on 32x32 inputs) raises, dropout is random and running
    statistics would change."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes.items():
            module.training = training


def run_with_pre_hooks(model: nn.Module, example_input: torch.Tensor,
                       hooks: dict[nn.Module, Callable[[nn.Module, tuple], None]]) -> None:
    """``model(example_input)`` in eval mode without gradients, each module of ``hooks`` with its
    forward pre-hook (which sees the module's inputs and leaves them as they are); the hooks are
    removed and the modules' modes restored after."""
    handles = [module.register_forward_pre_hook(hook) for module, hook in hooks.items()]
    try:
        with torch.no_grad(), evaluation_mode(model):
            model(example_input)
    finally:
        for handle in handles:
            handle.remove()


def executed_convs(model: nn.Module, example_input: torch.Tensor) -> tuple[list[ConvCall], DepthMethod]:
    """Executed conv modules of ``model`` with their depths, and how the depths were found.

    ``example_input`` is only run (on its device, ``meta`` works) when fx tracing fails. Both
    see the model in eval mode, as the authors' ONNX export did.
    """
    with evaluation_mode(model):
        try:
            return _trace_fx(model), "fx"
        except Exception:  # fx raises many kinds (TraceError, TypeError, ...) on untraceable code
            return _trace_hooks(model, example_input), "hooks"
