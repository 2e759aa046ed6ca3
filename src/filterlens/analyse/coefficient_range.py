"""The one histogram range of a run from the models' pass-2 summaries (docs/method.md §4), under
the choices analysis.histogram_range and analysis.pca_sign.

Per model and component, pass 2 (:func:`filterlens.reduce.passes.coefficient_ranges`) gives the
min and max of the coefficients over the filters the range is taken on, and, under the u-based
sign convention, the non-sparse coefficient of largest magnitude. A component's u-based sign
makes the coefficient of largest magnitude over the basis' filters (the paired models'
non-sparse ones) positive; a flipped component's coefficients are negated, so its range
[min, max] becomes [-max, -min]. Plain Python on a few rows: pass 3 reads the result without pandas.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

from filterlens.method.pca import N_COMPONENTS

RANGE_COLUMNS = ["model_id", "component", "min", "max"]
SIGN_COLUMNS = [f"sign_{c + 1}" for c in range(N_COMPONENTS)]


def range_rows(model_id: str, summary, histogram_range: str) -> list[tuple]:
    """(model_id, component, min, max, extreme) of a model's pass-2 summary
    (:class:`filterlens.reduce.passes.CoefficientRange`): min and max over every scaled filter
    (``histogram_range`` all_filters) or over the non-sparse ones (paired_nonsparse)."""
    nonsparse = histogram_range == "paired_nonsparse"
    low, high = (summary.low_nonsparse, summary.high_nonsparse) if nonsparse else (summary.low, summary.high)
    return [(model_id, c + 1, low[c], high[c], summary.extreme[c]) for c in range(len(low))]


def component_signs(rows: Iterable[Mapping], basis_models: set[str]) -> list[float]:
    """Per component +1 or -1: the sign of the coefficient of largest magnitude (its ``extreme``)
    over the models ``basis_models`` (+1 where all are 0)."""
    extreme = [0.0] * N_COMPONENTS
    for row in rows:
        if row["model_id"] in basis_models:
            c, value = int(row["component"]) - 1, float(row["extreme"])
            if abs(value) > abs(extreme[c]):
                extreme[c] = value
    return [-1.0 if value < 0 else 1.0 for value in extreme]


def shared_range(rows: Iterable[Mapping], paired_models: set[str], histogram_range: str,
                 pca_sign: str) -> tuple[float, float, list[float], int]:
    """The range (low, high) over the rows (model_id, component, min, max[, extreme]) of every
    model (``histogram_range`` all_filters) or of the paired ones (paired_nonsparse), each
    component signed as ``pca_sign`` says; the signs; the number of models. ValueError when no
    model has a filter."""
    rows = list(rows)
    signs = component_signs(rows, paired_models) if pca_sign == "u_based" else [1.0] * N_COMPONENTS
    if histogram_range == "paired_nonsparse":
        rows = [row for row in rows if row["model_id"] in paired_models]
    low, high = math.inf, -math.inf
    for row in rows:
        a, b = float(row["min"]), float(row["max"])
        if not (math.isfinite(a) and math.isfinite(b)):
            continue
        if signs[int(row["component"]) - 1] < 0:
            a, b = -b, -a
        low, high = min(low, a), max(high, b)
    if not math.isfinite(low):
        raise ValueError("no model has a 3x3 filter: there is no coefficient range to histogram")
    return low, high, signs, len({row["model_id"] for row in rows})


def range_signs(row: Mapping) -> tuple[float, ...]:
    """The component signs of a range file's row (all +1 where it has none: the v-based convention)."""
    return tuple(float(row[c]) if row.get(c) not in (None, "") else 1.0 for c in SIGN_COLUMNS)
