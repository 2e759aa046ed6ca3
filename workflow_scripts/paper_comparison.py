"""Rule paper_comparison: each headline number of the paper (config/reference/authors_values.tsv)
beside this run's (n/a where this run lacks the dataset), then this run's numbers for datasets
the paper did not have. A difference is given only where this run's zoo of the dataset is the
paper's and its filters are extracted as the authors' (like with like); elsewhere the
difference column says why not ("different zoo", "different definitions")."""

import pandas as pd

from filterlens.config.sheet import read_sheet
from filterlens.io.files import read_tsv
from filterlens.io.scripting import rule_script
from filterlens.report.formatting import format_by_unit, formatted, write_table_files
from filterlens.report.paper_tables import NO_FILTERS, paper_comparison, this_run_values, zoo_comparability
from filterlens.report.style import dataset_label

CAPTION = ("Headline numbers of Gavrikov and Keuper (2022) beside this run's: KL in nats (unique pooling is the "
           "paper's text and the default), shares, accuracies and variance ratios in %. A difference is given only "
           "where this run's zoo is the paper's (same models) with the same definitions; elsewhere the difference "
           "column says why not.")

with rule_script(snakemake) as log:
    authors = pd.read_csv(snakemake.input.authors, sep="\t", comment="#")
    ours = this_run_values(read_tsv(snakemake.input.kl_by_dataset), read_tsv(snakemake.input.kl_by_depth),
                           read_tsv(snakemake.input.sparse_shares), read_tsv(snakemake.input.summary),
                           read_tsv(snakemake.input.bases))
    comparability = zoo_comparability(read_sheet(snakemake.input.sheet), read_sheet(snakemake.input.paper_sheet),
                                      snakemake.params.fold_batchnorm, snakemake.params.filterdb_models,
                                      snakemake.params.changed)
    log.info("comparability:\n%s", comparability.to_string(index=False))
    table = paper_comparison(authors, ours, comparability)
    log.info("\n%s", table.drop(columns=["description", "source"]).to_string(index=False))
    printed = table.assign(dataset=table.dataset.map(lambda d: "all" if d == "all" else dataset_label(d)))
    for column in ("authors_value", "this_run", "difference"):
        printed[column] = [format_by_unit(v, u) for v, u in zip(printed[column], printed.unit)]
    printed["this_run"] = printed.this_run.where(printed.comparison != NO_FILTERS, NO_FILTERS)
    compared = printed.comparison == "same zoo and definitions"
    printed["difference"] = printed.difference.where(compared, printed.comparison)
    printed = formatted(printed.drop(columns=["metric", "comparison"])).rename(columns={
        "dataset": "Dataset", "description": "Number", "unit": "Unit", "authors_value": "Authors",
        "this_run": "This run", "difference": "Difference", "source": "Source"})
    # the long source notes only on the HTML page
    write_table_files(snakemake.output, table, printed.drop(columns=["Source"]), CAPTION, "tab:paper-comparison",
                      html_printed=printed)
