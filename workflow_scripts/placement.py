"""Rule placement: each candidate's KL to the reference bundle's robust and normal pools, per
depth group, the bundle's noise level and which pool is closer beyond it (TSV and HTML)."""

import numpy as np

from filterlens.analyse.bundle import read_bundle
from filterlens.analyse.placement import definition_mismatches, placement_table, printed_placement
from filterlens.config.sheet import read_sheet
from filterlens.io.atomic import atomic_output
from filterlens.io.files import read_tsv, write_tsv
from filterlens.io.scripting import rule_script

with rule_script(snakemake) as log:
    bundle = read_bundle(snakemake.input.bundle)
    if problems := definition_mismatches(bundle, snakemake.params.depth_definition, snakemake.params.fold_batchnorm,
                                         snakemake.params.sparse_reference):
        raise ValueError(f"{snakemake.input.bundle} was made with other definitions: " + "; ".join(problems))
    sheet = read_sheet(snakemake.input.sheet)
    models = list(sheet.model_id)
    histograms, outside = {}, {}
    for model, path in zip(models, snakemake.input.histograms, strict=True):
        with np.load(path, allow_pickle=False) as data:
            histograms[model], outside[model] = data["counts"], data["outside"]
    layers = {m: read_tsv(p) for m, p in zip(models, snakemake.input.layers, strict=True)}
    table = placement_table(bundle, dict(zip(sheet.model_id, sheet.dataset)), histograms, outside, layers)
    printed = printed_placement(table)
    log.info("\n%s", printed.to_string(index=False))
    if bundle.noise is None:
        log.warning("%s holds no noise level (a bundle of format version 1), so no candidate is placed closer to "
                    "either pool. Fix: export the reference run again with filterlens export-bundle RUN_DIR ARCHIVE "
                    "(docs/bundle.md)", snakemake.input.bundle)
    write_tsv(table, snakemake.output.tsv)
    with atomic_output(snakemake.output.html) as temporary:
        printed.to_html(temporary, index=False)
