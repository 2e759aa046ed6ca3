"""The sensitivity analysis against the authors' oracle: under the configured choices and under
every variant (one documented choice changed alone, docs/method.md), each headline number the
workflow's passes and merges give (filterlens.analyse.sensitivity.headline) equals the one the
independent oracle (tests/authors_oracle.py) computes from the ONNX exports, to 1e-9.

The workflow side chains the library as the rules do (summarize_model, pca_bases,
coefficient_range and global_coefficient_range, coefficient_histograms, sensitivity_analysis),
each pass under the variant's own choices."""

from __future__ import annotations

import authors_oracle as oracle
import numpy as np
import pandas as pd
import pytest
from test_authors_oracle import MAX_ROWS, PAIRS, SHEET, _assert_close
from test_authors_oracle import models, onnx_models, stores  # noqa: F401 (module-scope fixtures: the zoo)

from filterlens.analyse.bases import basis_sets, set_moments
from filterlens.analyse.coefficient_range import range_rows, shared_range
from filterlens.analyse.sensitivity import NUMBER, MergeInputs, headline
from filterlens.extract.store import with_depth_definition
from filterlens.method.choices import NOT_SHARED, Settings
from filterlens.method.pca import pca
from filterlens.reduce.passes import HistogramSpec, Projection, coefficient_histograms_of, coefficient_ranges, summarize

PAIRINGS = PAIRS.rename(columns={"robust": "Robust", "normal": "Normal", "dataset": "Dataset"})
PAIRED = [m for m in SHEET.model_id if m in {*PAIRS.robust, *PAIRS.normal}]
# The model table's accuracies only feed the findings' PGD row, which is no number compared here.
MODEL_TABLE = pd.DataFrame({"model_id": SHEET.model_id, "robust_acc": np.nan})
STATISTICS = {"n_bootstrap": 10, "n_permutations": 20, "seed": 0, "level": 0.95}
VARIANTS = {"default": Settings(), **Settings().variants()}


def workflow_numbers(stores, settings: Settings) -> dict[str, float]:
    tables, moments = {}, {}
    for model_id, store in stores.items():
        store = with_depth_definition(store, settings.depth_definition)
        tables[model_id], layer_moments = summarize(store, 1, MAX_ROWS, settings.sparse_reference)
        moments[model_id] = layer_moments.scaled
    projection = Projection(pca(set_moments(basis_sets(PAIRS, [])["full"], moments)), settings.sparse_reference)
    rows = []
    for model_id in SHEET.model_id:
        summary = coefficient_ranges(stores[model_id], {"": projection}, 1, MAX_ROWS)[""]
        rows += [dict(zip(["model_id", "component", "min", "max", "extreme"], row))
                 for row in range_rows(model_id, summary, settings.histogram_range)]
    low, high, signs, _ = shared_range(rows, set(PAIRED), settings.histogram_range, settings.pca_sign)
    spec = HistogramSpec(projection, low, high, tuple(signs))
    histograms = {m: coefficient_histograms_of(stores[m], {"": spec}, oracle.BINS, 1, MAX_ROWS)[""] for m in PAIRED}
    table = headline(settings, MergeInputs(tables, moments, histograms, low, high), SHEET, PAIRS, MODEL_TABLE,
                     oracle.BINS, STATISTICS)
    numbers = table[table.kind == NUMBER]
    return dict(zip(numbers.row, numbers.value))


def oracle_numbers(onnx_models, settings: Settings) -> dict[str, float]:
    result = oracle.authors_pipeline(onnx_models, SHEET, PAIRINGS, settings.sparse_reference,
                                     depth_definition=settings.depth_definition,
                                     histogram_range=settings.histogram_range, pca_sign=settings.pca_sign,
                                     empty_bins=settings.empty_bins)
    return oracle.headline_numbers(result, PAIRINGS, entropy=settings.entropy,
                                   entropy_weights=settings.entropy_weights,
                                   quality_over_pairings=settings.boxes == "pairings")


def test_every_shared_choice_has_a_variant():
    assert {name.split("=")[0] for name in Settings().variants()} | set(NOT_SHARED) == \
        set(Settings().as_dict())


@pytest.mark.parametrize("variant", VARIANTS)
def test_headline_numbers_equal_the_oracles(stores, onnx_models, variant):
    settings = VARIANTS[variant]
    ours, theirs = workflow_numbers(stores, settings), oracle_numbers(onnx_models, settings)
    assert sorted(ours) == sorted(theirs), f"{variant}: rows differ: {set(ours) ^ set(theirs)}"
    rows = sorted(theirs)
    _assert_close([ours[r] for r in rows], [theirs[r] for r in rows], f"{variant}: {rows}")


def test_the_pass_choices_move_numbers_on_this_zoo(stores):
    """Each variant of a pass changes some headline number here, so the comparison above tells them apart."""
    default = workflow_numbers(stores, Settings())
    for name in ("sparse_reference=max_row_sum", "pca_sign=u_based", "histogram_range=paired_nonsparse",
                 "depth_definition=conv_count", "empty_bins=probability"):
        numbers = workflow_numbers(stores, VARIANTS[name])
        moved = [r for r in default if r in numbers and not np.isclose(default[r], numbers[r], rtol=1e-12,
                                                                       equal_nan=True)]
        assert moved, f"{name} moves no number on the test zoo"
