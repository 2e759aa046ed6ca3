"""Rule pca_bases: PCA bases of the sets full / robust / normal and of every model, from moments."""

import numpy as np

from filterlens.analyse.bases import bases_table, basis_arrays, basis_sets, set_moments
from filterlens.config.sheet import pairs, read_sheet
from filterlens.io.files import write_npz, write_tsv
from filterlens.io.scripting import rule_script
from filterlens.method.pca import pca
from filterlens.reduce.passes import LayerMoments

with rule_script(snakemake) as log:
    sheet = read_sheet(snakemake.input.sheet)
    moments = {}
    for model, path in zip(sheet.model_id, snakemake.input.moments):
        with np.load(path) as arrays:
            moments[model] = LayerMoments.from_arrays(arrays).scaled
    bases = {name: pca(set_moments(models, moments))
             for name, models in basis_sets(pairs(sheet), sheet.model_id).items()}
    table = bases_table(bases)
    log.info("\n%s", table[table.set.isin(["full", "robust", "normal"])]
             [["set", "component", "ratio", "cumulative_ratio"]].to_string(index=False))
    write_npz(snakemake.output.full, **basis_arrays(bases["full"]))
    write_tsv(table, snakemake.output.table)
