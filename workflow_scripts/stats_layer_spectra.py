"""Rule layer_spectra: the singular values of every 3x3 layer of one model as a linear operator
on its input size (docs/method.md §7), exactly, by the FFT method (filterlens.method.filter_measures), summarised
per layer. Input sizes and strides come from a forward pass on the meta device (no compute)."""

import time

import pandas as pd
import torch

from filterlens.acquire.checkpoint import build_model, load_checkpoint
from filterlens.config.datasets import dataset_info
from filterlens.extract.weights import layer_rows, plan_extraction
from filterlens.io.files import read_tsv, write_tsv
from filterlens.io.scripting import rule_script, set_torch_threads
from filterlens.method.filter_measures import conv_singular_values, spectrum_summary
from filterlens.models.architectures import build_architecture


def input_sizes(checkpoint, image_size: int, names: set[str]) -> dict[str, tuple[int, int]]:
    """(H, W) of the input of each named conv at its first call, from a meta-device forward."""
    meta = build_architecture(checkpoint.architecture, checkpoint.arch_kwargs, checkpoint.num_classes, "meta")
    sizes = {}

    def record(name):
        def hook(module, inputs):
            sizes.setdefault(name, tuple(inputs[0].shape[-2:]))  # returns None: the input stays as it is
        return hook

    hooks = [module.register_forward_pre_hook(record(name)) for name, module in meta.named_modules() if name in names]
    with torch.no_grad():
        meta(torch.empty(1, 3, image_size, image_size, device="meta"))
    for hook in hooks:
        hook.remove()
    return sizes


with rule_script(snakemake) as log:
    set_torch_threads(snakemake.threads)
    checkpoint = load_checkpoint(snakemake.input.model, model_id=snakemake.wildcards.model)
    network = build_model(checkpoint)
    size = dataset_info(checkpoint.dataset).image_size
    plan = plan_extraction(network, torch.empty(1, 3, size, size, device="meta"),
                           fold_batchnorm=snakemake.params.fold_batchnorm)
    layers = read_tsv(snakemake.input.layers).set_index("name")
    sizes = input_sizes(checkpoint, size, {layer.name for layer in plan.layers})
    rows = []
    for layer in plan.layers:
        conv = plan.calls[layer.name].module
        h, w = sizes[layer.name]
        stride, dilation = conv.stride[0], conv.dilation[0]
        row = {"model_id": checkpoint.model_id, "layer_id": layer.layer_id, "name": layer.name,
               "depth_group": layers.depth_group[layer.name], "c_in": layer.c_in, "c_out": layer.c_out,
               "groups": layer.groups, "input_size": h, "stride": stride, "padding": conv.padding[0]}
        note = ""
        if h != w or conv.stride[0] != conv.stride[1] or h % stride:
            note = f"input {h}x{w} with stride {tuple(conv.stride)}: not a square multiple of the stride"
        elif dilation != 1 or conv.dilation[1] != 1:
            note = f"dilation {tuple(conv.dilation)} is not supported"
        start = time.monotonic()
        if note:
            values = []
            log.warning("%s: %s, left out (NaN)", layer.name, note)
        else:
            weight = layer_rows(network, plan, layer).reshape(layer.c_out, layer.c_in // layer.groups, 3, 3)
            values = conv_singular_values(weight, h, stride=stride, padding=conv.padding[0], groups=layer.groups)
        rows.append({**row, **spectrum_summary(values), "note": note})
        log.info("%s: input %dx%d, stride %d, %d singular values, spectral norm %.4g (%.2f s)", layer.name, h, w,
                 stride, len(values), rows[-1]["spectral_norm"], time.monotonic() - start)
    write_tsv(pd.DataFrame(rows), snakemake.output[0])
