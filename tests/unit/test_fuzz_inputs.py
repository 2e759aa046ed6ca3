"""Fuzzing the inputs (hypothesis): generated layer tables, store shapes and sheet rows give
either the exact result or the project's own error (FilterStoreError, SheetError, a list of
row problems), never another exception and never a wrong count.

- Stores: real stores of random layers (c_in, c_out, groups), chunk sizes and segment sizes,
  with one field of the layer table or one attribute replaced by a random value. Opened and
  summarised, a store either raises FilterStoreError or gives per layer exactly the filter
  and sparse counts that a plain numpy pass over the rows of its table's ranges gives, and
  exactly c_out x c_in/groups filters per layer, summing to the store's rows.
- Sheets: rows of random cells (ids with '#', newlines, case variants, quotes, tabs) either
  raise SheetError or read back exactly as written, with every id matching the pattern to its
  end, unique ignoring case, and every robust row's counterpart a normal row of the sheet.
- Architectures: random arch_kwargs either give problems (never an exception) or build.
"""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pytest
import zarr
from conftest import write_filter_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from filterlens.config.sheet import COLUMNS, SheetError, read_sheet
from filterlens.extract.layer_table import LAYER_COLUMNS
from filterlens.extract.store import FilterStoreError, open_filter_store
from filterlens.method.filters import sparse_mask
from filterlens.models.sheet_checks import row_build_problems
from filterlens.reduce.passes import summarize

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,  # the same examples on every run
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


# --- layer tables and store shapes ------------------------------------------------------------

@st.composite
def layer_shapes(draw):
    shapes = []
    for _ in range(draw(st.integers(1, 4))):
        groups = draw(st.sampled_from([1, 1, 1, 2, 4]))
        shapes.append((groups * draw(st.integers(1, 4)), groups * draw(st.integers(1, 4)), groups))
    return shapes


ODD_VALUES = (st.integers(-3, 200) | st.floats(allow_nan=True, allow_infinity=True) | st.booleans() | st.none()
              | st.text(max_size=3) | st.just(2**70) | st.lists(st.integers(), max_size=2))


@st.composite
def corruptions(draw, n_layers):
    """None, or (where, key, index, value): one table cell, one column or one attribute replaced."""
    kind = draw(st.sampled_from(["none", "cell", "cell", "cell", "column", "attribute"]))
    if kind == "none":
        return None
    if kind == "cell":
        return ("cell", draw(st.sampled_from(LAYER_COLUMNS)), draw(st.integers(0, n_layers - 1)), draw(ODD_VALUES))
    if kind == "column":
        values = draw(st.lists(st.integers(-2, 60), min_size=0, max_size=n_layers + 1))
        return ("column", draw(st.sampled_from(LAYER_COLUMNS)), None, values)
    return ("attribute", draw(st.sampled_from(["n_filters", "max_conv_depth", "layers", "format_version"])), None,
            draw(ODD_VALUES))


def _corrupt(path, corruption):
    if corruption is None:
        return
    where, key, index, value = corruption
    group = zarr.open_group(str(path), mode="r+")
    attrs = dict(group.attrs)
    if where == "cell":
        attrs["layers"][key][index] = value
    elif where == "column":
        attrs["layers"][key] = value
    else:
        attrs[key] = value
    try:
        group.attrs.update(attrs)
    except (TypeError, ValueError):  # not storable as JSON (an infinite float in some zarr versions)
        pass


