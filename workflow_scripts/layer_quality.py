"""Rule layer_quality: sparsity, variance entropy and orthogonality per model and depth group."""

import pandas as pd

from filterlens.analyse.quality import quality_by_depth, sparse_shares
from filterlens.config.sheet import read_sheet
from filterlens.io.files import read_tsv, write_tsv
from filterlens.io.scripting import rule_script

with rule_script(snakemake) as log:
    sheet = read_sheet(snakemake.input.sheet)
    layers = pd.concat([read_tsv(path) for path in snakemake.input.layers], ignore_index=True)
    by_depth = quality_by_depth(layers, sheet, snakemake.params.choices["entropy_weights"])
    shares = sparse_shares(layers, sheet)
    log.info("\n%s\n\n%s", by_depth[by_depth.depth_group == "all"].to_string(index=False), shares.to_string(index=False))
    write_tsv(layers, snakemake.output.layers)
    write_tsv(by_depth, snakemake.output.by_depth)
    write_tsv(shares, snakemake.output.sparse_shares)
