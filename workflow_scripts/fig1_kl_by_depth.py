"""Rule fig1_kl_by_depth: Fig. 1, weighted symmetric KL robust vs normal by depth group, a bar
per dataset (paired pooling, as the authors' by-depth analysis), with the bootstrap interval over
models, the noise level of the permutation baseline and marks of its test (results/analysis/stats_kl.tsv)."""

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from filterlens.analyse.kl import depth_group_tests
from filterlens.analyse.statistics import significance_mark
from filterlens.io.files import read_tsv
from filterlens.io.scripting import rule_script
from filterlens.method.depth_groups import DEPTH_GROUPS
from filterlens.report.style import (COLUMN_WIDTH, DEPTH_AXIS_LABEL, apply_style, dataset_colors, dataset_label,
                                     dataset_order, depth_group_label, save_figure)

with rule_script(snakemake) as log:
    apply_style()
    table = read_tsv(snakemake.input.kl)
    alpha = snakemake.params.alpha
    stats = depth_group_tests(read_tsv(snakemake.input.stats), DEPTH_GROUPS)
    # a group without filters on either side has no divergence to show (not a KL of 0)
    empty = (table.n_robust_filters == 0) | (table.n_normal_filters == 0)
    table.loc[empty, "kl"] = np.nan
    datasets = dataset_order(table.dataset)
    colors = dataset_colors(datasets)
    table["Dataset"] = table.dataset.map(dataset_label)
    log.info("\n%s", table.pivot(index="depth_group", columns="dataset", values="kl").reindex(DEPTH_GROUPS))

    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 1.9))
    sns.barplot(table, x="depth_group", y="kl", hue="Dataset", order=DEPTH_GROUPS,
                hue_order=[dataset_label(d) for d in datasets],
                palette={dataset_label(d): c for d, c in colors.items()}, ax=ax, width=0.8, linewidth=0)
    ax.set_xticks(range(len(DEPTH_GROUPS)), [depth_group_label(g) for g in DEPTH_GROUPS], rotation=45, ha="right",
                  rotation_mode="anchor")
    ax.set_xlabel(DEPTH_AXIS_LABEL)
    ax.set_ylabel("weighted symmetric KL")
    # bootstrap interval (black) and the permutation null's 95% quantile (grey tick) on each bar
    width = 0.8 / len(datasets)
    indexed = stats.set_index(["dataset", "depth_group"])
    for i, dataset in enumerate(datasets):
        for x, group in enumerate(DEPTH_GROUPS):
            if (dataset, group) not in indexed.index:
                continue
            row = indexed.loc[(dataset, group)]
            if not np.isfinite(row.kl):
                continue
            centre = x - 0.4 + (i + 0.5) * width
            ax.plot([centre, centre], [row.kl_low, row.kl_high], color="black", linewidth=0.6)
            ax.plot([centre - width * 0.45, centre + width * 0.45], [row.null_q95] * 2, color="0.45",
                    linewidth=1.2, solid_capstyle="butt")
            mark = significance_mark(row.p_holm, alpha)
            if mark:
                ax.text(centre, max(row.kl_high, row.kl), mark, ha="center", va="bottom", fontsize=5)
    log.info("\n%s", stats[["dataset", "depth_group", "kl", "kl_low", "kl_high", "null_q95", "p_permutation",
                            "p_holm"]].to_string(index=False))
    ax.set_ylim(bottom=0)
    # an empty group is written as such, so that no bar is not read as a KL of 0
    for i, dataset in enumerate(datasets):
        for x, group in enumerate(DEPTH_GROUPS):
            rows = table[(table.dataset == dataset) & (table.depth_group == group)]
            if len(rows) and rows.kl.isna().all():
                ax.text(x - 0.4 + (i + 0.5) * width, 0, "no filters", rotation=90, ha="center", va="bottom",
                        fontsize=4, color="0.45")
    handles, labels = ax.get_legend_handles_labels()
    handles += [plt.Line2D([], [], color="black", linewidth=0.6), plt.Line2D([], [], color="0.45", linewidth=1.2)]
    labels += ["95% bootstrap interval", "noise: 95% of permutation null"]
    ax.legend(handles, labels, title=None, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=2)
    save_figure(fig, [snakemake.output.pdf, snakemake.output.png])
