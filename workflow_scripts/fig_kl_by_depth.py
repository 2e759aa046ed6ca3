"""Rule fig1_kl_by_depth: Fig. 1, weighted symmetric KL robust vs normal by depth group, a bar
per dataset (paired pooling, as the authors' by-depth analysis)."""

import _src_path  # noqa: F401  (puts ../src on sys.path)

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from filterlens.depthgroups import DEPTH_GROUPS
from filterlens.outputs import read_tsv
from filterlens.plotting import (COLUMN_WIDTH, DEPTH_AXIS_LABEL, apply_style, dataset_colors, dataset_label,
                                 dataset_order, depth_group_label, save_figure)
from filterlens.scripting import rule_script


with rule_script(snakemake) as log:
    apply_style()
    table = read_tsv(snakemake.input[0])
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
    ax.set_ylim(bottom=0)
    ax.legend(title=None, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=min(4, len(datasets)))
    save_figure(fig, [snakemake.output.pdf, snakemake.output.png])
