"""Rule kl_divergence: weighted symmetric KL robust vs normal, by dataset and by depth group."""

from filterlens.analyse.bases import load_basis
from filterlens.analyse.kl import kl_tables, read_paired_histograms
from filterlens.io.files import write_tsv
from filterlens.io.scripting import rule_script

with rule_script(snakemake) as log:
    model_pairs, histograms, layers, edges = read_paired_histograms(
        snakemake.input.sheet, snakemake.input.histograms, snakemake.input.layers)
    weights = load_basis(snakemake.input.basis).ratio
    choices = snakemake.params.choices
    by_dataset, by_depth, components = kl_tables(model_pairs, histograms, layers, weights, edges,
                                                 choices["empty_bins"], choices["kl_pooling"])
    log.info("\n%s\n\n%s", by_dataset.to_string(index=False), by_depth.to_string(index=False))
    write_tsv(by_dataset, snakemake.output.by_dataset)
    write_tsv(by_depth, snakemake.output.by_depth)
    write_tsv(components, snakemake.output.components)
