"""Rule fig_sensitivity: which findings and headline numbers hold under which documented choice:
one row each, one column for the configured choices and one per choice changed alone; a cell
marked where its verdict differs from the default's."""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from filterlens.analyse.sensitivity import FINDING, wide
from filterlens.io.files import read_tsv
from filterlens.io.scripting import rule_script
from filterlens.report.style import TEXT_WIDTH, apply_style, save_figure

with rule_script(snakemake) as log:
    apply_style()
    table, variants = wide(read_tsv(snakemake.input[0]))
    holds = table[[f"{v} holds" for v in variants]].to_numpy(dtype=float)
    codes = np.where(np.isnan(holds), 0, np.where(holds > 0, 2, 1))  # n/a, does not hold, holds
    colors = ["#dddddd", "#d55e00", "#0173b2"]
    labels = [(f"{r.label} [{r.dataset}" + (f", {r.depth_group}]" if r.depth_group and r.depth_group != "all" else "]"))
              if r.kind != FINDING else f"FINDING: {r.label} [{r.dataset}]" for r in table.itertuples()]
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH, 1.8 + 0.13 * len(table)))
    ax.pcolormesh(codes, cmap=ListedColormap(colors), vmin=0, vmax=2, edgecolors="white", linewidth=0.4)
    moved = (codes != codes[:, :1]) & (np.arange(len(variants)) > 0)
    ys, xs = np.nonzero(moved)
    ax.scatter(xs + 0.5, ys + 0.5, marker="x", s=10, color="black", linewidths=0.7)
    ax.set_xlim(0, len(variants))
    ax.set_ylim(len(table), 0)
    ax.xaxis.tick_top()
    ax.set_xticks(np.arange(len(variants)) + 0.5, variants, rotation=40, ha="left", rotation_mode="anchor",
                  fontsize=6)
    ax.set_yticks(np.arange(len(table)) + 0.5, labels, fontsize=4.5)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    handles = [Patch(color=colors[2], label="holds"), Patch(color=colors[1], label="does not hold"),
               Patch(color=colors[0], label="n/a"),
               plt.Line2D([], [], marker="x", linestyle="", color="black", label="verdict differs from default")]
    ax.legend(handles=handles, loc="upper center", ncols=4, bbox_to_anchor=(0.5, -0.01), frameon=False)
    log.info("cells whose verdict differs from the default's: %d", int(moved.sum()))
    save_figure(fig, [snakemake.output.pdf, snakemake.output.png])
