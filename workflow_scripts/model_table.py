"""Rule model_table: one row per model with its filter counts and accuracies."""

import pandas as pd

from filterlens.config.sheet import read_sheet
from filterlens.extract.store import check_store_matches, open_filter_store, with_depth_definition
from filterlens.io.files import write_tsv
from filterlens.io.scripting import rule_script
from filterlens.report.paper_tables import model_table

with rule_script(snakemake) as log:
    sheet = read_sheet(snakemake.input.sheet)
    stores = [with_depth_definition(open_filter_store(path), snakemake.params.depth_definition)
              for path in snakemake.input.stores]
    for model, store in zip(sheet.model_id, stores, strict=True):  # the rule lists them in sheet order
        check_store_matches(store, model, sheet.loc[model, "dataset"])
    metrics = [pd.read_csv(path, sep="\t") for path in snakemake.input.metrics]
    table = model_table(sheet, stores, metrics)
    log.info("\n%s", table.to_string(index=False))
    write_tsv(table, snakemake.output[0])
