"""The Zarr filter store: round trip, chunking, and bad stores reported with the fix."""

import shutil

import numpy as np
import pytest
import zarr
from conftest import write_filter_store

from filterlens.extract.layer_table import Layer
from filterlens.extract.store import (FORMAT_VERSION, FilterStoreError, FilterStoreWriter, check_store_matches,
                                      open_filter_store)


def _layers():
    return [Layer(0, "a", 0, 0.0, 3, 4, 1, 0, 12, False), Layer(1, "b", 1, 1.0, 4, 5, 1, 12, 32, False)]


def _write(path, rows, chunk_rows=8):
    write_filter_store(path, [(3, 4, 1), (4, 5, 1)], [rows[:12], rows[12:32]], chunk_rows, ["a", "b"])


@pytest.fixture
def rows():
    return np.random.default_rng(0).standard_normal((32, 9)).astype(np.float32)


def test_round_trip_keeps_rows_layers_and_chunks(tmp_path, rows):
    path = tmp_path / "toy.zarr"
    _write(path, rows)
    store = open_filter_store(path)
    np.testing.assert_array_equal(store.filters[:], rows)
    assert store.filters.chunks == (8, 9)
    assert store.layers.name.tolist() == ["a", "b"]
    assert store.layers.row_stop.tolist() == [12, 32]
    assert store.attrs["format_version"] == FORMAT_VERSION and store.model_id == "toy"
    assert zarr.open_group(str(path), mode="r").metadata.zarr_format == 3


def test_a_failed_write_leaves_no_store(tmp_path, rows):
    path = tmp_path / "toy.zarr"
    with pytest.raises(RuntimeError):
        with FilterStoreWriter(path, 32, 8, {"model_id": "toy"}) as writer:
            writer.write_layer(_layers()[0], rows[:12])
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_missing_chunk_is_reported_with_the_fix(tmp_path, rows):
    path = tmp_path / "toy.zarr"
    _write(path, rows)
    shutil.rmtree(path / "filters" / "c" / "1")
    with pytest.raises(FilterStoreError, match=r"1 of 4 chunks are missing.*extract it again"):
        open_filter_store(path)


def test_wrong_dtype_is_reported(tmp_path, rows):
    path = tmp_path / "toy.zarr"
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    group.create_array("filters", data=rows.astype(np.float64), chunks=(8, 9))
    group.attrs.update({"format": "filterlens-filters", "format_version": FORMAT_VERSION, "n_filters": 32,
                        "layers": {}})
    with pytest.raises(FilterStoreError, match="float64 of shape"):
        open_filter_store(path)


def test_not_a_store_is_reported(tmp_path):
    with pytest.raises(FilterStoreError, match="not a readable filter store"):
        open_filter_store(tmp_path / "absent.zarr")


# --- a store consistent with itself and with the sheet --------------------------------------

def _three_layer_store(path):
    """Layers (c_in, c_out): (3, 4) rows 0-12, (4, 5) rows 12-32, (5, 2) rows 32-42."""
    rows = np.random.default_rng(1).standard_normal((42, 9)).astype(np.float32)
    return write_filter_store(path, [(3, 4, 1), (4, 5, 1), (5, 2, 1)], [rows[:12], rows[12:32], rows[32:]], 8)


def _edit_attrs(path, edit):
    group = zarr.open_group(str(path), mode="r+")
    attrs = dict(group.attrs)
    edit(attrs)
    for key in list(group.attrs):
        del group.attrs[key]
    group.attrs.update(attrs)


def _set(column, index, value):
    def edit(attrs):
        attrs["layers"][column][index] = value
    return edit


def _all(column, values):
    def edit(attrs):
        attrs["layers"][column] = values
    return edit


def _empty_table(attrs):
    attrs["layers"] = {c: [] for c in attrs["layers"]}


