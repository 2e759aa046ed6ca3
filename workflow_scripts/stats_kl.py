"""Rule stats_kl: the weighted symmetric KL robust vs normal per dataset and depth group with a
bootstrap interval over models (a reweighting of per-model histogram counts) and a permutation
baseline (KL between random halves of the pooled models): what KL value is noise."""

from filterlens.analyse.bases import load_basis
from filterlens.analyse.kl import kl_statistics_table, read_paired_histograms
from filterlens.io.files import write_tsv
from filterlens.io.scripting import rule_script
from filterlens.method.depth_groups import DEPTH_GROUPS

with rule_script(snakemake) as log:
    settings = snakemake.params.settings
    model_pairs, histograms, layers, edges = read_paired_histograms(
        snakemake.input.sheet, snakemake.input.histograms, snakemake.input.layers)
    weights = load_basis(snakemake.input.basis).ratio
    table = kl_statistics_table(model_pairs, histograms, layers, weights, edges, DEPTH_GROUPS,
                                n_bootstrap=settings["n_bootstrap"], n_permutations=settings["n_permutations"],
                                seed=settings["seed"], level=settings["level"],
                                empty_bins=snakemake.params.choices["empty_bins"])
    log.info("\n%s", table.to_string(index=False))
    write_tsv(table, snakemake.output[0])
