"""Rule filter_measures: the filter measures of neighbouring work (docs/method.md §7) per model and depth
group, merged from the per-model summaries: L1/L2 ratio and high-frequency share (pass 1's
layers.tsv), singular values (spectra.tsv), perturbation-to-signal ratios (perturbation.tsv,
only models whose test data the workflow holds)."""

import pandas as pd

from filterlens.analyse.filter_measures import filter_measures_by_depth
from filterlens.config.sheet import read_sheet
from filterlens.io.files import read_tsv, write_tsv
from filterlens.io.scripting import rule_script


def concat(paths):
    return pd.concat([read_tsv(p) for p in paths], ignore_index=True) if len(paths) else None


with rule_script(snakemake) as log:
    sheet = read_sheet(snakemake.input.sheet)
    table = filter_measures_by_depth(concat(snakemake.input.layers), concat(snakemake.input.spectra),
                                     concat(snakemake.input.perturbation), sheet)
    log.info("\n%s", table[table.depth_group == "all"].to_string(index=False))
    write_tsv(table, snakemake.output[0])