BAD_LAYER_TABLES = {
    "overlapping ranges": (_set("row_start", 1, 8), "row_start/row_stop overlap between layers 0 and 1"),
    "a gap between ranges": (_set("row_start", 2, 34), "row_start/row_stop leave a gap between layers 1 and 2"),
    "ranges ending before the rows": (_set("row_stop", 2, 40), "row_stop ends at 40, not at the store's 42 filters"),
    "a range not starting at 0": (_set("row_start", 0, 2), "row_start begins at 2, not 0"),
    "a wrong c_out": (_set("c_out", 1, 6),
                      "c_out x c_in/groups = 6 x 4/1 = 24 rows in layer 1, but its row range holds 20"),
    "a wrong c_in": (_set("c_in", 0, 2), "= 4 x 2/1 = 8 rows in layer 0, but its row range holds 12"),
    "groups 0": (_set("groups", 0, 0), "column groups is 0 in layer 0; must be >= 1"),
    "groups not dividing c_in": (_set("groups", 1, 3), "column groups (3) does not divide c_in (4) in layer 1"),
    "c_out 0": (_set("c_out", 2, 0), "column c_out is 0 in layer 2; must be >= 1"),
    "an empty table": (_empty_table, "the layer table is empty"),
    "a gap in layer_id": (_all("layer_id", [0, 2, 3]), "layer_id is [0, 2, 3], expected 0..2 in order"),
    "layer ids out of order": (_all("layer_id", [1, 0, 2]), "layer_id is [1, 0, 2], expected 0..2 in order"),
    "no layers attribute": (lambda a: a.pop("layers"), "attribute 'layers' (the layer table) is missing"),
    "a missing column": (lambda a: a["layers"].pop("groups"), "the layer table has no column(s) groups"),
    "a ragged column": (_all("c_in", [3, 4]), "columns are not lists of one length"),
    "a fractional channel count": (_set("c_in", 0, 3.5), "column c_in holds non-integers [3.5]"),
    "a text row bound": (_set("row_stop", 0, "12"), "column row_stop holds non-integers ['12']"),
    "a repeated layer name": (_set("name", 2, "conv0"), "column name repeats ['conv0']"),
    "a negative depth": (_set("conv_depth", 0, -1), "conv_depth is -1 in layer 0; must be >= 0"),
    "a depth beyond the maximum": (lambda a: a.__setitem__("max_conv_depth", 1),
                                   "attribute max_conv_depth is 1, below the deepest layer's conv_depth 2"),
    "a normalised depth above 1": (_set("conv_depth_norm", 1, 1.5), "conv_depth_norm is 1.5 in layer 1"),
    "a negative max |W|": (_set("max_abs", 0, -1.0), "column max_abs is -1.0 in layer 0"),
    "a row sum below max |W|": (_set("max_row_sum", 0, 0.0), "column max_row_sum is 0.0 in layer 0; must be a finite "
                                                            "number in [max_abs, 9 max_abs]"),
    "no row sum in a current store": (_set("max_row_sum", 1, None), "column max_row_sum is None in layer 1"),
    "n_filters not a count": (lambda a: a.__setitem__("n_filters", "42"), "expected float32 of shape (42, 9)"),
}


@pytest.mark.parametrize("fault", BAD_LAYER_TABLES)
def test_an_inconsistent_layer_table_is_one_message_naming_the_store_the_field_and_the_fix(tmp_path, fault):
    path = _three_layer_store(tmp_path / "toy.zarr")
    edit, fragment = BAD_LAYER_TABLES[fault]
    _edit_attrs(path, edit)
    with pytest.raises(FilterStoreError) as raised:
        open_filter_store(path)
    message = str(raised.value)
    assert message.startswith(str(path)), message
    assert fragment in message, message
    assert f"Fix: delete {path} and extract it again" in message, message


def test_several_problems_are_listed_at_once(tmp_path):
    path = _three_layer_store(tmp_path / "toy.zarr")
    _edit_attrs(path, lambda a: (_set("groups", 0, 0)(a), _set("conv_depth", 1, -2)(a)))
    message = str(pytest.raises(FilterStoreError, open_filter_store, path).value)
    assert "is inconsistent (3 problems" in message or "is inconsistent (2 problems" in message, message
    assert "groups is 0 in layer 0" in message and "conv_depth is -2 in layer 1" in message, message


def test_a_consistent_store_opens_and_matches_its_sheet_row(tmp_path):
    store = open_filter_store(_three_layer_store(tmp_path / "toy.zarr"))
    check_store_matches(store, "toy", "coloured_digits", max_rows=8)
    assert store.layers.row_stop.tolist() == [12, 32, 42]


STORE_MISMATCHES = {
    "another model": (("other", "coloured_digits", None),
                      "attribute model_id is 'toy', but the sheet's row is 'other': the store holds another model"),
    "another dataset": (("toy", "cifar10", None), "attribute dataset is 'coloured_digits', but the sheet's row is "
                                                  "'cifar10'"),
    "chunks too large for the job": (("toy", "coloured_digits", 4),
                                     "its chunks of 8 rows do not fit this job's memory (4 rows a task; raise the "
                                     "rule's mem_mb or extract with a smaller extraction.chunk_rows)"),
}


@pytest.mark.parametrize("fault", STORE_MISMATCHES)
def test_a_store_that_is_not_the_sheets_model_is_refused(tmp_path, fault):
    store = open_filter_store(_three_layer_store(tmp_path / "toy.zarr"))
    (model_id, dataset, max_rows), fragment = STORE_MISMATCHES[fault]
    with pytest.raises(FilterStoreError) as raised:
        check_store_matches(store, model_id, dataset, max_rows)
    assert fragment in str(raised.value) and "Fix: delete" in str(raised.value), str(raised.value)


def test_a_store_without_a_dataset_attribute_is_refused(tmp_path):
    path = _three_layer_store(tmp_path / "toy.zarr")
    _edit_attrs(path, lambda a: a.pop("dataset"))
    with pytest.raises(FilterStoreError, match=r"attribute dataset is missing \(the sheet says 'coloured_digits'\)"):
        check_store_matches(open_filter_store(path), "toy", "coloured_digits")


