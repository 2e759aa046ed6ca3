"""Rule fig7_layer_quality: Fig. 7, sparsity, variance entropy and orthogonality by depth group,
box plots over the robust/normal pairings (a counterpart counts once per pair, as the authors'
boxes), one column per dataset; above each group the mark of the Wilcoxon signed-rank test over
pairs, Holm-adjusted (results/analysis/stats_quality.tsv)."""

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from filterlens.analyse.statistics import significance_mark
from filterlens.config.sheet import pairs, read_sheet
from filterlens.io.files import read_tsv
from filterlens.io.scripting import rule_script
from filterlens.method.depth_groups import DEPTH_GROUPS
from filterlens.method.measures import QUALITY, drawn
from filterlens.report.figure_data import quality_over_pairings
from filterlens.report.style import (COLUMN_WIDTH, DEPTH_AXIS_LABEL, TEXT_WIDTH, TRAINING_COLORS, TRAINING_ORDER,
                                     apply_style, dataset_label, dataset_order, depth_group_label, save_figure)

with rule_script(snakemake) as log:
    apply_style()
    metrics = drawn(QUALITY, snakemake.params.entropy)
    table = quality_over_pairings(read_tsv(snakemake.input.quality), pairs(read_sheet(snakemake.input.sheet)),
                                  snakemake.params.boxes)
    stats = read_tsv(snakemake.input.stats)
    alpha = snakemake.params.alpha
    table = table[table.depth_group.isin(DEPTH_GROUPS)].copy()
    datasets = dataset_order(table.dataset)
    fig, axes = plt.subplots(len(metrics), len(datasets), squeeze=False, sharex=True, sharey="row",
                             figsize=(min(TEXT_WIDTH, COLUMN_WIDTH * max(1, len(datasets))), 3.9),
                             gridspec_kw={"hspace": 0.2, "wspace": 0.08})
    for c, dataset in enumerate(datasets):
        part = table[table.dataset == dataset]
        log.info("%s: entries per box (pairings) %s, distinct models %s", dataset,
                 part[part.depth_group == DEPTH_GROUPS[1]].groupby("training").pair.nunique().to_dict(),
                 part.groupby("training").model_id.nunique().to_dict())
        for r, (column, label) in enumerate(metrics):
            ax = axes[r, c]
            common = dict(data=part, x="depth_group", y=column, hue="training", order=DEPTH_GROUPS,
                          hue_order=TRAINING_ORDER, palette=TRAINING_COLORS, ax=ax)
            sns.boxplot(**common, width=0.75, linewidth=0.5, fliersize=0, showfliers=False, boxprops={"alpha": 0.5})
            sns.stripplot(**common, dodge=True, size=1.8, jitter=0.15, linewidth=0, legend=False)
            tested = stats[(stats.dataset == dataset) & (stats.metric == column)].set_index("depth_group")
            for x, group in enumerate(DEPTH_GROUPS):
                if group in tested.index and np.isfinite(tested.p_holm[group]):
                    mark = significance_mark(tested.p_holm[group], alpha) or "ns"
                    ax.text(x, 1.0, mark, transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=5,
                            color="0.1" if mark != "ns" else "0.55")
            ax.grid(axis="y", linewidth=0.3, alpha=0.5)
            ax.set_xlabel("")
            ax.set_ylabel(label if c == 0 else "")
            if r == 0:
                n_pairs = stats[(stats.dataset == dataset) & (stats.depth_group == "all")].n_pairs.max()
                ax.set_title(f"{dataset_label(dataset)} ({n_pairs:.0f} pairs)", pad=8)
            if ax.get_legend() is not None:
                ax.get_legend().remove()
        axes[-1, c].set_xticks(range(len(DEPTH_GROUPS)), [depth_group_label(g) for g in DEPTH_GROUPS],
                               rotation=45, ha="right", rotation_mode="anchor")
    axes[0, 0].set_ylim(-0.03, 1.03)
    axes[1, 0].axhline(np.log10(9), color="0.5", linewidth=0.5, linestyle=":")  # uniform variance
    fig.supxlabel(DEPTH_AXIS_LABEL, fontsize=7, y=0.0)
    handles = [plt.Rectangle((0, 0), 1, 1, color=TRAINING_COLORS[t], alpha=0.7) for t in TRAINING_ORDER]
    fig.subplots_adjust(top=0.88)
    fig.legend(handles, TRAINING_ORDER, loc="lower center", ncols=2, bbox_to_anchor=(0.5, 0.94))
    save_figure(fig, [snakemake.output.pdf, snakemake.output.png])
