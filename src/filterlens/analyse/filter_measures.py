"""Filter measures of neighbouring work (docs/method.md §7) merged across models by depth group."""

from __future__ import annotations

import numpy as np

from filterlens.analyse.quality import measures_by_depth
from filterlens.method.measures import FILTER, of_family


def filter_measures_by_depth(layers, spectra, perturbation, sheet):
    """Per model and depth group (and 'all'): the filter measures of the registry
    (:mod:`filterlens.method.measures`): the L1/L2 ratio and the high-frequency share as means over
    the group's non-sparse filters (sums / counts of pass 1); spectral numbers and perturbation
    ratios as means over the group's layers (spectral_norm_max: the largest).

    ``layers``, ``spectra``, ``perturbation``: concatenated per-layer tables (model_id, name,
    depth_group, ...); ``spectra`` and ``perturbation`` may lack models or be None (not
    computed): their values are NaN.
    """
    keys = ["model_id", "name"]
    columns = {}  # the per-layer columns the measures read, by table
    for measure in of_family(FILTER):
        columns.setdefault(measure.table, {})[measure.column] = None
        if measure.over:
            columns[measure.table][measure.over] = None
    merged = layers[[*keys, "depth_group", *columns.pop("layers")]]
    for table, name in ((spectra, "spectra"), (perturbation, "perturbation")):
        if table is not None and len(table):
            merged = merged.merge(table[[*keys, *columns[name]]], on=keys, how="left")
        else:  # none computed (config analysis.spectra off, or no test data)
            merged = merged.assign(**{column: np.nan for column in columns[name]})
    return measures_by_depth(merged, sheet, FILTER, lambda part: {"n_nonsparse": int(part.n_nonsparse.sum())})
