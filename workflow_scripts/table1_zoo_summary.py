"""Rule table1_zoo_summary: Table 1 per dataset (TSV of numbers; LaTeX and HTML as printed)."""

import math
import os

import pandas as pd

from filterlens.config.sheet import pairs, read_sheet
from filterlens.io.files import read_tsv
from filterlens.io.scripting import rule_script
from filterlens.report.formatting import write_table_files
from filterlens.report.paper_tables import zoo_summary, zoo_summary_sources
from filterlens.report.style import dataset_label, dataset_order

CAPTION = ("The zoo per dataset: mean ± std over robust models of their 3x3 filters (millions); clean accuracy "
           "of the normal models (mean over pairs); clean and robust accuracy of the robust models (%). ")


def pm(mean: float, std: float, digits: int) -> str:
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.{digits}f}" + ("" if math.isnan(std) else f" ± {std:.{digits}f}")


with rule_script(snakemake) as log:
    sheet = read_sheet(snakemake.input.sheet)
    models = read_tsv(snakemake.input.models)
    model_pairs = pairs(sheet)
    table = zoo_summary(models, model_pairs, dataset_order(model_pairs.dataset))
    log.info("\n%s", table.to_string(index=False))
    printed = pd.DataFrame({
        "Dataset": table.dataset.map(dataset_label),
        "Robust models": table.n_robust.astype(str),
        "Normal models": table.n_normal.astype(str),
        "3x3 filters [M]": [pm(m, s, 3) for m, s in zip(table.filters_m_mean, table.filters_m_std)],
        "Normal clean acc.": [pm(m, s, 2) for m, s in zip(table.normal_clean_acc_mean, table.normal_clean_acc_std)],
        "Robust clean acc.": [pm(m, s, 2) for m, s in zip(table.robust_clean_acc_mean, table.robust_clean_acc_std)],
        "Robust robust acc.": [pm(m, s, 2) for m, s in zip(table.robust_robust_acc_mean, table.robust_robust_acc_std)],
    })
    sheet_label = os.path.relpath(snakemake.input.sheet)
    if sheet_label.startswith(".."):
        sheet_label = os.path.basename(snakemake.input.sheet)
    caption = CAPTION + zoo_summary_sources(table, {d: dataset_label(d) for d in table.dataset}, sheet_label)
    log.info("caption: %s", caption)
    write_table_files(snakemake.output, table, printed, caption, "tab:zoo-summary", html_caption="Table 1. " + caption)
