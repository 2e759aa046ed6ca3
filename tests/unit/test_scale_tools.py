"""The scale run's report (dev/perf/scale_report.py), the floors the jobs are timed against
(dev/perf/floors.py) and the in-memory comparison (dev/perf/benchmark_in_memory.py) on tiny
inputs the tests write. The report as the run's last job: tests/workflow/test_scale_config.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import zarr
from conftest import load_tool, write_filter_store

from filterlens.acquire.checkpoint import Checkpoint, save_checkpoint
from filterlens.extract.store import FILTERS, open_filter_store
from filterlens.method.pca import Moments
from filterlens.models.architectures import build_architecture
from filterlens.reduce.passes import summarize


def _store(path, n_rows: int, c_out: int = 4):
    """A store of one layer of n_rows filters (c_in = n_rows / c_out)."""
    rows = np.random.default_rng(n_rows).standard_normal((n_rows, 9), dtype=np.float32)
    return str(write_filter_store(path, [(n_rows // c_out, c_out, 1)], [rows], 1024))


def _benchmark(folder, stage: str, job: str, seconds: float, rss: float):
    (folder / stage).mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{"s": seconds, "h:m:s": "0:00:00", "max_rss": rss, "max_vms": 0, "max_uss": 0, "max_pss": 0,
                   "io_in": 0, "io_out": 0, "mean_load": 100, "cpu_time": seconds}]).to_csv(
        folder / stage / f"{job}.tsv", sep="\t", index=False)


NO_BATCHES = {"summarize": [], "coefficient_range": [], "coefficient_histograms": []}


def test_stage_table_sums_jobs_and_compares_reading_passes_with_the_floor(tmp_path):
    report = load_tool("scale_report")
    benchmarks = tmp_path / "benchmarks"
    for job, seconds in (("small", 2.0), ("big", 6.0)):
        _benchmark(benchmarks, "summarize", job, seconds, 300 + seconds)
        _benchmark(benchmarks, "extract", job, 10 * seconds, 2000)
    _benchmark(benchmarks, "pca_bases", "pca_bases", 1.5, 150)
    floor = pd.DataFrame({"job": ["small", "big"], "floor_s": [0.5, 2.0], "n_filters": [10**6, 3 * 10**7]})
    read_jobs = pd.DataFrame({"models": [("small",), ("big",)], "job_s": [1.5, 3.0], "job_s_alone": [1.0, 2.5],
                              "floor_side_s": [0.75, 2.25]})
    jobs = report.job_table(benchmarks)
    reading = report.job_stores(jobs, NO_BATCHES)
    table = report.stage_table(jobs, floor, read_jobs, reading, 10**7, report.copy_floor_table(jobs)).set_index("stage")
    assert table.loc["summarize", ["jobs", "wall_s", "longest_job_s", "peak_rss_mb"]].tolist() == [2, 8.0, 6.0, 306.0]
    assert table.loc["summarize", "x_read_floor"] == pytest.approx(8.0 / 2.5)
    assert table.loc["summarize", "x_read_floor_10M"] == pytest.approx(6.0 / 2.0)  # the big store only
    assert table.loc["summarize", "x_job_floor"] == pytest.approx(8.0 / 4.5)  # against read-only jobs
    assert np.isnan(table.loc["extract", "x_read_floor"])  # extraction does not read stores
    assert table.loc["merges, statistics, figures, tables", "jobs"] == 1
    assert table.loc["read floor (decompress + sum)", "million_filters_per_s"] == pytest.approx(31 / 2.5)
    assert table.loc["read-only jobs alone (start, import, decompress + sum)", "x_read_floor"] == pytest.approx(3.5 / 2.5)
    assert table.loc["read-only jobs side by side, as the passes ran", "x_read_floor"] == pytest.approx(4.5 / 2.5)
    assert table.loc["read floor side by side (this process, a thread per job)", "x_read_floor"] == pytest.approx(
        3.0 / 2.5)


def test_a_batch_job_is_compared_with_the_read_of_its_stores(tmp_path):
    """Jobs of batch rules (benchmarks/<stage>/batches/N.tsv) against the read floor of their
    models and a read-only job of the same stores."""
    report = load_tool("scale_report")
    benchmarks = tmp_path / "benchmarks"
    _benchmark(benchmarks, "summarize/batches", "0", 9.0, 400)  # small + big
    _benchmark(benchmarks, "summarize/batches", "1", 1.0, 300)  # other
    batches = {**NO_BATCHES, "summarize": [["small", "big"], ["other"]]}
    floor = pd.DataFrame({"job": ["small", "big", "other"], "floor_s": [0.5, 2.0, 0.25],
                          "n_filters": [10**6, 3 * 10**7, 5 * 10**6]})
    read_jobs = pd.DataFrame({"models": [("small", "big"), ("other",)], "job_s": [3.0, 0.75], "job_s_alone": [2.75, 0.5],
                              "floor_side_s": [2.5, 0.5]})
    jobs = report.job_table(benchmarks)
    assert sorted(zip(jobs.stage, jobs.job)) == [("summarize", "batches/0"), ("summarize", "batches/1")]
    reading = report.job_stores(jobs, batches)
    assert reading.models.tolist() == [("small", "big"), ("other",)]
    table = report.stage_table(jobs, floor, read_jobs, reading, 10**7, report.copy_floor_table(jobs)).set_index("stage")
    assert table.loc["summarize", "jobs"] == 2
    assert table.loc["summarize", "x_read_floor"] == pytest.approx(10.0 / 2.75)
    # batch 0's stores hold 15.5M filters on average, batch 1's one store 5M
    assert table.loc["summarize", "x_read_floor_10M"] == pytest.approx(9.0 / 2.5)
    assert table.loc["summarize", "x_job_floor"] == pytest.approx(10.0 / 3.75)
    assert table.loc["read-only jobs side by side, as the passes ran", "jobs"] == 2


def test_benchmark_files_of_the_other_job_layout_are_left_out(tmp_path):
    """A run with another analysis.models_per_job leaves its reading passes' benchmark files."""
    report = load_tool("scale_report")
    benchmarks = tmp_path / "benchmarks"
    _benchmark(benchmarks, "summarize", "small", 2.0, 300)  # a job per model, from an earlier run
    _benchmark(benchmarks, "summarize/batches", "0", 3.0, 300)
    _benchmark(benchmarks, "summarize/batches", "1", 3.0, 300)  # a batch the config no longer makes
    _benchmark(benchmarks, "extract", "small", 5.0, 2000)
    batches = {**NO_BATCHES, "summarize": [["small", "big"]]}
    jobs = report.of_this_layout(report.job_table(benchmarks), batches)
    assert sorted(zip(jobs.stage, jobs.job)) == [("extract", "small"), ("summarize", "batches/0")]
    jobs = report.of_this_layout(report.job_table(benchmarks), NO_BATCHES)
    assert sorted(zip(jobs.stage, jobs.job)) == [("extract", "small"), ("summarize", "small")]


