"""Rule layer_spectra: the singular values of every 3x3 layer of one model as a linear operator
on its input size (docs/method.md §7), exactly, by the FFT method, summarised per layer
(filterlens.probe.model_measures). Input sizes come from a forward pass on the meta device (no compute)."""

import torch

from filterlens.acquire.checkpoint import build_model, load_checkpoint
from filterlens.config.datasets import dataset_info
from filterlens.extract.weights import plan_extraction
from filterlens.io.files import read_tsv, write_tsv
from filterlens.io.scripting import rule_script, set_torch_threads
from filterlens.probe.model_measures import conv_input_sizes, spectra_table
from filterlens.models.architectures import build_architecture

# The last line of a failed job's log: the model (its wildcard) and how to go on without spectra.
FIX = ("leave the spectra out of the run with `analysis: {spectra: false}` in a config file given last "
       "(--configfile ... yours.yaml); the other analyses do not need them")

with rule_script(snakemake, fix=FIX) as log:
    set_torch_threads(snakemake.threads)
    checkpoint = load_checkpoint(snakemake.input.model, model_id=snakemake.wildcards.model)
    network = build_model(checkpoint)
    size = dataset_info(checkpoint.dataset).image_size
    plan = plan_extraction(network, torch.empty(1, 3, size, size, device="meta"),
                           fold_batchnorm=snakemake.params.fold_batchnorm)
    depth_groups = read_tsv(snakemake.input.layers).set_index("name").depth_group
    meta = build_architecture(checkpoint.architecture, checkpoint.arch_kwargs, checkpoint.num_classes, "meta")
    sizes = conv_input_sizes(meta, torch.empty(1, 3, size, size, device="meta"), {layer.name for layer in plan.layers})
    write_tsv(spectra_table(network, plan, sizes, depth_groups, checkpoint.model_id, log), snakemake.output[0])
