"""Rule fig_placement: each candidate against the reference bundle. Top: per depth group, its KL
to the reference's normal pool minus its KL to the robust pool, in units of the bundle's noise
level (above the grey band from -1 to 1: closer to robust; below it: closer to normal; no point
where either side has no filters or the group has no noise level; a bundle without any noise
level: the difference itself). Below: its layers' sparsity, variance entropy (config figures.entropy, as Fig. 7)
and orthogonality per depth group (markers) over the reference's robust and normal layers
(boxes, the candidates' first dataset)."""

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from filterlens.analyse.bundle import read_bundle
from filterlens.analyse.kl import ALL
from filterlens.io.files import read_tsv
from filterlens.io.scripting import rule_script
from filterlens.method.depth_groups import DEPTH_GROUPS
from filterlens.method.measures import QUALITY, drawn
from filterlens.report.style import (DEPTH_AXIS_LABEL, TEXT_WIDTH, TRAINING_COLORS, TRAINING_ORDER, apply_style,
                                     dataset_label, depth_group_label, save_figure)

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


def reference_layers(bundle, dataset):
    """The bundle's layer tables of the dataset's robust and normal models, with a training column."""
    pools = bundle.pools[(bundle.pools.dataset == dataset) & (bundle.pools.depth_group == ALL)]
    parts = [bundle.layers[model].assign(training=row.training)
             for row in pools.itertuples() for model in row.models.split(",")]
    return pd.concat(parts, ignore_index=True)


with rule_script(snakemake) as log:
    apply_style()
    metrics = drawn(QUALITY, snakemake.params.entropy)
    bundle = read_bundle(snakemake.input.bundle)
    placement = read_tsv(snakemake.input.placement)
    candidates = list(dict.fromkeys(placement.model_id))
    dataset = placement.dataset.iloc[0]
    reference = reference_layers(bundle, dataset)
    own = pd.concat([read_tsv(p) for p in snakemake.input.layers], ignore_index=True)
    x = {g: i for i, g in enumerate(DEPTH_GROUPS)}
    fig, axes = plt.subplots(1 + len(metrics), 1, sharex=True, figsize=(TEXT_WIDTH, 5.6),
                             gridspec_kw={"hspace": 0.15})
    # a group where the candidate or a pool has no filters has no KL (NaN): no point
    by_depth = placement[placement.depth_group.isin(DEPTH_GROUPS)]
    # In units of the noise level where the bundle has one (beyond +-1: a closer pool), else raw.
    with_noise = by_depth.noise.notna().any()
    scale = by_depth.noise if with_noise else 1.0
    if with_noise:
        known = by_depth.dropna(subset="noise").drop_duplicates("depth_group").depth_group.map(x)
        axes[0].bar(known, 2.0, bottom=-1.0, width=0.8, color="0.88", linewidth=0, label="within noise")
    axes[0].axhline(0, color="0.5", linewidth=0.4)
    for k, model in enumerate(candidates):
        part = by_depth[by_depth.model_id == model]
        gap = (part.kl_normal - part.kl_robust) / (scale[part.index] if with_noise else scale)
        axes[0].plot(part.depth_group.map(x) + 0.08 * k, gap, marker=MARKERS[k % len(MARKERS)], markersize=3,
                     linewidth=0.6, color="0.1", label=model)
    axes[0].set_ylabel("(KL to normal - KL\nto robust) / noise" if with_noise else "KL to normal\n- KL to robust")
    axes[0].text(1.005, 1, "closer to\nrobust", transform=axes[0].transAxes, fontsize=5, va="top",
                 color=TRAINING_COLORS["robust"])
    axes[0].text(1.005, 0, "closer to\nnormal", transform=axes[0].transAxes, fontsize=5, va="bottom",
                 color=TRAINING_COLORS["normal"])
    if not with_noise:
        axes[0].text(0.5, 0.95, "no noise level in the bundle: no pool is called closer", transform=axes[0].transAxes,
                     fontsize=5, ha="center", va="top")
    axes[0].legend(fontsize=5, ncol=4, frameon=False)
    axes[0].set_title(f"Candidates against the reference ({dataset_label(dataset)})", pad=4)
    for ax, (column, label) in zip(axes[1:], metrics):
        sns.boxplot(data=reference, x="depth_group", y=column, hue="training", order=DEPTH_GROUPS,
                    hue_order=TRAINING_ORDER, palette=TRAINING_COLORS, width=0.75, linewidth=0.5, showfliers=False,
                    boxprops={"alpha": 0.5}, ax=ax)
        for k, model in enumerate(candidates):
            layers = own[own.model_id == model]
            ax.scatter(layers.depth_group.map(x) + 0.08 * (k - (len(candidates) - 1) / 2), layers[column], s=6,
                       marker=MARKERS[k % len(MARKERS)], color="0.1", linewidths=0, label=model, zorder=3)
        ax.set_ylabel(label)
        ax.set_xlabel("")
        ax.grid(axis="y", linewidth=0.3, alpha=0.5)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    handles, labels = axes[1].get_legend_handles_labels()
    axes[1].legend(handles, labels, fontsize=5, ncol=4, frameon=False)
    axes[-1].set_xticks(range(len(DEPTH_GROUPS)), [depth_group_label(g) for g in DEPTH_GROUPS],
                        rotation=45, ha="right", rotation_mode="anchor")
    axes[-1].set_xlabel(DEPTH_AXIS_LABEL)
    log.info("candidates %s against %d reference layers of %s; noise level by depth group:\n%s", candidates,
             len(reference), dataset, by_depth.drop_duplicates("depth_group")[["depth_group", "noise"]].to_string())
    save_figure(fig, [snakemake.output.pdf, snakemake.output.png])
