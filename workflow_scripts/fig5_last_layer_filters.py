"""Rule fig5_last_layer_filters: Fig. 5, randomly chosen filters (seeded) of the last 3x3 layer
of the pair's normal and robust model; the same positions in both when the layers have the
same shape. Diverging colormap centred at 0, symmetric range per model (max |W| of the
layer), so sparse filters (max |F| <= the layer's sparse reference / 100, config
analysis.sparse_reference) show as blank tiles."""

import matplotlib.pyplot as plt
import numpy as np

from filterlens.io.scripting import rule_script
from filterlens.method.filters import layer_reference, sparse_mask
from filterlens.method.sampling import sample_indices
from filterlens.report.style import (COLUMN_WIDTH, TRAINING_COLORS, TRAINING_ORDER, apply_style, diverging_cmap,
                                     save_figure, symmetric_norm, tile_mosaic)

with rule_script(snakemake) as log:
    apply_style()
    settings = snakemake.params.last_layer
    with np.load(snakemake.input[0]) as data:
        layers = {role: (data[f"{role}_last"], str(data[f"{role}_last_name"]), int(data[f"{role}_last_depth"]),
                         str(data[f"{role}_model"])) for role in TRAINING_ORDER}
    same_shape = layers["robust"][0].shape == layers["normal"][0].shape
    n = min(settings["n_filters"], *(w[0].shape[0] * w[0].shape[1] for w in layers.values()))
    ncols = 16 if n >= 32 else max(1, int(np.ceil(np.sqrt(n))))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(2, 1, figsize=(COLUMN_WIDTH, 2 * (COLUMN_WIDTH * 0.8 * nrows / ncols + 0.32)),
                             gridspec_kw={"hspace": 0.5})
    cmap = diverging_cmap()
    for k, (ax, role) in enumerate(zip(axes, TRAINING_ORDER)):
        weights, name, depth, model_id = layers[role]
        rows = weights.reshape(-1, 9)
        # one draw for both models when they share the layer's shape; else one per model
        chosen = sample_indices(len(rows), n, settings["seed"] + (0 if same_shape else k))
        layer_max = float(np.abs(rows).max())
        sparse = sparse_mask(rows[chosen], layer_reference(rows, snakemake.params.sparse_reference))
        norm = symmetric_norm(layer_max)
        image = ax.imshow(tile_mosaic(rows[chosen].reshape(-1, 3, 3), ncols=ncols), cmap=cmap, norm=norm)
        ax.set_title(f"{role}: {model_id}", color=TRAINING_COLORS[role], loc="left", pad=3)
        ax.set_xlabel(f"{name} (depth {depth}): {n} of {len(rows):,} filters, {sparse.sum()} sparse", labelpad=2,
                      fontsize=6)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02, aspect=8).ax.tick_params(length=2, labelsize=5)
        log.info("%s %s: %d of %d filters of %s (seed %d), %d sparse", role, model_id, n, len(rows), name,
                 settings["seed"], sparse.sum())
    save_figure(fig, [snakemake.output.pdf, snakemake.output.png])
