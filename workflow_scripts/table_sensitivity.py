"""Rule table_sensitivity: every finding and headline number under the configured choices and
under each documented choice changed alone: the value and whether it holds."""

import numpy as np

from filterlens.analyse.sensitivity import FINDING, wide
from filterlens.io.files import read_tsv
from filterlens.io.scripting import rule_script
from filterlens.method.choices import NOT_SHARED
from filterlens.report.formatting import write_table_files

CAPTION = ("Each of the paper's findings and headline numbers under the configured choices (default) and with one "
           "documented choice changed (docs/method.md): the value and whether it holds (yes / no; n/a where it "
           "cannot be evaluated). Not computed: " + "; ".join(f"{k}: {v}" for k, v in NOT_SHARED.items()) + ".")


def cell(value, holds, text):
    shown = "n/a" if holds != holds else ("yes" if holds else "no")
    if text:
        return f"{text} ({shown})"
    return shown if value != value else f"{value:.4g} ({shown})"


with rule_script(snakemake) as log:
    analysis = read_tsv(snakemake.input[0])
    table, variants = wide(analysis)
    texts = {(r.variant, r.row): r.text for r in analysis.itertuples() if r.kind == FINDING}
    printed = table[["label", "dataset", "depth_group"]].fillna("").rename(
        columns={"label": "Finding or number", "dataset": "Dataset", "depth_group": "Depth group"})
    for variant in variants:
        printed[variant] = [cell(value, holds, texts.get((variant, row), "")) for row, value, holds in
                            zip(table.row, table[variant], table[f"{variant} holds"])]
    changed = {v: int(np.sum(table[f"{v} holds"].fillna(-1) != table[f"{variants[0]} holds"].fillna(-1)))
               for v in variants[1:]}
    log.info("rows whose verdict differs from the default's, per variant: %s", changed)
    write_table_files(snakemake.output, table, printed, CAPTION, "tab:sensitivity")
