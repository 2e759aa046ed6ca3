"""Rule fig6_activations: Fig. 6, first-layer activations ReLU(conv1(x)) of the pair's robust
model for a clean test image and its L-inf PGD version (one shared sequential range), and their
difference (diverging colormap centred at 0)."""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import Normalize
from matplotlib.gridspec import GridSpec, GridSpecFromSubplotSpec
from matplotlib.ticker import MaxNLocator

from filterlens.io.scripting import rule_script
from filterlens.report.style import (TEXT_WIDTH, apply_style, diverging_cmap, save_figure, sequential_cmap,
                                     symmetric_norm, tile_mosaic)


def bare(ax):
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


with rule_script(snakemake) as log:
    apply_style()
    settings = snakemake.params.activations
    with np.load(snakemake.input[0]) as data:
        d = {k: data[k] for k in data.files}
    clean, adv = d["act_clean"], d["act_adv"]
    channels = clean.shape[0]
    ncols = int(np.ceil(np.sqrt(channels)))
    difference = adv - clean
    vmax = float(max(clean.max(), adv.max())) or 1.0

    fig = plt.figure(figsize=(TEXT_WIDTH, 2.45))
    grid = GridSpec(1, 4, figure=fig, width_ratios=[0.62, 1, 1, 1], wspace=0.18)
    images = GridSpecFromSubplotSpec(3, 1, subplot_spec=grid[0], hspace=0.45)
    delta = d["image_adv"] - d["image_clean"]
    shown = [("clean (label %d, predicted %d)" % (d["label"], d["pred_clean"]), d["image_clean"]),
             ("PGD (predicted %d)" % d["pred_adv"], d["image_adv"]),
             ("perturbation, scaled", 0.5 + delta / (2 * max(float(np.abs(delta).max()), 1e-12)))]
    for k, (title, image) in enumerate(shown):
        ax = fig.add_subplot(images[k])
        ax.imshow(np.clip(image.transpose(1, 2, 0), 0, 1))
        ax.set_title(title, pad=2, fontsize=6)
        bare(ax)
    panels = [("ReLU(conv1(x)), clean", clean, sequential_cmap(), Normalize(0, vmax)),
              ("ReLU(conv1(x')), PGD", adv, sequential_cmap(), Normalize(0, vmax)),
              ("difference PGD − clean", difference, diverging_cmap(), symmetric_norm(difference))]
    for k, (title, maps, cmap, norm) in enumerate(panels):
        ax = fig.add_subplot(grid[k + 1])
        image = ax.imshow(tile_mosaic(maps, ncols=ncols, gap=2), cmap=cmap, norm=norm)
        ax.set_title(title, pad=3)
        bare(ax)
        cbar = fig.colorbar(image, ax=ax, orientation="horizontal", fraction=0.05, pad=0.03, aspect=25)
        cbar.ax.tick_params(length=2, labelsize=5)
        cbar.ax.xaxis.set_major_locator(MaxNLocator(nbins=4, symmetric=norm.vmin < 0))
    fig.suptitle(f"{d['model_id']}, test image {int(d['image_index'])}, first 3x3 layer {d['layer_name']} "
                 f"({channels} channels); PGD L∞ ε={settings['eps']:.4g}, {settings['steps']} steps of "
                 f"{settings['step_size']:.4g}", y=1.0, fontsize=7)
    log.info("channels %d, max activation %.4g, max |difference| %.4g, mean |difference| %.4g", channels, vmax,
             float(np.abs(difference).max()), float(np.abs(difference).mean()))
    save_figure(fig, [snakemake.output.pdf, snakemake.output.png])
