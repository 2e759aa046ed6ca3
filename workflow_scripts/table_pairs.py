"""Rule table_pairs: every robust/normal pair with its 3x3 filters and accuracies (TSV of
numbers; LaTeX and HTML as printed)."""

from filterlens.config.sheet import pairs, read_sheet
from filterlens.io.files import read_tsv
from filterlens.io.scripting import rule_script
from filterlens.report.formatting import formatted, write_table_files
from filterlens.report.paper_tables import pairs_table
from filterlens.report.style import dataset_label, dataset_order

CAPTION = ("Every robust model with its normal counterpart: architecture, 3x3 layers and filters, clean and "
           "robust accuracy of the robust model and clean accuracy of the normal one (%).")

with rule_script(snakemake) as log:
    sheet = read_sheet(snakemake.input.sheet)
    models = read_tsv(snakemake.input.models)
    model_pairs = pairs(sheet)
    order = {d: i for i, d in enumerate(dataset_order(model_pairs.dataset))}
    model_pairs = model_pairs.sort_values("dataset", key=lambda d: d.map(order), kind="stable")
    table = pairs_table(models, model_pairs)
    log.info("\n%s", table.to_string(index=False))
    printed = formatted(table.assign(dataset=table.dataset.map(dataset_label)), default_digits=2).rename(columns={
        "dataset": "Dataset", "architecture": "Architecture", "robust_model": "Robust model",
        "normal_model": "Normal model", "n_layers": "3x3 layers", "n_filters": "3x3 filters",
        "robust_clean_acc": "Robust clean acc.", "robust_robust_acc": "Robust robust acc.",
        "normal_clean_acc": "Normal clean acc.", "normal_n_filters": "Normal 3x3 filters",
        "accuracy_source": "Accuracy source"})
    write_table_files(snakemake.output, table, printed, CAPTION, "tab:pairs")