def test_extraction_jobs_are_compared_with_the_copy_floor_jobs_of_the_same_models(tmp_path):
    report = load_tool("scale_report")
    benchmarks = tmp_path / "benchmarks"
    for job, seconds in (("small", 2.0), ("big", 6.0), ("other", 5.0)):
        _benchmark(benchmarks, "extract", job, seconds, 2000)
    for job, seconds in (("small", 1.0), ("big", 5.0)):  # "other" has no copy-floor job
        _benchmark(benchmarks, "copy_floor", job, seconds, 1500)
    jobs = report.job_table(benchmarks)
    copies = report.copy_floor_table(jobs).set_index("model")
    assert copies.x_copy_floor.to_dict() == {"big": pytest.approx(1.2), "small": pytest.approx(2.0)}
    floor = pd.DataFrame({"job": ["small"], "floor_s": [0.5], "n_filters": [10**6]})
    read_jobs = pd.DataFrame({"models": [("small",)], "job_s": [1.5], "job_s_alone": [1.5], "floor_side_s": [0.5]})
    table = report.stage_table(jobs, floor, read_jobs, report.job_stores(jobs, NO_BATCHES), 10**7,
                               copies.reset_index()).set_index("stage")
    assert table.loc["extract", "jobs"] == 3
    assert table.loc["extract", "x_copy_floor"] == pytest.approx(8.0 / 6.0)  # the two models with both jobs
    assert table.loc["copy floor jobs (the extraction of 2 models)", ["jobs", "wall_s"]].tolist() == [2, 6.0]
    assert "merges, statistics, figures, tables" not in table.index  # copy-floor jobs are no merge


