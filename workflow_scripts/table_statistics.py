"""Rule table_statistics: robust vs normal with the test behind each comparison, whole models
(depth group 'all') per dataset: the KL with its bootstrap interval and permutation baseline, and
every layer-quality metric and filter measure with the Wilcoxon signed-rank test over pairs
(TSV of numbers; LaTeX and HTML as printed)."""

import numpy as np
import pandas as pd

from filterlens.io.files import read_tsv
from filterlens.io.scripting import rule_script
from filterlens.report.formatting import formatted, write_table_files
from filterlens.method.measures import LABELS
from filterlens.report.style import dataset_label


def paired_rows(table: pd.DataFrame) -> pd.DataFrame:
    part = table[table.depth_group == "all"]
    return pd.DataFrame({
        "dataset": part.dataset, "measure": part.metric.map(lambda m: LABELS.get(m, m)),
        "test": "Wilcoxon signed-rank over pairs", "n": part.n_pairs, "robust": part.mean_robust,
        "normal": part.mean_normal, "estimate": part.median_difference, "low": part.median_difference_low,
        "high": part.median_difference_high, "rank_biserial": part.rank_biserial, "p_value": part.p_value,
        "p_holm": part.p_holm,
        "note": np.where(part.n_nonzero == 0, "every pair equal",
                         np.where(part.can_reach_alpha, "",
                                  "exact p >= " + part.min_p.map("{:.3g}".format) + ": cannot reach alpha")),
    })


with rule_script(snakemake) as log:
    alpha = snakemake.params.settings["alpha"]
    level = snakemake.params.settings["level"]
    kl = read_tsv(snakemake.input.kl)
    kl = kl[kl.depth_group == "all"]
    kl_rows = pd.DataFrame({
        "dataset": kl.dataset, "measure": "weighted symmetric KL (" + kl.pooling + " pooling)",
        "test": "permutation: random halves of the pooled models", "n": kl.n_robust_models + kl.n_normal_models,
        "robust": np.nan, "normal": np.nan, "estimate": kl.kl, "low": kl.kl_low, "high": kl.kl_high,
        "rank_biserial": np.nan, "p_value": kl.p_permutation, "p_holm": np.nan,
        "note": "noise (95% of the null): " + kl.null_q95.map("{:.3g}".format),
    })
    table = pd.concat([kl_rows, paired_rows(read_tsv(snakemake.input.quality)),
                       paired_rows(read_tsv(snakemake.input.filter_measures))], ignore_index=True)
    log.info("\n%s", table.to_string(index=False))
    caption = (f"Robust vs normal, whole models, with the test behind each comparison. KL: estimate with a "
               f"{100 * level:.0f}% bootstrap interval over models, p from the permutation baseline. Other rows: "
               f"means of robust and normal models, median paired difference robust - normal with a "
               f"{100 * level:.0f}% bootstrap interval over pairs, rank-biserial correlation, Wilcoxon signed-rank "
               f"p and Holm-adjusted p (family: every test of its table); alpha = {alpha}.")
    printed = table.assign(dataset=table.dataset.map(dataset_label),
                           interval=[f"[{a:.3g}, {b:.3g}]" if np.isfinite(a) else "n/a"
                                     for a, b in zip(table.low, table.high)]).drop(columns=["low", "high"])
    printed = formatted(printed[["dataset", "measure", "test", "n", "robust", "normal", "estimate", "interval",
                                 "rank_biserial", "p_value", "p_holm", "note"]], default_digits=3).rename(columns={
        "dataset": "Dataset", "measure": "Measure", "test": "Test", "n": "n", "robust": "Robust", "normal": "Normal",
        "estimate": "Estimate", "interval": "Interval", "rank_biserial": "Rank-biserial", "p_value": "p",
        "p_holm": "p (Holm)", "note": "Note"})
    write_table_files(snakemake.output, table, printed, caption, "tab:statistics")
