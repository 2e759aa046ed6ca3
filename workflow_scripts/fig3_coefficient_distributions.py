"""Rule fig3_coefficient_distributions: Fig. 3, the distribution of the coefficients of every
scaled non-sparse filter on the full basis, per component (columns), rows dataset x
robust/normal (unique pooling)."""

import matplotlib.pyplot as plt
import numpy as np

from filterlens.io.files import read_tsv
from filterlens.io.scripting import rule_script
from filterlens.report.style import (TEXT_WIDTH, TRAINING_COLORS, TRAINING_ORDER, apply_style, dataset_label,
                                     dataset_order, save_figure)


def nice_tick(x: float) -> float:
    """The largest of 1, 2, 5 times a power of ten that is at most ``x``."""
    if x <= 0:
        return 1.0
    power = 10 ** np.floor(np.log10(x))
    return max(m * power for m in (1, 2, 5) if m * power <= x)


with rule_script(snakemake) as log:
    apply_style()
    table = read_tsv(snakemake.input[0])
    rows = [(d, t) for d in dataset_order(table.dataset) for t in TRAINING_ORDER]
    components = sorted(table.component.unique())
    low, high = float(table.bin_left.min()), float(table.bin_right.max())
    tick = nice_tick(max(abs(low), abs(high)) / 2)
    fig, axes = plt.subplots(len(rows), len(components), figsize=(TEXT_WIDTH, 0.62 * len(rows) + 0.45),
                             sharex=True, sharey="col", squeeze=False, gridspec_kw={"hspace": 0.15, "wspace": 0.12})
    for r, (dataset, training) in enumerate(rows):
        part = table[(table.dataset == dataset) & (table.training == training)]
        for c, component in enumerate(components):
            ax = axes[r, c]
            hist = part[part.component == component].sort_values("bin")
            edges = np.append(hist.bin_left.to_numpy(), hist.bin_right.to_numpy()[-1:])
            ax.stairs(hist.distribution.to_numpy(), edges, fill=True, color=TRAINING_COLORS[training], alpha=0.85,
                      linewidth=0)
            ax.axvline(0, color="0.4", linewidth=0.4, linestyle=":")
            ax.set_yticks([])
            ax.spines["left"].set_visible(False)
            if r == 0:
                ax.set_title(f"PC {component}", pad=3)
            if c == 0:
                ax.set_ylabel(f"{dataset_label(dataset)}\n{training}", rotation=0, ha="right", va="center",
                              labelpad=3, color=TRAINING_COLORS[training])
            ax.set_xlim(low, high)
            ax.set_xticks([-tick, 0, tick], [f"{-tick:g}".replace("-", "−"), "", f"{tick:g}"])
        log.info("%s %s: %d coefficients per component", dataset, training,
                 part[part.component == components[0]]["count"].sum())
    axes[-1, len(components) // 2].set_xlabel("coefficient on the full basis (scaled non-sparse filters)")
    save_figure(fig, [snakemake.output.pdf, snakemake.output.png])
