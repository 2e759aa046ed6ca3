"""Bad filter stores are reported by model and layer with the fix, and no summary is written."""

import shutil

import numpy as np
import pytest
import zarr
from conftest import REPO, run_snakemake, write_filter_store

from filterlens.extract.store import FilterStoreError, open_filter_store
from filterlens.reduce.passes import summarize


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
    shutil.rmtree(workdir / "results" / "summaries" / "micro_robust")
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
    written = [p for p in (workdir / "results" / "summaries" / "micro_robust").rglob("*") if p.is_file()]
    assert not written, f"no partial summary: {written}"
    assert normal_layers.stat().st_mtime_ns == before, "the other model's summary was not recomputed"
    assert "Error in rule summarize_model" in output


def _sheet_and_layers(path, rows):
    """A two-model sheet and the real layer summaries of two stores."""
    from filterlens.config.sheet import read_sheet

    (path / "sheet.tsv").write_text(
        "model_id\tdataset\tarchitecture\tarch_kwargs\trobust\tsource\tsource_key\tcounterpart\n"
        'a_normal\tcoloured_digits\twide_resnet\t{"depth": 10, "widen_factor": 1}\tfalse\tminizoo\t\t\n'
        'a_robust\tcoloured_digits\twide_resnet\t{"depth": 10, "widen_factor": 1}\ttrue\tminizoo\t\ta_normal\n')
    tables = [summarize(open_filter_store(_store(path / f"{m}.zarr", rows)), threads=1, max_rows=4096)[0]
              for m in ("a_normal", "a_robust", "b_stranger")]
    return read_sheet(path / "sheet.tsv"), tables


def test_summaries_of_a_model_not_in_the_sheet_are_refused_not_counted(tmp_path, rows):
    import pandas as pd

    from filterlens.analyse.quality import SummaryError, quality_by_depth, sparse_shares

    sheet, (normal, robust, stranger) = _sheet_and_layers(tmp_path, rows)
    good = pd.concat([normal, robust], ignore_index=True)
    shares = sparse_shares(good, sheet).set_index("training")
    assert shares.n_models.tolist() == [1, 1] and shares.n_layers.tolist() == [2, 2]
    assert set(quality_by_depth(good, sheet).model_id) == {"a_normal", "a_robust"}
    bad = pd.concat([good, stranger], ignore_index=True)
    for function in (sparse_shares, quality_by_depth):
        with pytest.raises(SummaryError, match=r"layer summaries of model\(s\) 'b_stranger' are not in the sheet"):
            function(bad, sheet)
