"""The results do not depend on the run: reruns, thread counts and chunk sizes.

- ``micro_run`` (--cores 2) against a fresh run with --cores 1: every file under
  results/summaries and results/analysis, results/tables/*.tsv and results/metrics/*.tsv are
  identical byte for byte; training is seeded and deterministic on CPU (every checkpoint
  tensor equal), so are the filter stores.
- ``micro_run`` against a copy rerun with extraction.chunk_rows 1024 instead of 4096 (the
  stores are extracted again, everything downstream recomputed, the checkpoints kept): the
  summaries and analyses agree to 1e-12 relative (sums are merged in a different order),
  counts exactly.

Figures (PNG/PDF) are not compared here: tests/workflow/test_figures.py checks they are reproducible.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr
from conftest import REPO, run_snakemake
from test_faults import assert_same_checkpoint, assert_same_store

pytestmark = pytest.mark.workflow
MICRO = REPO / "config" / "micro.yaml"
MODELS = ["micro_normal", "micro_robust"]


def data_files(workdir: Path) -> list[str]:
    """The run's data outputs: summaries, analyses, metrics and the TSV tables."""
    results = workdir / "results"
    files = [p for part in ("summaries", "analysis") for p in (results / part).rglob("*") if p.is_file()]
    files += list((results / "tables").glob("*.tsv")) + list((results / "metrics").glob("*.tsv"))
    return sorted(str(p.relative_to(workdir)) for p in files)


@pytest.fixture(scope="module")
def single_core_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("micro_cores1")
    run_snakemake(workdir, "--configfile", str(MICRO), "--cores", "1")
    return workdir


