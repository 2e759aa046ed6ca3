"""The filter measures of docs/method.md §7 that run the model itself (torch; only the rule
scripts that load a checkpoint import this module; :mod:`filterlens.method.filter_measures`
holds the array definitions they apply).

- :func:`conv_input_sizes`: the input size (H, W) of named modules at their first call, from
  forward pre-hooks on an example input in eval mode (on the meta device: shapes only, no compute).
- :func:`spectra_table`: per 3x3 layer, the singular values of its convolution as an operator
  on its input size (:func:`filterlens.method.filter_measures.conv_singular_values`), summarised;
  a layer the FFT method does not cover (a non-square input, a stride that does not divide it,
  dilation) is a row of NaN with a note.
- :func:`perturbation_ratios`: per 3x3 layer, ||f_l(x) - f_l(x')||_2 / ||f_l(x)||_2 of every
  image x for its L-inf PGD version x' against the model itself and for random sign noise of
  the same size eps (x + eps s, s uniform in {-1, 1} per pixel, clipped to [0, 1]); with
  :func:`perturbation_table` their per-layer means.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Collection, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from filterlens.extract.layer_table import Layer
from filterlens.extract.weights import ExtractionPlan, layer_rows
from filterlens.method.filter_measures import conv_singular_values, perturbation_ratio, spectrum_summary
from filterlens.models.convgraph import evaluation_mode, run_with_pre_hooks
from filterlens.train.attacks import pgd_linf
from filterlens.train.minizoo import PGDSettings

LOG = logging.getLogger("filterlens.probe.model_measures")
PERTURBATIONS = ("pgd", "random")


# --- input sizes and spectra ---------------------------------------------------------------

def conv_input_sizes(model: nn.Module, example_input: torch.Tensor,
                     names: Collection[str]) -> dict[str, tuple[int, int]]:
    """(H, W) of the input of each module of ``names`` at its first call in ``model(example_input)``,
    run in eval mode (:func:`filterlens.models.convgraph.run_with_pre_hooks`); a module that does
    not run is absent. The hooks leave every input as it is and are removed."""
    sizes: dict[str, tuple[int, int]] = {}

    def record(name):
        def hook(module, inputs):
            sizes.setdefault(name, tuple(inputs[0].shape[-2:]))  # returns None: the input stays as it is
        return hook

    run_with_pre_hooks(model, example_input,
                       {module: record(name) for name, module in model.named_modules() if name in names})
    return sizes


def spectrum_problem(conv: nn.Conv2d, size: tuple[int, int]) -> str:
    """Why the FFT method cannot give the singular values of ``conv`` on inputs of ``size``
    (a square input, a multiple of one stride for both axes, no dilation); '' when it can."""
    h, w = size
    if h != w or conv.stride[0] != conv.stride[1] or h % conv.stride[0]:
        return f"input {h}x{w} with stride {tuple(conv.stride)}: not a square multiple of the stride"
    if conv.dilation[0] != 1 or conv.dilation[1] != 1:
        return f"dilation {tuple(conv.dilation)} is not supported"
    return ""


def spectra_table(network: nn.Module, plan: ExtractionPlan, sizes: Mapping[str, tuple[int, int]],
                  depth_groups: Mapping[str, str], model_id: str, log: logging.Logger = LOG) -> pd.DataFrame:
    """One row per 3x3 layer of ``plan``: its shape, input size (``sizes``), stride and padding,
    :func:`spectrum_summary` of its singular values (from the weights :func:`layer_rows` gives:
    folded where the plan folds BatchNorm) and a note where the layer is left out."""
    rows = []
    for layer in plan.layers:
        conv = plan.calls[layer.name].module
        h, w = sizes[layer.name]
        stride = conv.stride[0]
        row = {"model_id": model_id, "layer_id": layer.layer_id, "name": layer.name,
               "depth_group": depth_groups[layer.name], "c_in": layer.c_in, "c_out": layer.c_out,
               "groups": layer.groups, "input_size": h, "stride": stride, "padding": conv.padding[0]}
        start = time.monotonic()
        if note := spectrum_problem(conv, (h, w)):
            values = []
            log.warning("%s: %s, left out (NaN)", layer.name, note)
        else:
            weight = layer_rows(network, plan, layer).reshape(layer.c_out, layer.c_in // layer.groups, 3, 3)
            values = conv_singular_values(weight, h, stride=stride, padding=conv.padding[0], groups=layer.groups)
        rows.append({**row, **spectrum_summary(values), "note": note})
        log.info("%s: input %dx%d, stride %d, %d singular values, spectral norm %.4g (%.2f s)", layer.name, h, w,
                 stride, len(values), rows[-1]["spectral_norm"], time.monotonic() - start)
    return pd.DataFrame(rows)


# --- perturbation-to-signal ratio ----------------------------------------------------------

@dataclass
class PerturbationRatios:
    ratios: dict[str, dict[str, np.ndarray]]  # "pgd" / "random" -> layer name -> ratio per image
    correct: dict[str, int]  # "clean", "pgd", "random" -> images classified correctly
    n_images: int

    def accuracy(self, kind: str) -> float:
        return 100 * self.correct[kind] / self.n_images


def perturbation_ratios(model: nn.Module, network: nn.Module, names: Sequence[str], x: torch.Tensor,
                        y: torch.Tensor, attack: PGDSettings, seed: int, batch_size: int) -> PerturbationRatios:
    """The ratios of the outputs of the modules ``names`` of ``network`` (the convs; ``model``,
    which takes the [0, 1] images ``x``, runs it) for every image of ``x`` in batches of
    ``batch_size``, in eval mode (each module's mode restored after). One generator seeded with
    ``seed`` draws, batch by batch, the PGD start and then the sign noise."""
    captured: dict[str, torch.Tensor] = {}
    hooks = [network.get_submodule(name).register_forward_hook(
        lambda module, inputs, output, name=name: captured.__setitem__(name, output.detach())) for name in names]
    ratios: dict[str, dict[str, list[np.ndarray]]] = {kind: {name: [] for name in names} for kind in PERTURBATIONS}
    correct = {"clean": 0, "pgd": 0, "random": 0}
    generator = torch.Generator().manual_seed(seed)
    try:
        with evaluation_mode(model):
            for start in range(0, len(y), batch_size):
                xb, yb = x[start:start + batch_size], y[start:start + batch_size]
                with torch.enable_grad():
                    x_pgd = pgd_linf(model, xb, yb, eps=attack.eps, step_size=attack.step_size, steps=attack.steps,
                                     random_start=attack.random_start, generator=generator)
                noise = torch.rand(xb.shape, generator=generator) < 0.5
                x_random = (xb + attack.eps * (2 * noise.to(xb.dtype) - 1)).clamp(0, 1)
                with torch.no_grad():
                    correct["clean"] += int((model(xb).argmax(1) == yb).sum())
                    clean = dict(captured)
                    for kind, x_other in (("pgd", x_pgd), ("random", x_random)):
                        correct[kind] += int((model(x_other).argmax(1) == yb).sum())
                        for name in names:
                            ratios[kind][name].append(perturbation_ratio(clean[name].numpy(), captured[name].numpy()))
    finally:
        for hook in hooks:
            hook.remove()
    joined = {kind: {name: np.concatenate(parts) for name, parts in by_name.items()}
              for kind, by_name in ratios.items()}
    return PerturbationRatios(joined, correct, len(y))


def perturbation_table(result: PerturbationRatios, layers: Sequence[Layer], depth_groups: Mapping[str, str],
                       model_id: str, attack: PGDSettings) -> pd.DataFrame:
    """One row per layer: the mean and standard deviation of its PGD ratios and the mean of its
    random-noise ratios over the images (NaN ratios, of an all-zero output, left out), the
    attack and the accuracies."""
    rows = []
    for layer in layers:
        pgd = result.ratios["pgd"][layer.name]
        random = result.ratios["random"][layer.name]
        rows.append({"model_id": model_id, "layer_id": layer.layer_id, "name": layer.name,
                     "depth_group": depth_groups[layer.name], "n_images": result.n_images,
                     "perturbation_ratio": float(np.nanmean(pgd)), "perturbation_ratio_std": float(np.nanstd(pgd)),
                     "perturbation_ratio_random": float(np.nanmean(random)), "eps": attack.eps,
                     "steps": attack.steps, "step_size": attack.step_size,
                     "accuracy_clean": result.accuracy("clean"), "accuracy_pgd": result.accuracy("pgd")})
    return pd.DataFrame(rows)
