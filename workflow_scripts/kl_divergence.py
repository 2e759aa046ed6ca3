"""Rule kl_divergence: weighted symmetric KL robust vs normal, by dataset and by depth group."""

import _src_path  # noqa: F401  (puts ../src on sys.path)

import numpy as np

from filterlens.analysis import kl_tables, load_basis
from filterlens.outputs import read_tsv, write_tsv
from filterlens.scripting import rule_script
from filterlens.sheet import pairs, read_sheet

with rule_script(snakemake) as log:
    sheet = read_sheet(snakemake.input.sheet)
    model_pairs = pairs(sheet)
    models = [m for m in sheet.model_id if m in set(model_pairs.robust) | set(model_pairs.normal)]
    histograms, layers = {}, {}
    for model, hist_path, layers_path in zip(models, snakemake.input.histograms, snakemake.input.layers):
        with np.load(hist_path) as data:
            histograms[model] = data["counts"]
        layers[model] = read_tsv(layers_path)
    weights = load_basis(snakemake.input.basis).ratio
    by_dataset, by_depth, components = kl_tables(model_pairs, histograms, layers, weights)
    log.info("\n%s\n\n%s", by_dataset.to_string(index=False), by_depth.to_string(index=False))
    write_tsv(by_dataset, snakemake.output.by_dataset)
    write_tsv(by_depth, snakemake.output.by_depth)
    write_tsv(components, snakemake.output.components)