@pytest.mark.parametrize("jobs", [1, 2])
def test_read_floor_reads_every_store(tmp_path, jobs):
    report = load_tool("scale_report")
    stores = [_store(tmp_path / "a.zarr", 4096), _store(tmp_path / "b.zarr", 2048), _store(tmp_path / "c.zarr", 1024)]
    floor, read_jobs = report.read_floor([stores[:2], stores[2:]], threads=2, jobs=jobs)
    assert floor.job.tolist() == ["a", "b", "c"] and floor.n_filters.tolist() == [4096, 2048, 1024]
    assert (floor.floor_s > 0).all()
    assert read_jobs.models.tolist() == [("a", "b"), ("c",)]
    # a job of its own also starts Python and imports
    assert (read_jobs.floor_side_s > 0).all()
    for column in ("job_s", "job_s_alone"):
        assert read_jobs[column].iloc[0] > floor.floor_s.iloc[:2].sum() and read_jobs[column].iloc[1] > floor.floor_s.iloc[2]


def test_in_memory_loads_at_least_or_at_most_a_size_in_whole_stores(tmp_path):
    tool = load_tool("benchmark_in_memory")
    stores = [_store(tmp_path / f"{name}.zarr", n) for name, n in (("a", 4096), ("b", 8192), ("c", 2048))]
    assert tool.load_layers(stores, 5000)[1] == 4096 + 8192  # at least
    assert tool.load_layers(stores, -5000)[1] == 4096  # at most
    assert tool.load_layers(stores, -100)[1] == 4096  # never less than one store
    layers, total = tool.load_layers(stores, 10**9)
    assert total == 14336 and [c_out for _, c_out in layers] == [4, 4, 4]


def test_in_memory_run_measures_the_plain_reductions(tmp_path):
    tool = load_tool("benchmark_in_memory")
    stores = [_store(tmp_path / "a.zarr", 4096, c_out=64)]
    row = tool.run_size(stores, 1)
    assert row["n_filters"] == 4096 and row["peak_rss_mb"] > 0 and row["wall_s"] >= row["reduce_s"] > 0


def test_the_copy_floor_writes_every_3x3_weight_unprocessed_with_the_stores_codecs(tmp_path):
    floors = load_tool("floors")
    kwargs = {"depth": 10, "widen_factor": 1}
    model = build_architecture("wide_resnet", kwargs, 10)
    save_checkpoint(Checkpoint(model_id="m", dataset="coloured_digits", num_classes=10, architecture="wide_resnet",
                               arch_kwargs=kwargs, normalization=None, source="minizoo",
                               state_dict=model.state_dict()), tmp_path / "m.pt")
    n_filters = floors.write_copy_floor(tmp_path / "m.pt", tmp_path / "floor.zarr", chunk_rows=1024)
    expected = np.concatenate([w.reshape(-1, 9).numpy() for w in model.state_dict().values()
                               if w.ndim == 4 and w.shape[-2:] == (3, 3)])
    array = zarr.open_group(str(tmp_path / "floor.zarr"), mode="r")[FILTERS]
    assert n_filters == len(expected) and array.chunks == (1024, 9)
    np.testing.assert_array_equal(array[:], expected)
    store = open_filter_store(write_filter_store(tmp_path / "store.zarr", [(1, 1, 1)], [expected[:1]], 1024))
    assert array.metadata.codecs == store.filters.metadata.codecs


def test_the_read_floor_and_pass_1_without_orthogonality_stream_as_pass_1(tmp_path):
    """sum_rows reads every row; pass 1 without its Gram products merges the same pieces into the
    same moments as pass 1, over segments smaller than a layer."""
    floors = load_tool("floors")
    rng = np.random.default_rng(0)
    rows = [rng.standard_normal((n, 9)).astype(np.float32) for n in (48, 512)]
    store = open_filter_store(write_filter_store(tmp_path / "m.zarr", [(3, 16, 1), (32, 16, 1)], rows, 100))
    assert floors.sum_rows(store, 2, 300) == pytest.approx(float(sum(r.sum(dtype=np.float64) for r in rows)))
    scaled = floors.summarize_without_orthogonality(store, 2, 300)
    expected = summarize(store, 2, 300)[1].scaled
    assert len(scaled) == 2
    for ours, theirs in zip(scaled, expected):
        assert isinstance(ours, Moments) and ours.n == theirs.n
        np.testing.assert_array_equal(ours.gram, theirs.gram)
