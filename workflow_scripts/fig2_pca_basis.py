"""Rule fig2_pca_basis: Fig. 2, the nine 3x3 basis vectors of the sets full / robust / normal
with their explained variance ratios, and the cumulative explained variance of the three."""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.gridspec import GridSpec

from filterlens.io.files import read_tsv
from filterlens.io.scripting import rule_script
from filterlens.report.style import (SET_COLORS, SET_ORDER, TEXT_WIDTH, apply_style, diverging_cmap, save_figure,
                                     symmetric_norm)

with rule_script(snakemake) as log:
    apply_style()
    bases = read_tsv(snakemake.input[0])
    bases = bases[bases.set.isin(SET_ORDER)]
    sets = [s for s in SET_ORDER if s in set(bases.set)]
    vectors = [f"v{i}" for i in range(9)]
    cmap = diverging_cmap()
    norm = symmetric_norm(bases[vectors].to_numpy())  # one range for every basis vector

    fig = plt.figure(figsize=(TEXT_WIDTH, 0.78 * len(sets) + 0.35))
    # nine basis images, a thin colorbar, a spacer for the line plot's label, the line plot
    grid = GridSpec(len(sets), 12, figure=fig, width_ratios=[1] * 9 + [0.16, 2.0, 3.3], wspace=0.12, hspace=0.55)
    for row, name in enumerate(sets):
        part = bases[bases.set == name].sort_values("component")
        log.info("%s (%d filters): ratios %s", name, part.n_filters.iloc[0], np.round(part.ratio.to_numpy(), 4))
        for c, component in enumerate(part.itertuples()):
            ax = fig.add_subplot(grid[row, c])
            image = ax.imshow(np.array([getattr(component, v) for v in vectors]).reshape(3, 3), cmap=cmap, norm=norm)
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            ax.set_title(f"{100 * component.ratio:.1f} %", pad=2)
            if c == 0:
                ax.set_ylabel(f"{name}\n(n={int(component.n_filters):,})", rotation=0, ha="right", va="center",
                              labelpad=4)
    cbar = fig.colorbar(image, cax=fig.add_subplot(grid[:, 9]))
    cbar.ax.tick_params(length=2, labelsize=5)

    ax = fig.add_subplot(grid[:, 11])
    markers = {"full": "s", "robust": "o", "normal": "^"}
    for name in sets:
        part = bases[bases.set == name].sort_values("component")
        ax.plot(part.component, 100 * part.cumulative_ratio, marker=markers[name], markersize=3,
                color=SET_COLORS[name], label=name, linestyle="--" if name == "full" else "-", alpha=0.85,
                markerfacecolor="none" if name == "full" else SET_COLORS[name])
    ax.set_xticks(range(1, 10))
    ax.set_xlabel("component")
    ax.set_ylabel("cumulative explained variance (%)")
    ax.set_ylim(top=101)
    ax.legend(loc="lower right")
    ax.grid(axis="y", linewidth=0.3, alpha=0.5)
    save_figure(fig, [snakemake.output.pdf, snakemake.output.png])
