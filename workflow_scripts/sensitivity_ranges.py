"""Rule sensitivity_ranges: the histogram range of every variant whose pass 3 differs, from the
models' variant pass-2 summaries (filterlens.analyse.coefficient_range)."""

import pandas as pd

from filterlens.analyse.coefficient_range import SIGN_COLUMNS, shared_range
from filterlens.config.sheet import pairs, read_sheet
from filterlens.io.files import read_tsv, write_tsv
from filterlens.io.scripting import rule_script
from filterlens.method.choices import Settings, pass_variants

with rule_script(snakemake) as log:
    settings = Settings(**snakemake.params.choices)
    sheet_pairs = pairs(read_sheet(snakemake.input.sheet))
    paired = {*sheet_pairs.robust, *sheet_pairs.normal}
    ranges = pd.concat([read_tsv(path) for path in snakemake.input.ranges])
    rows = []
    for name, variant in pass_variants(settings, "coefficient_histograms").items():
        low, high, signs, n_models = shared_range(ranges[ranges.variant == name].to_dict("records"), paired,
                                                  variant.histogram_range, variant.pca_sign)
        log.info("%s: range %r to %r, component signs %s", name, low, high, signs)
        rows.append({"variant": name, "min": low, "max": high, "n_models": n_models, **dict(zip(SIGN_COLUMNS, signs))})
    write_tsv(pd.DataFrame(rows, columns=["variant", "min", "max", "n_models", *SIGN_COLUMNS]), snakemake.output[0])
