"""Bad filter stores are reported by model and layer with the fix, and no summary is written."""

import shutil

import numpy as np
import pytest
import zarr

from conftest import REPO, run_snakemake, write_filter_store
from filterlens.filterstore import FilterStoreError, open_filter_store
from filterlens.reductions import summarize


def _store(path, rows):
    return write_filter_store(path, [(3, 8, 1), (8, 8, 1)], [rows[:24], rows[24:88]], 16, ["first_conv", "second_conv"])


@pytest.fixture
def rows():
    return np.random.default_rng(0).standard_normal((88, 9)).astype(np.float32)


def test_nan_values_name_the_model_and_layer(tmp_path, rows):
    store = open_filter_store(_store(tmp_path / "toy.zarr", rows))
    array = zarr.open_array(str(tmp_path / "toy.zarr" / "filters"), mode="r+")
    array[40, 3] = np.nan  # row 40 is in second_conv
    with pytest.raises(FilterStoreError, match=r"model toy\): layer second_conv holds NaN or Inf.*extract it again"):
        summarize(store, threads=1, max_rows=4096)


def test_a_corrupted_chunk_names_the_model_and_layer(tmp_path, rows):
    path = _store(tmp_path / "toy.zarr", rows)
    chunk = path / "filters" / "c" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-7])  # truncated: the CRC32C check fails
    with pytest.raises(FilterStoreError, match=r"layer\(s\) first_conv.*cannot be read.*extract it again"):
        summarize(open_filter_store(path), threads=2, max_rows=4096)


def test_a_layer_table_that_disagrees_with_the_filters_is_reported(tmp_path, rows):
    path = _store(tmp_path / "toy.zarr", rows)
    zarr.open_array(str(path / "filters"), mode="r+")[0] = 100.0  # larger than the recorded max |W|
    with pytest.raises(FilterStoreError, match="layer first_conv holds max .* inconsistent"):
        summarize(open_filter_store(path), threads=1, max_rows=4096)


@pytest.mark.workflow
def test_the_summary_job_fails_without_writing_anything_and_other_outputs_stay(micro_run, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(micro_run, workdir, symlinks=True)
    chunk = workdir / "results" / "filters" / "micro_robust.zarr" / "filters" / "c" / "1" / "0"
    chunk.write_bytes(b"garbage")
    for path in (workdir / "results" / "summaries" / "micro_robust").iterdir():
        path.unlink()
    normal_layers = workdir / "results" / "summaries" / "micro_normal" / "layers.tsv"
    before = normal_layers.stat().st_mtime_ns
    result = run_snakemake(workdir, "--configfile", str(REPO / "config" / "micro.yaml"), "--cores", "2",
                           "results/summaries/micro_robust/layers.tsv", "results/summaries/micro_normal/layers.tsv",
                           check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    log = (workdir / "logs" / "summarize" / "micro_robust.log").read_text()
    # chunk 1 holds rows 4096-8191: the end of block3.layer.0.conv1 and all of block3.layer.0.conv2
    assert "micro_robust" in log and "layer(s) block3.layer.0.conv1, block3.layer.0.conv2 cannot" in log, log
    assert "extract it again" in log
    assert not list((workdir / "results" / "summaries" / "micro_robust").glob("*")), "no partial summary"
    assert normal_layers.stat().st_mtime_ns == before, "the other model's summary was not recomputed"
    assert "Error in rule summarize_model" in output
