"""Rules stats_quality and stats_filter_measures: robust vs normal over the model pairs, per
dataset, depth group and metric: Wilcoxon signed-rank test, median paired difference and
rank-biserial correlation with seeded bootstrap intervals over pairs, Holm over the table."""

from filterlens.analyse.statistics import paired_comparisons
from filterlens.config.sheet import pairs, read_sheet
from filterlens.io.files import read_tsv, write_tsv
from filterlens.io.scripting import rule_script
from filterlens.method.depth_groups import DEPTH_GROUPS

with rule_script(snakemake) as log:
    settings = snakemake.params.settings
    model_pairs = pairs(read_sheet(snakemake.input.sheet))
    table = read_tsv(snakemake.input.table)
    metrics = [m for m in snakemake.params.metrics if m in table.columns]
    result = paired_comparisons(table, model_pairs, metrics, ["all", *DEPTH_GROUPS],
                                n_bootstrap=settings["n_bootstrap"], seed=settings["seed"],
                                level=settings["level"], alpha=settings["alpha"])
    result = result[result.n_pairs > 0].reset_index(drop=True)  # groups no model has
    log.info("%d pairs; %d tests in the Holm family\n%s", len(model_pairs), int(result.p_value.notna().sum()),
             result[result.depth_group == "all"].to_string(index=False))
    write_tsv(result, snakemake.output[0])
