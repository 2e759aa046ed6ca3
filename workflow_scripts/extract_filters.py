"""Rule extract_filters: every executed 3x3 conv of a model into its Zarr filter store."""

import torch

from filterlens.acquire.checkpoint import build_model, load_checkpoint
from filterlens.config.datasets import dataset_info
from filterlens.extract.weights import iter_layer_rows, plan_extraction, write_filter_store
from filterlens.io.hashing import sha256_of
from filterlens.io.scripting import rule_script

with rule_script(snakemake) as log:
    settings = snakemake.params.extraction
    # The file must hold the sheet row's model and dataset (not another model's weights).
    checkpoint = load_checkpoint(snakemake.input[0], model_id=snakemake.wildcards.model,
                                 dataset=snakemake.params.dataset)
    model = build_model(checkpoint)
    size = dataset_info(checkpoint.dataset).image_size
    # Only used if fx cannot trace the model: a meta tensor runs the forward without compute.
    example = torch.empty(1, 3, size, size, device="meta")
    plan = plan_extraction(model, example, fold_batchnorm=settings["fold_batchnorm"])
    # Every layer records its depth under each definition (docs/method.md); analyses choose one
    # (analysis.depth_definition) without extracting again.
    log.info("%s: %d 3x3 layers, %d filters, depth by %s (max conv depth %s), BatchNorm %s", checkpoint.model_id,
             len(plan.layers), plan.n_filters, plan.depth_method, plan.max_conv_depths,
             "folded" if settings["fold_batchnorm"] else "not folded (raw weights)")
    write_filter_store(snakemake.output[0], plan, iter_layer_rows(model, plan), settings["chunk_rows"],
                       model_id=checkpoint.model_id, dataset=checkpoint.dataset,
                       architecture=checkpoint.architecture, arch_kwargs=checkpoint.arch_kwargs,
                       checkpoint_sha256=sha256_of(snakemake.input[0]))
