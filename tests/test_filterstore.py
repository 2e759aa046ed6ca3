"""The Zarr filter store: round trip, chunking, and bad stores reported with the fix."""

import shutil

import numpy as np
import pytest
import zarr

from conftest import write_filter_store
from filterlens.filterstore import FORMAT_VERSION, FilterStoreError, FilterStoreWriter, open_filter_store
from filterlens.layertable import Layer


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