@FUZZ
@given(data=st.data())
def test_a_generated_store_gives_exact_counts_or_a_filter_store_error(tmp_path_factory, data):
    shapes = data.draw(layer_shapes())
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    rows = []
    for c_in, c_out, groups in shapes:
        weights = rng.standard_normal((c_out * (c_in // groups), 9)).astype(np.float32)
        weights[rng.random(len(weights)) < 0.3] *= 1e-3  # some sparse filters
        rows.append(weights)
    chunk_rows = data.draw(st.integers(1, 40))
    path = write_filter_store(tmp_path_factory.mktemp("fuzz") / "m.zarr", shapes, rows, chunk_rows)
    corruption = data.draw(corruptions(len(shapes)))
    _corrupt(path, corruption)
    try:
        store = open_filter_store(path)
        table, _ = summarize(store, threads=data.draw(st.integers(1, 2)), max_rows=data.draw(st.integers(1, 80)))
    except FilterStoreError:
        return
    everything = zarr.open_array(str(path / "filters"), mode="r")[:]
    layers = store.layers
    assert table.n_filters.sum() == len(everything) == store.attrs["n_filters"]
    for layer, result in zip(layers.itertuples(), table.itertuples()):
        piece = everything[layer.row_start:layer.row_stop]
        assert result.n_filters == len(piece) == layer.c_out * (layer.c_in // layer.groups), (corruption, layer)
        expected_sparse = int(sparse_mask(piece.astype(np.float64), float(np.abs(piece).max())).sum())
        assert result.n_sparse == expected_sparse, (corruption, layer)


# --- sheet rows -------------------------------------------------------------------------------

ID_TEXT = st.text(alphabet="abAB09_.-#\n\r \"'", min_size=0, max_size=8)


@st.composite
def sheet_rows(draw):
    """Rows of cells: mostly valid models, with ids and cells drawn to include the hard cases."""
    n = draw(st.integers(1, 5))
    ids = [draw(ID_TEXT | st.sampled_from(["m1", "M1", "m2", "m1\n", "m#1"])) for _ in range(n)]
    rows = []
    for model_id in ids:
        robust = draw(st.sampled_from(["true", "false", "True", "maybe", ""]))
        counterpart = draw(st.sampled_from(ids + ["", "nope"])) if robust.lower() == "true" else draw(
            st.sampled_from(["", ""] + ids))
        rows.append({"model_id": model_id, "dataset": draw(st.sampled_from(["coloured_digits", "cifar10", "mnist"])),
                     "architecture": draw(st.sampled_from(["wide_resnet", "timm", "vgg"])),
                     "arch_kwargs": draw(st.sampled_from(['{"depth": 10}', "{}", "{depth: 10}", "[1]", '{"a": "#"}'])),
                     "robust": robust, "source": draw(st.sampled_from(["minizoo", "random", "zoo"])),
                     "source_key": draw(st.sampled_from(["", "k", "k y", "k#"])), "counterpart": counterpart,
                     "clean_acc": draw(st.sampled_from(["", "50", "101", "x"])), "robust_acc": ""})
    return rows


def _tsv(rows, comments):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    if comments:
        buffer.write("# a comment line\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([row[c] for c in COLUMNS])
    return buffer.getvalue()


ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@FUZZ
@given(sheet_rows(), st.booleans())
def test_a_generated_sheet_reads_back_exactly_or_raises_sheet_error(tmp_path_factory, rows, comments):
    path = tmp_path_factory.mktemp("sheet") / "sheet.tsv"
    path.write_text(_tsv(rows, comments))
    try:
        sheet = read_sheet(path)
    except SheetError:
        return
    rows = [r for r in rows if not r["model_id"].startswith("#")]  # a line starting with '#' is a comment
    assert sheet.model_id.tolist() == [r["model_id"] for r in rows]
    assert all(ID_PATTERN.fullmatch(m) for m in sheet.model_id)
    assert len({m.casefold() for m in sheet.model_id}) == len(sheet)
    for row, got in zip(rows, sheet.itertuples()):
        assert got.robust is {"true": True, "false": False, "": None}[row["robust"].lower()]  # empty: unknown
        assert got.source_key == row["source_key"] and got.counterpart == row["counterpart"]
        if got.robust:
            assert sheet.loc[got.counterpart, "robust"] is False


@FUZZ
@given(st.text(alphabet="ab\t#\n\"", max_size=60))
def test_any_text_is_a_sheet_or_a_sheet_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("text") / "sheet.tsv"
    path.write_text("\t".join(COLUMNS) + "\n" + text)
    try:
        read_sheet(path)
    except SheetError:
        pass


# --- architecture arguments -------------------------------------------------------------------

KWARG_VALUES = st.integers(-2, 40) | st.booleans() | st.text(max_size=4) | st.none() | st.floats(0, 30) | st.lists(
    st.integers(-1, 3), max_size=5) | st.sampled_from(["relu", "swish", "gelu"])


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["wide_resnet", "dm_wide_resnet", "preact_resnet", "timm"]),
       st.dictionaries(st.sampled_from(["depth", "widen_factor", "width", "activation", "num_blocks", "name", "x"]),
                       KWARG_VALUES, max_size=3))
def test_generated_arguments_give_problems_or_a_model(architecture, kwargs):
    row = {"model_id": "m", "dataset": "imagenet" if architecture == "timm" else "cifar10",
           "architecture": architecture, "arch_kwargs": kwargs, "robust": False, "source": "random", "source_key": ""}
    problems = row_build_problems(row)  # never raises
    assert isinstance(problems, list) and all(isinstance(p, str) and p for p in problems)
    if not problems and architecture != "timm":
        from filterlens.models.architectures import build_architecture

        model = build_architecture(architecture, kwargs, 10, device="meta")
        assert sum(p.numel() for p in model.parameters()) > 0


pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
