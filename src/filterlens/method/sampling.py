"""Seeded samples of filters or images, the same on every run."""

from __future__ import annotations

import numpy as np


def sample_indices(n_total: int, n: int, seed: int) -> np.ndarray:
    """``min(n, n_total)`` distinct indices of ``range(n_total)``, sorted, fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_total, size=min(n, n_total), replace=False))
