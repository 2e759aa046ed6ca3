"""Rule fig4_first_layer_filters: Fig. 4, every filter of the first 3x3 layer of the pair's
normal and robust model (rows: input channels, columns: output channels), diverging colormap
centred at 0 with a symmetric range per model (max |W| of its layer)."""

import matplotlib.pyplot as plt
import numpy as np

from filterlens.io.scripting import rule_script
from filterlens.report.style import (COLUMN_WIDTH, TEXT_WIDTH, TRAINING_COLORS, TRAINING_ORDER, apply_style,
                                     diverging_cmap, save_figure, symmetric_norm, tile_mosaic)

with rule_script(snakemake) as log:
    apply_style()
    with np.load(snakemake.input[0]) as data:
        layers = {role: (data[f"{role}_first"], str(data[f"{role}_first_name"]), int(data[f"{role}_first_depth"]),
                         str(data[f"{role}_model"])) for role in TRAINING_ORDER}
    c_out, c_in = layers["robust"][0].shape[:2]
    if c_in <= 8:  # an RGB stem: wide panels, one above the other
        width = COLUMN_WIDTH if c_out <= 32 else TEXT_WIDTH
        panel_height = width * 0.85 * c_in / c_out + 0.35
        fig, axes = plt.subplots(2, 1, figsize=(width, 2 * panel_height), gridspec_kw={"hspace": 0.45})
    else:  # a deeper first 3x3 layer (ImageNet ResNets): square-ish panels side by side
        panel_width = TEXT_WIDTH / 2
        fig, axes = plt.subplots(1, 2, figsize=(TEXT_WIDTH, panel_width * 0.9 * c_in / c_out + 0.45),
                                 gridspec_kw={"wspace": 0.25})
    cmap = diverging_cmap()
    for ax, role in zip(axes, TRAINING_ORDER):
        weights, name, depth, model_id = layers[role]
        tiles = weights.transpose(1, 0, 2, 3).reshape(-1, 3, 3)  # row = input channel, column = output channel
        norm = symmetric_norm(weights)
        image = ax.imshow(tile_mosaic(tiles, ncols=weights.shape[0]), cmap=cmap, norm=norm)
        ax.set_title(f"{role}: {model_id} ({name}, depth {depth})",
                     color=TRAINING_COLORS[role], loc="left", pad=3)
        every = 4 if weights.shape[0] <= 32 else 8
        ax.set_xticks(np.arange(weights.shape[0]) * 4 + 1,
                      [str(i) if i % every == 0 else "" for i in range(weights.shape[0])])
        ax.set_yticks(np.arange(weights.shape[1]) * 4 + 1,
                      ["RGB"[i] if weights.shape[1] == 3 else (str(i) if i % 8 == 0 else "")
                       for i in range(weights.shape[1])])
        ax.tick_params(length=0, pad=1)
        ax.set_xlabel("output channel", labelpad=1)
        ax.set_ylabel("input ch.", labelpad=1)
        for spine in ax.spines.values():
            spine.set_visible(False)
        fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02, aspect=8).ax.tick_params(length=2, labelsize=5)
        log.info("%s %s: %s, max |W| %.4g", role, model_id, weights.shape, norm.vmax)
    save_figure(fig, [snakemake.output.pdf, snakemake.output.png])
