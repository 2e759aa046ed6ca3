"""Rule fig9_filter_measures: Fig. 9, the filter measures of neighbouring work (docs/method.md §7) by depth
group, box plots over models of normal vs robust, one column per dataset, with the paired test's
marks above each group."""

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.transforms import blended_transform_factory

from filterlens.analyse.statistics import significance_mark
from filterlens.io.files import read_tsv
from filterlens.io.scripting import rule_script
from filterlens.method.depth_groups import DEPTH_GROUPS
from filterlens.method.measures import FILTER, drawn
from filterlens.report.style import (COLUMN_WIDTH, DEPTH_AXIS_LABEL, TEXT_WIDTH, TRAINING_COLORS, TRAINING_ORDER,
                                     apply_style, dataset_label, dataset_order, depth_group_label, save_figure)


def draw_marks(ax, stats, dataset, metric, alpha):
    """Above each depth group: the Holm-adjusted Wilcoxon mark (* ** ***), 'ns' where tested."""
    part = stats[(stats.dataset == dataset) & (stats.metric == metric)].set_index("depth_group")
    transform = blended_transform_factory(ax.transData, ax.transAxes)
    for x, group in enumerate(DEPTH_GROUPS):
        if group in part.index and np.isfinite(part.p_holm[group]):
            mark = significance_mark(part.p_holm[group], alpha) or "ns"
            ax.text(x, 1.0, mark, transform=transform, ha="center", va="bottom", fontsize=5,
                    color="0.1" if mark != "ns" else "0.55")


with rule_script(snakemake) as log:
    apply_style()
    alpha = snakemake.params.settings["alpha"]
    table = read_tsv(snakemake.input.table)
    stats = read_tsv(snakemake.input.stats)
    # models of unknown robustness (robust empty in the sheet) are in neither box
    table = table[table.depth_group.isin(DEPTH_GROUPS) & table.robust.isin([True, False])].copy()
    table["training"] = np.where(table.robust == True, "robust", "normal")  # noqa: E712
    rows = [(c, label) for c, label in drawn(FILTER) if c in table and table[c].notna().any()]
    datasets = dataset_order(table.dataset)
    fig, axes = plt.subplots(len(rows), len(datasets), squeeze=False, sharex=True, sharey="row",
                             figsize=(min(TEXT_WIDTH, COLUMN_WIDTH * max(1, len(datasets))), 1.3 * len(rows) + 0.4),
                             gridspec_kw={"hspace": 0.3, "wspace": 0.08})
    for c, dataset in enumerate(datasets):
        part = table[table.dataset == dataset]
        n_pairs = stats[(stats.dataset == dataset) & (stats.depth_group == "all")].n_pairs.max()
        for r, (column, label) in enumerate(rows):
            ax = axes[r, c]
            common = dict(data=part, x="depth_group", y=column, hue="training", order=DEPTH_GROUPS,
                          hue_order=TRAINING_ORDER, palette=TRAINING_COLORS, ax=ax)
            if part[column].notna().any():
                sns.boxplot(**common, width=0.75, linewidth=0.5, fliersize=0, showfliers=False,
                            boxprops={"alpha": 0.5})
                sns.stripplot(**common, dodge=True, size=1.8, jitter=0.15, linewidth=0, legend=False)
                draw_marks(ax, stats, dataset, column, alpha)
            ax.grid(axis="y", linewidth=0.3, alpha=0.5)
            ax.set_xlabel("")
            ax.set_ylabel(label if c == 0 else "")
            if r == 0:
                ax.set_title(f"{dataset_label(dataset)} ({n_pairs:.0f} pairs)", pad=8)
            if ax.get_legend() is not None:
                ax.get_legend().remove()
        axes[-1, c].set_xticks(range(len(DEPTH_GROUPS)), [depth_group_label(g) for g in DEPTH_GROUPS],
                               rotation=45, ha="right", rotation_mode="anchor")
        log.info("%s: %s", dataset, part.groupby("training").model_id.nunique().to_dict())
    fig.supxlabel(DEPTH_AXIS_LABEL, fontsize=7, y=0.0)
    handles = [plt.Rectangle((0, 0), 1, 1, color=TRAINING_COLORS[t], alpha=0.7) for t in TRAINING_ORDER]
    height = 1.3 * len(rows) + 0.4
    fig.subplots_adjust(top=1 - 0.45 / height, bottom=0.55 / height)
    fig.legend(handles, TRAINING_ORDER, loc="lower center", ncols=2, bbox_to_anchor=(0.5, 1 - 0.3 / height))
    save_figure(fig, [snakemake.output.pdf, snakemake.output.png])
