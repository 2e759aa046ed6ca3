"""Rule fig8_correlations: Fig. 8, Spearman's rho of every per-model measure with clean and
robust accuracy, with bootstrap intervals, per dataset and over all models."""

import matplotlib.pyplot as plt
import numpy as np

from filterlens.io.files import read_tsv
from filterlens.io.scripting import rule_script
from filterlens.method.measures import LABELS
from filterlens.report.style import COLUMN_WIDTH, apply_style, dataset_colors, dataset_label, dataset_order, save_figure

with rule_script(snakemake) as log:
    apply_style()
    alpha = snakemake.params.settings["alpha"]
    table = read_tsv(snakemake.input[0])
    measures = list(dict.fromkeys(table.measure))
    datasets = dataset_order(d for d in table.dataset if d != "all") + (["all"] if "all" in set(table.dataset) else [])
    colors = {**dataset_colors(d for d in datasets if d != "all"), "all": "#333333"}
    targets = [("clean_acc", "clean accuracy"), ("robust_acc", "robust accuracy")]
    fig, axes = plt.subplots(1, 2, sharey=True, figsize=(COLUMN_WIDTH * 1.6, 0.9 + 0.22 * len(measures)),
                             gridspec_kw={"wspace": 0.08})
    y = np.arange(len(measures))
    offsets = np.linspace(-0.25, 0.25, len(datasets)) if len(datasets) > 1 else [0.0]
    for ax, (target, title) in zip(axes, targets):
        part = table[table.accuracy == target]
        for offset, dataset in zip(offsets, datasets):
            rows = part[part.dataset == dataset].set_index("measure").reindex(measures)
            ok = rows.rho.notna().to_numpy()
            significant = (rows.p_holm < alpha).to_numpy()
            yy = y + offset
            ax.errorbar(rows.rho[ok], yy[ok], xerr=np.abs(np.vstack([rows.rho - rows.rho_low,
                                                                     rows.rho_high - rows.rho]))[:, ok],
                        fmt="none", ecolor=colors[dataset], elinewidth=0.6, capsize=0)
            for filled in (True, False):
                keep = ok & (significant == filled)
                ax.scatter(rows.rho[keep], yy[keep], s=12, marker="o", linewidths=0.7, zorder=3,
                           facecolors=colors[dataset] if filled else "white", edgecolors=colors[dataset],
                           label=(dataset_label(dataset) if dataset != "all" else "all models") if filled else None)
        ax.axvline(0, color="0.5", linewidth=0.5)
        ax.set_xlim(-1.05, 1.05)
        ax.set_title(f"Spearman rho with {title}")
        ax.set_xlabel("rho (bars: 95% bootstrap interval)")
        ax.grid(axis="x", linewidth=0.3, alpha=0.5)
    axes[0].set_yticks(y, [LABELS.get(m, m) for m in measures])
    axes[0].invert_yaxis()
    handles = [plt.Line2D([], [], marker="o", linestyle="", markersize=4, color=colors[d],
                          label=dataset_label(d) if d != "all" else "all models") for d in datasets]
    handles.append(plt.Line2D([], [], marker="o", linestyle="", markersize=4, markerfacecolor="white",
                              markeredgecolor="0.3", label=f"not significant (Holm, alpha {alpha})"))
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.98), ncols=min(5, len(handles)))
    log.info("\n%s", table.pivot_table(index="measure", columns=["dataset", "accuracy"], values="rho"))
    save_figure(fig, [snakemake.output.pdf, snakemake.output.png])