@pytest.fixture(scope="module")
def small_chunk_run(micro_run, tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("micro_chunks1024") / "run"
    shutil.copytree(micro_run, workdir, symlinks=True, ignore=shutil.ignore_patterns("locks"))
    extra = workdir.parent / "chunks.yaml"
    extra.write_text("extraction:\n  chunk_rows: 1024\n")
    result = run_snakemake(workdir, "--configfile", str(MICRO), str(extra), "--cores", "2")
    output = result.stdout + result.stderr
    assert "rule extract_filters:" in output and "rule train_minizoo:" not in output, output
    return workdir


def test_summaries_and_tables_are_bitwise_identical_across_runs_and_core_counts(micro_run, single_core_run):
    files = data_files(micro_run)
    assert data_files(single_core_run) == files
    assert len(files) > 20 and any("moments.npz" in f for f in files)
    different = [f for f in files if (micro_run / f).read_bytes() != (single_core_run / f).read_bytes()]
    assert not different, f"differ between --cores 2 and --cores 1: {different}"


@pytest.mark.parametrize("model", MODELS)
def test_training_and_extraction_are_deterministic_on_cpu(micro_run, single_core_run, model):
    assert_same_checkpoint(micro_run / "data" / "models" / f"{model}.pt",
                           single_core_run / "data" / "models" / f"{model}.pt")
    assert_same_store(micro_run / "results" / "filters" / f"{model}.zarr",
                      single_core_run / "results" / "filters" / f"{model}.zarr")


def _close_arrays(a: np.ndarray, b: np.ndarray, name: str) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype, name
    if not np.issubdtype(a.dtype, np.floating):
        assert pd.Series(a.ravel()).equals(pd.Series(b.ravel())), name  # counts, ids, names: exactly
        return
    assert np.array_equal(np.isnan(a), np.isnan(b)), name
    finite = ~np.isnan(a)
    scale = np.abs(a[finite]).max(initial=0.0)
    np.testing.assert_allclose(b[finite], a[finite], rtol=1e-12, atol=1e-12 * scale, err_msg=name)


def test_chunk_size_changes_results_by_at_most_1e_12_relative(micro_run, small_chunk_run):
    for model in MODELS:
        store = small_chunk_run / "results" / "filters" / f"{model}.zarr"
        assert zarr.open_array(str(store / "filters"), mode="r").chunks == (1024, 9)
    files = data_files(micro_run)
    assert data_files(small_chunk_run) == files
    compared = 0
    for name in files:
        a, b = micro_run / name, small_chunk_run / name
        if name.endswith(".npz"):
            with np.load(a) as da, np.load(b) as db:
                assert sorted(da.files) == sorted(db.files), name
                for key in da.files:
                    _close_arrays(da[key], db[key], f"{name}:{key}")
        else:
            ta, tb = pd.read_csv(a, sep="\t"), pd.read_csv(b, sep="\t")
            assert ta.columns.tolist() == tb.columns.tolist() and ta.shape == tb.shape, name
            for column in ta.columns:
                _close_arrays(ta[column].to_numpy(), tb[column].to_numpy(), f"{name}:{column}")
        compared += 1
    assert compared == len(files) > 20


# --- provenance: what produced the run ------------------------------------------------------

def test_the_run_records_what_produced_it(micro_run):
    import json

    from filterlens.io.hashing import sha256_of
    from filterlens.report.provenance import KEY_PACKAGES

    record = json.loads((micro_run / "results" / "provenance" / "provenance.json").read_text())
    assert record["config"]["extraction"]["chunk_rows"] == 4096 and record["config"]["sheet"] == "config/models/micro.tsv"
    assert record["config"]["dataset"]["seed"] == 0  # defaults filled in: the config as resolved
    assert record["sheet"]["sha256"] == sha256_of(REPO / "config" / "models" / "micro.tsv")
    assert set(KEY_PACKAGES) <= set(record["packages"]) and record["packages"]["snakemake"].startswith("9.")
    assert record["packages"]["numpy"] == np.__version__
    assert len(record["workflow"]["commit"]) == 40 and isinstance(record["workflow"]["dirty"], bool)
    assert record["interpreter"]["python"].count(".") == 2 and record["interpreter"]["platform"]
    for model in record["models"]:
        checkpoint = micro_run / "data" / "models" / f"{model['model_id']}.pt"
        assert model["checkpoint_sha256"] == sha256_of(checkpoint) == model["store_checkpoint_sha256"]
        assert model["store_matches_checkpoint"] is True
    assert [m["model_id"] for m in record["models"]] == MODELS
    tsv = pd.read_csv(micro_run / "results" / "provenance" / "provenance.tsv", sep="\t")
    assert "sheet.sha256" in set(tsv.key) and "models.micro_robust.checkpoint_sha256" in set(tsv.key)
    html = (micro_run / "results" / "provenance" / "provenance.html").read_text()
    assert record["workflow"]["commit"] in html and "micro_robust" in html


def test_provenance_reruns_alone_when_the_config_or_sheet_changes(micro_run, tmp_path):
    import re

    def planned(*args):
        result = run_snakemake(micro_run, "-n", "--cores", "1", "--configfile", str(MICRO), *args)
        return sorted(set(re.findall(r"^(?:local)?rule (\w+):", result.stdout + result.stderr, flags=re.M)))

    # a config value no other rule reads (acquisition is for robustbench rows only)
    extra = tmp_path / "attempts.yaml"
    extra.write_text("acquisition:\n  attempts: 7\n")
    assert planned(str(extra)) == ["all", "provenance"]
    # the same sheet with a comment: other rules see the same rows; provenance sees new bytes
    sheet = tmp_path / "micro.tsv"
    sheet.write_text((REPO / "config" / "models" / "micro.tsv").read_text() + "# a comment\n")
    plan = planned("--config", f"sheet={sheet}")
    assert "provenance" in plan


def test_git_state_outside_a_checkout(tmp_path):
    from filterlens.report.provenance import git_state

    state = git_state(tmp_path)
    assert state["commit"] is None and state["dirty"] is None and "not a git checkout" in state["note"]
