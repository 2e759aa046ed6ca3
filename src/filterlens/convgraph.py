"""Which convolutions a model's forward pass executes, and their depth (docs/method.md §2).

Depth counts convolutions of every kernel size: a conv's depth is the number of convs on the
longest path from the input to it in the traced forward graph, so convs on the same level
(a block's first 3x3 and its 1x1 shortcut) share a depth and the first level is 0. Modules
that sit in the model but are never called do not appear.

The graph comes from ``torch.fx``. A model that fx cannot trace (data-dependent control flow)
falls back to execution order seen by forward hooks, where each executed conv gets the next
depth; the method used is returned with the layers so that it can be recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import fx, nn

DepthMethod = Literal["fx", "hooks"]


@dataclass(frozen=True)
class ConvCall:
    """One executed convolution module, in forward order."""

    name: str
    module: nn.Conv2d
    conv_depth: int
    # Name of a BatchNorm2d that consumes this conv's output and nothing else does (fx only);
    # folding its scale into the weights is an extraction option.
    following_batchnorm: str | None = None


class _ConvLeafTracer(fx.Tracer):
    """Keeps every Conv2d (subclasses such as timm's Conv2dSame too) a single graph node."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, nn.Conv2d) or super().is_leaf_module(m, module_qualified_name)


def _trace_fx(model: nn.Module) -> list[ConvCall]:
    graph = _ConvLeafTracer().trace(model)
    modules = dict(model.named_modules())
    convs_before: dict[fx.Node, int] = {}  # longest count of convs on a path ending at the node
    calls: dict[str, ConvCall] = {}
    for node in graph.nodes:  # fx graphs are in topological order
        before = max((convs_before[p] for p in node.all_input_nodes), default=0)
        module = modules.get(node.target) if node.op == "call_module" else None
        if isinstance(module, nn.Conv2d):
            convs_before[node] = before + 1
            if node.target not in calls:  # a conv called twice counts once, at its first call
                calls[node.target] = ConvCall(node.target, module, before, _sole_batchnorm_user(node, modules))
        else:
            convs_before[node] = before
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
            calls[name] = ConvCall(name, module, len(calls))

    handles = [m.register_forward_pre_hook(record) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(example_input)
    finally:
        for handle in handles:
            handle.remove()
    return list(calls.values())


def executed_convs(model: nn.Module, example_input: torch.Tensor) -> tuple[list[ConvCall], DepthMethod]:
    """Executed conv modules of ``model`` with their depth, and how the depth was found.

    ``example_input`` is only run (on its device, ``meta`` works) when fx tracing fails.
    """
    was_training = model.training
    model.eval()
    try:
        try:
            return _trace_fx(model), "fx"
        except Exception:  # fx raises many kinds (TraceError, TypeError, ...) on untraceable code
            return _trace_hooks(model, example_input), "hooks"
    finally:
        model.train(was_training)