def test_a_store_is_written_with_lz4_bit_shuffle_and_crc32c(tmp_path, rows):
    path = tmp_path / "toy.zarr"
    _write(path, rows)
    codecs = [c.to_dict() for c in zarr.open_array(str(path / "filters"), mode="r").metadata.codecs]
    assert [c["name"] for c in codecs] == ["bytes", "blosc", "crc32c"]
    assert codecs[1]["configuration"]["cname"] == "lz4" and codecs[1]["configuration"]["shuffle"] == "bitshuffle"


def test_a_version_2_store_reads_as_it_is_with_its_own_codec(tmp_path, rows, monkeypatch):
    """Version 2 differs in the filters' codec only (zstd-3, byte shuffle): Zarr reads it from the array."""
    from zarr.codecs import BloscCodec, BloscShuffle, Crc32cCodec

    import filterlens.extract.store as store_module

    monkeypatch.setattr(store_module, "FORMAT_VERSION", 2)
    monkeypatch.setattr(store_module, "filter_codecs", lambda: (BloscCodec(cname="zstd", clevel=3,
                                                                      shuffle=BloscShuffle.shuffle), Crc32cCodec()))
    path = tmp_path / "toy.zarr"
    _write(path, rows)
    monkeypatch.undo()
    store = open_filter_store(path)
    assert store.attrs["format_version"] == 2 != FORMAT_VERSION
    assert store.filters.metadata.codecs[1].cname.value == "zstd"
    np.testing.assert_array_equal(store.filters[:], rows)


def test_an_unknown_version_is_refused_naming_the_versions_read(tmp_path, rows):
    path = tmp_path / "toy.zarr"
    _write(path, rows)
    group = zarr.open_group(str(path), mode="r+")
    group.attrs["format_version"] = 99
    with pytest.raises(FilterStoreError,
                       match=r"version 99; this filterlens reads 'filterlens-filters' versions 2, 3 and 4"):
        open_filter_store(path)


# --- a store is read from its own files, within its declared sizes ----------------------------

def _store_with(path, rows, codecs):
    """A store of the writer's layout whose filters use ``codecs`` (compressors)."""
    import filterlens.extract.store as store_module

    original = store_module.filter_codecs
    store_module.filter_codecs = lambda: codecs
    try:
        _write(path, rows)
    finally:
        store_module.filter_codecs = original


def test_a_store_with_another_codec_is_refused_before_a_chunk_is_decoded(tmp_path, rows):
    from zarr.codecs import GzipCodec

    path = tmp_path / "toy.zarr"
    _store_with(path, rows, (GzipCodec(level=9),))
    with pytest.raises(FilterStoreError, match=r"toy.zarr: the filters' codecs are BytesCodec, GzipCodec; a store's "
                                               r"are BytesCodec, BloscCodec, Crc32cCodec\. Fix: "):
        open_filter_store(path)


def test_a_chunk_whose_header_announces_more_than_its_shape_is_refused(tmp_path, rows):
    import struct

    path = tmp_path / "toy.zarr"
    _write(path, rows)
    chunk = path / "filters" / "c" / "2" / "0"
    data = bytearray(chunk.read_bytes())
    data[4:8] = struct.pack("<I", 2**31 - 1)  # Blosc would allocate 2 GB to decode it
    chunk.write_bytes(bytes(data))
    with pytest.raises(FilterStoreError, match=r"chunk c/2/0 of the filters \(\d+ bytes\) announces 2147483647 "
                                               r"bytes decoded, above the 288 of the array's chunk shape"):
        open_filter_store(path)


@pytest.mark.parametrize("kind", ["symlinked chunk", "named pipe", "symlinked metadata"])
def test_a_store_is_read_from_its_own_regular_files_alone(tmp_path, rows, kind):
    import os

    path = tmp_path / "toy.zarr"
    _write(path, rows)
    outside = tmp_path / "secret"
    outside.write_bytes(b"not yours" * 100)
    target = path / "filters" / "c" / "1" / "0" if kind != "symlinked metadata" else path / "zarr.json"
    target.unlink()
    if kind == "named pipe":
        os.mkfifo(target)
    else:
        target.symlink_to(outside)
    name = str(target.relative_to(path))
    expected = f"{name} is a symlink; a store is read from its own files alone" if "symlink" in kind \
        else f"{name} is not a regular file"
    with pytest.raises(FilterStoreError) as error:
        open_filter_store(path)
    assert expected in str(error.value) and "not yours" not in str(error.value), error.value


def test_oversized_metadata_is_refused_unread(tmp_path, rows, monkeypatch):
    import filterlens.extract.store_checks as checks_module

    path = tmp_path / "toy.zarr"
    _write(path, rows)
    monkeypatch.setattr(checks_module, "MAX_METADATA_BYTES", 100)
    with pytest.raises(FilterStoreError, match=r"zarr.json holds \d+ bytes, above 100"):
        open_filter_store(path)
