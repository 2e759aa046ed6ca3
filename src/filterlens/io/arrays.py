"""Whole-array facts taken in one reduction, without a temporary array of the array's size:
on hundreds of millions of weights, the temporaries of ``np.isfinite(a).all()`` and
``np.abs(a).max()`` cost more than the reductions (docs/benchmarks.md)."""

from __future__ import annotations

import numpy as np


def all_finite(values: np.ndarray) -> bool:
    """True when no value is NaN or infinite. A sum is finite only if all its terms are (NaN and
    Inf carry through it), so one sum settles the usual case; a sum that is not finite, from a
    bad value or from overflow, is settled value by value."""
    with np.errstate(over="ignore", invalid="ignore"):
        total = values.sum()
    return bool(np.isfinite(total)) or bool(np.isfinite(values).all())


def abs_max(values: np.ndarray) -> float:
    """max |v| over ``values`` (non-empty): max(max v, -min v), exactly."""
    return float(np.maximum(values.max(), -values.min()))
