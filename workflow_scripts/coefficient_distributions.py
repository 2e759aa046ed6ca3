"""Rule coefficient_distributions: Fig. 3's data, the coefficient histograms on the full basis
pooled per dataset and training (unique pooling: each distinct model once, all layers)."""

import numpy as np

from filterlens.config.sheet import pairs, read_sheet
from filterlens.io.files import write_tsv
from filterlens.io.scripting import rule_script
from filterlens.report.figure_data import coefficient_distributions

with rule_script(snakemake) as log:
    sheet = read_sheet(snakemake.input.sheet)
    model_pairs = pairs(sheet)
    models = [m for m in sheet.model_id if m in set(model_pairs.robust) | set(model_pairs.normal)]
    histograms, ranges = {}, set()
    for model, path in zip(models, snakemake.input.histograms):
        with np.load(path) as data:
            histograms[model] = data["counts"]
            ranges.add((float(data["low"]), float(data["high"])))
    if len(ranges) != 1:
        raise ValueError(f"the models' histograms do not share one range: {sorted(ranges)}; "
                         "rerun coefficient_histograms")
    (low, high), = ranges
    table = coefficient_distributions(model_pairs, histograms, low, high)
    log.info("%d rows over [%r, %r]; counts per dataset and training:\n%s", len(table), low, high,
             table[table.component == 1].groupby(["dataset", "training"])["count"].sum().to_string())
    write_tsv(table, snakemake.output[0])
