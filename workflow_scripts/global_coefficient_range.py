"""Rule global_coefficient_range: the one shared histogram range, min and max over every model of
the sheet, all components and all scaled filters, sparse ones included (docs/method.md §4); or as
analysis.histogram_range and analysis.pca_sign choose (filterlens.analyse.coefficient_range)."""

import pandas as pd

from filterlens.analyse.coefficient_range import SIGN_COLUMNS, shared_range
from filterlens.config.sheet import pairs, read_sheet
from filterlens.io.files import read_tsv, write_tsv
from filterlens.io.scripting import rule_script
from filterlens.method.choices import Settings

with rule_script(snakemake) as log:
    settings = Settings(**snakemake.params.choices)
    sheet_pairs = pairs(read_sheet(snakemake.input.sheet))
    ranges = pd.concat([read_tsv(path) for path in snakemake.input.ranges])
    low, high, signs, n_models = shared_range(ranges.to_dict("records"), {*sheet_pairs.robust, *sheet_pairs.normal},
                                              settings.histogram_range, settings.pca_sign)
    table = pd.DataFrame([{"min": low, "max": high, "n_models": n_models}])
    if settings.pca_sign == "u_based":
        table[SIGN_COLUMNS] = [signs]
    log.info("global coefficient range (%s, %s): %r to %r", settings.histogram_range, settings.pca_sign, low, high)
    write_tsv(table, snakemake.output[0])
