"""Rule findings: for each of the paper's findings, its direction in the paper, this run's value
and whether this run shows it (filterlens.analyse.findings); with the sensitivity analysis, under
how many of the variants (one documented choice changed alone) it holds."""

from filterlens.analyse.findings import paper_findings
from filterlens.analyse.sensitivity import holds_counts
from filterlens.config.sheet import pairs, read_sheet
from filterlens.io.files import read_tsv
from filterlens.io.scripting import rule_script
from filterlens.report.formatting import formatted, write_table_files
from filterlens.report.style import dataset_label

CAPTION = ("Findings of Gavrikov and Keuper (2022): the paper's direction, this run's value, and whether this run "
           "shows the finding by the criterion given.")
SENSITIVITY_CAPTION = (" Holds under: of the variants that change one documented choice (the sensitivity table), "
                       "how many show it too, of those where it can be evaluated.")

with rule_script(snakemake) as log:
    choices = snakemake.params.choices
    table = paper_findings(read_tsv(snakemake.input.bases), read_tsv(snakemake.input.sparse_shares),
                           read_tsv(snakemake.input.quality), read_tsv(snakemake.input.stats_kl),
                           read_tsv(snakemake.input.models), pairs(read_sheet(snakemake.input.sheet)),
                           entropy=choices["entropy"], pooling=choices["kl_pooling"], boxes=choices["boxes"])
    caption = CAPTION
    if "sensitivity" in snakemake.input.keys():
        counts = holds_counts(read_tsv(snakemake.input.sensitivity))
        table["holds_under"] = [f"{counts.holds.get(f'finding/{i}', 0)} of {counts.evaluated.get(f'finding/{i}', 0)}"
                                for i in range(len(table))]
        caption += SENSITIVITY_CAPTION
    log.info("\n%s", table.to_string(index=False))
    printed = table.assign(
        dataset=table.dataset.map(lambda d: "all" if d == "all" else dataset_label(d)),
        shown=table.shown.map(lambda v: "n/a" if v != v else ("shown" if v else "not shown")))
    printed = formatted(printed).rename(columns={
        "finding": "Finding", "source": "Paper", "dataset": "Dataset", "paper": "Paper's direction",
        "this_run": "This run", "criterion": "Criterion", "shown": "Shown", "holds_under": "Holds under"})
    write_table_files(snakemake.output, table, printed, caption, "tab:findings")
