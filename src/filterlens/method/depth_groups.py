"""Depth groups of docs/method.md §2: "first" (conv_depth 0), then ten deciles of conv_depth_norm;
the per-depth tables add "all" (every layer) before them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd  # the reduction passes use depth_group only and import no pandas

DECILES = [f"{k / 10:.1f}-{(k + 1) / 10:.1f}" for k in range(10)]
DEPTH_GROUPS = ["first", *DECILES]


def depth_group(conv_depth: np.ndarray, max_conv_depth: int) -> np.ndarray:
    """Group label per layer: 'first' for depth 0, else the decile (k/10, (k+1)/10] of depth/max.

    Integer arithmetic, so a depth on a decile's upper edge (3/10 = 0.3) lands in that decile,
    not the next, whatever floating point makes of the ratio.
    """
    depth = np.asarray(conv_depth, dtype=np.int64)
    if max_conv_depth <= 0:
        return np.full(depth.shape, "first", dtype=object)
    k = -(-10 * depth // max_conv_depth) - 1  # ceil(10 d / max) - 1
    labels = np.array(DECILES, dtype=object)[np.clip(k, 0, 9)]
    return np.where(depth == 0, "first", labels).astype(object)


def with_all_group(layers: pd.DataFrame) -> pd.DataFrame:
    """The rows of a per-layer table twice: first as depth group 'all', then in their own groups."""
    import pandas as pd

    return pd.concat([layers.assign(depth_group="all"), layers], ignore_index=True)


def sorted_by_model_and_depth(table: pd.DataFrame) -> pd.DataFrame:
    """A per-model, per-depth-group table sorted by model_id, then depth group ('all' first, then
    :data:`DEPTH_GROUPS` in depth order); equal keys keep their order."""
    order = {g: i for i, g in enumerate(["all", *DEPTH_GROUPS])}
    return table.sort_values(["model_id", "depth_group"], key=lambda c: c.map(order) if c.name == "depth_group" else c,
                             kind="stable").reset_index(drop=True)
