"""Turn a model into its 3x3 filter rows and the layer table (docs/method.md §2).

A layer is an executed ``Conv2d`` with a 3x3 kernel; its weight (c_out, c_in/groups, 3, 3)
becomes c_out * c_in/groups rows of 9 values, row-major. Rows of consecutive layers are
concatenated in forward order; each layer records its row range.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np
import torch
from torch import nn

from filterlens.config.depth_definitions import (DEFAULT_DEPTH_DEFINITION, DEPTH_DEFINITIONS, DepthDefinition,
                                                check_depth_definition)
from filterlens.extract.layer_table import Layer
from filterlens.extract.store import FilterStoreWriter
from filterlens.models.convgraph import ConvCall, DepthMethod, executed_convs


@dataclass(frozen=True)
class ExtractionPlan:
    layers: list[Layer]
    depth_method: DepthMethod
    max_conv_depth: int  # under depth_definition, over convs of every kernel size
    calls: dict[str, ConvCall]
    depth_definition: DepthDefinition = DEFAULT_DEPTH_DEFINITION
    max_conv_depths: dict[str, int] | None = None  # by definition
    fold_batchnorm: bool = False  # whether the rows of a conv followed by a BatchNorm are folded

    @property
    def n_filters(self) -> int:
        return self.layers[-1].row_stop if self.layers else 0


def is_3x3(module: nn.Conv2d) -> bool:
    return tuple(module.kernel_size) == (3, 3)


def plan_extraction(model: nn.Module, example_input: torch.Tensor, fold_batchnorm: bool = False,
                    depth_definition: DepthDefinition = DEFAULT_DEPTH_DEFINITION) -> ExtractionPlan:
    """The layer table of ``model``; works on the ``meta`` device (shapes only).

    ``conv_depth`` is under ``depth_definition``; every layer carries its depth under both
    definitions too. ``fold_batchnorm`` marks the layers whose conv's only consumer is a
    BatchNorm as folded (:func:`layer_rows` then writes weight * gamma / sqrt(var + eps)).
    """
    check_depth_definition(depth_definition)
    calls, method = executed_convs(model, example_input)
    max_depths = {d: max((c.depth(d) for c in calls), default=0) for d in DEPTH_DEFINITIONS}
    max_depth = max_depths[depth_definition]
    layers: list[Layer] = []
    row = 0
    for call in calls:
        conv = call.module
        if not is_3x3(conv):
            continue
        n = conv.out_channels * (conv.in_channels // conv.groups)
        layers.append(
            Layer(
                layer_id=len(layers),
                name=call.name,
                conv_depth=call.depth(depth_definition),
                conv_depth_norm=call.depth(depth_definition) / max_depth if max_depth else 0.0,
                c_in=conv.in_channels,
                c_out=conv.out_channels,
                groups=conv.groups,
                row_start=row,
                row_stop=row + n,
                bn_folded=fold_batchnorm and call.following_batchnorm is not None,
                conv_depth_graph_level=call.depth_graph_level,
                conv_depth_conv_count=call.depth_conv_count,
            )
        )
        row += n
    return ExtractionPlan(layers, method, max_depth, {c.name: c for c in calls}, depth_definition, max_depths,
                          fold_batchnorm)


def batchnorm_scale(bn: nn.BatchNorm2d) -> torch.Tensor:
    """Per-output-channel factor that eval-mode BatchNorm applies: gamma / sqrt(var + eps)."""
    gamma = bn.weight if bn.affine else torch.ones_like(bn.running_var)
    return (gamma / torch.sqrt(bn.running_var + bn.eps)).detach()


def layer_rows(model: nn.Module, plan: ExtractionPlan, layer: Layer) -> np.ndarray:
    """The (n, 9) float32 filter rows of one layer."""
    conv = plan.calls[layer.name].module
    weight = conv.weight.detach()
    if layer.bn_folded:
        bn = model.get_submodule(plan.calls[layer.name].following_batchnorm)
        weight = weight * batchnorm_scale(bn).view(-1, 1, 1, 1)
    return weight.reshape(-1, 9).to(torch.float32).cpu().numpy()


def iter_layer_rows(model: nn.Module, plan: ExtractionPlan) -> Iterator[tuple[Layer, np.ndarray]]:
    """Each layer with its rows, one layer in memory at a time."""
    for layer in plan.layers:
        yield layer, layer_rows(model, plan, layer)


def write_filter_store(path: str | os.PathLike, plan: ExtractionPlan, rows: Iterable[tuple[Layer, np.ndarray]],
                       chunk_rows: int, *, model_id: str, dataset: str | None, architecture: str | None = None,
                       arch_kwargs: dict[str, Any] | None = None, **provenance: Any) -> None:
    """Write the filter store at ``path`` of the model planned by ``plan`` from ``rows`` (each
    layer of the plan with its rows, as :func:`iter_layer_rows` gives them), with the attributes
    every reader of the store relies on derived from the plan: the model's identity (model_id,
    dataset, and the sheet's architecture and arguments where the model has them), how its depths
    were found and under which definition, and whether BatchNorm was folded; then ``provenance``
    (the checkpoint's digest, for instance). Rule extract_filters, the API and the benchmark
    tools write their stores through this function (filterlens.extract.store for the format)."""
    attrs = {"model_id": model_id, "dataset": dataset}
    if architecture is not None:
        attrs.update(architecture=architecture, arch_kwargs=arch_kwargs)
    attrs.update(depth_method=plan.depth_method, depth_definition=plan.depth_definition,
                 max_conv_depth=plan.max_conv_depth, max_conv_depths=plan.max_conv_depths,
                 fold_batchnorm=plan.fold_batchnorm, **provenance)
    with FilterStoreWriter(path, plan.n_filters, chunk_rows, attrs) as writer:
        for layer, layer_rows in rows:
            writer.write_layer(layer, layer_rows)
