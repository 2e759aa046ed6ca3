"""Rule global_coefficient_range: the one shared histogram range, min and max over every model of
the sheet, all components and all scaled filters, sparse ones included (docs/method.md §4)."""

import numpy as np
import pandas as pd

from filterlens.io.files import read_tsv, write_tsv
from filterlens.io.scripting import rule_script

with rule_script(snakemake) as log:
    ranges = pd.concat([read_tsv(path) for path in snakemake.input])
    finite = ranges[np.isfinite(ranges["min"]) & np.isfinite(ranges["max"])]
    if finite.empty:
        raise ValueError("no model has a 3x3 filter: there is no coefficient range to histogram")
    table = pd.DataFrame([{"min": finite["min"].min(), "max": finite["max"].max(), "n_models": ranges.model_id.nunique()}])
    log.info("global coefficient range: %r to %r", table["min"][0], table["max"][0])
    write_tsv(table, snakemake.output[0])
