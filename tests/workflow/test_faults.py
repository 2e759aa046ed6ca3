"""Faults injected into the real Snakefile on the micro config, and what the workflow does.

Each test copies the finished session run (``micro_run``), injects one fault and checks the
outcome against the undisturbed run:

- a job SIGKILLed in the middle of extraction, of a summary and of training (and the whole
  snakemake process tree killed with a job whose outputs are written): the rerun gives the
  undisturbed run's results exactly and leaves no ``.partial`` path;
- bad checkpoints and bad filter stores: the job fails with one message naming the model or
  file and the fix, and every other output stays as it was (same bytes, same mtime);
- bad sheets and configs that ``tests/workflow/test_bad_input.py`` and ``tests/workflow/test_figures.py`` do
  not cover, against a finished run: nothing is touched;
- ``results/`` on a real tmpfs (root only) that fills up during an extraction or a summary, or
  is remounted read-only: the job's log ends with one message naming the output and the fix,
  and every other output stays.

The kills are made deterministic by a test-only ``sitecustomize`` (``FAULT_HOOK`` below) put
on the jobs' PYTHONPATH: it pauses a rule script at a chosen point (after n layers written,
after n optimiser steps, just before an output's rename, at exit) and writes a marker with
its pid, which the test then kills with SIGKILL. docs/faults.md lists every fault and outcome.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch
import zarr
from conftest import REPO, SNAKEMAKE, CodeRunningPayload, run_snakemake

pytestmark = pytest.mark.workflow
MICRO = REPO / "config" / "micro.yaml"
CONFIG = ("--configfile", str(MICRO), "--cores", "2")

FAULT_HOOK = r'''
"""Test-only fault injection (tests/workflow/test_faults.py): pause a rule script at a chosen point so
that the test can SIGKILL it there. Inactive unless FILTERLENS_FAULT is set, and never in the
snakemake process itself."""
import os
import sys

_FAULT = os.environ.get("FILTERLENS_FAULT", "")
_DIR = os.environ.get("FILTERLENS_FAULT_DIR", "")
_real_replace = os.replace


def _pause(where):
    import time
    # Written under another name and renamed, so that the test's glob for paused.<pid> never
    # sees a marker being written.
    marker = os.path.join(_DIR, "paused.%d" % os.getpid())
    partial = os.path.join(_DIR, "writing.%d" % os.getpid())
    with open(partial, "w") as handle:
        handle.write(where)
    _real_replace(partial, marker)
    while True:
        time.sleep(0.5)


def _after_import(name, patch):
    import importlib.abc
    import importlib.machinery

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            if fullname != name:
                return None
            sys.meta_path.remove(self)
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            original = spec.loader.exec_module

            def exec_module(module):
                original(module)
                patch(module)
            spec.loader.exec_module = exec_module
            return spec
    sys.meta_path.insert(0, Finder())


def _nth_call(function, n, where):
    calls = [0]

    def wrapper(*args, **kwargs):
        result = function(*args, **kwargs)
        calls[0] += 1
        if calls[0] == n:
            _pause(where)
        return result
    return wrapper


if _FAULT and _DIR and "snakemake" not in os.path.basename(sys.argv[0] if sys.argv else ""):
    point, _, argument = _FAULT.partition(":")
    if point == "before_rename":  # the output is complete under its .partial name, not renamed yet
        def replace(src, dst, *args, **kwargs):
            if os.fspath(dst).endswith(argument):
                _pause("before renaming " + os.fspath(src))
            return _real_replace(src, dst, *args, **kwargs)
        os.replace = replace
    elif point == "after_layers":  # extraction: n layers written into the .partial store
        def patch(module):
            cls = module.FilterStoreWriter
            cls.write_layer = _nth_call(cls.write_layer, int(argument), "after layer " + argument)
        _after_import("filterlens.extract.store", patch)
    elif point == "after_steps":  # training: n optimiser steps taken
        def patch(module):
            import torch
            torch.optim.SGD.step = _nth_call(torch.optim.SGD.step, int(argument), "after step " + argument)
        _after_import("filterlens.train.minizoo", patch)
    elif point == "at_exit":  # the script wrote its outputs; snakemake has not heard of it yet
        import atexit
        atexit.register(_pause, "at exit")
'''


# --- helpers: copies, snapshots, comparisons -------------------------------------------------

def copy_run(micro_run: Path, tmp_path: Path) -> Path:
    workdir = tmp_path / "run"
    shutil.copytree(micro_run, workdir, symlinks=True, ignore=shutil.ignore_patterns("locks"))
    return workdir


def snapshot(workdir: Path, parts=("results", "data")) -> dict[str, tuple[int, str]]:
    """mtime and sha256 of every file under ``parts``; not results/provenance, which reruns
    whenever the workflow's checkout changes (commit, dirty tree): others edit it meanwhile."""
    state = {}
    for part in parts:
        for path in sorted((workdir / part).rglob("*")):
            if path.is_file() and "provenance" not in path.parts:
                state[str(path.relative_to(workdir))] = (path.stat().st_mtime_ns,
                                                         hashlib.sha256(path.read_bytes()).hexdigest())
    return state


def assert_untouched(before: dict, after: dict, changed_prefixes: tuple[str, ...] = ()) -> None:
    """Every file of ``before`` outside ``changed_prefixes`` is still there, same bytes, same mtime."""
    for name, state in before.items():
        if name.startswith(changed_prefixes):
            continue
        assert name in after, f"{name} was removed"
        assert after[name][1] == state[1], f"{name} was changed"
        assert after[name][0] == state[0], f"{name} was rewritten (mtime changed): recomputed"


def assert_same_store(a: Path, b: Path) -> None:
    ga, gb = zarr.open_group(str(a), mode="r"), zarr.open_group(str(b), mode="r")
    assert dict(ga.attrs) == dict(gb.attrs)
    fa, fb = ga["filters"], gb["filters"]
    assert fa.dtype == fb.dtype and fa.shape == fb.shape and fa.chunks == fb.chunks
    assert np.array_equal(fa[:], fb[:])


def assert_same_npz(a: Path, b: Path) -> None:
    with np.load(a) as da, np.load(b) as db:
        assert sorted(da.files) == sorted(db.files)
        for key in da.files:
            assert da[key].dtype == db[key].dtype and np.array_equal(da[key], db[key], equal_nan=True), key


def assert_same_checkpoint(a: Path, b: Path) -> None:
    ca, cb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    assert ca.keys() == cb.keys()
    assert ca["state_dict"].keys() == cb["state_dict"].keys()
    for key, tensor in ca["state_dict"].items():
        assert torch.equal(tensor, cb["state_dict"][key]), key
    assert {k: v for k, v in ca.items() if k != "state_dict"} == {k: v for k, v in cb.items() if k != "state_dict"}


def started_jobs(output: str) -> list[dict]:
    """The jobs snakemake started, from its output: rule, and input, output and log paths."""
    jobs = []
    for block in re.finditer(r"^(?:local)?rule (\w+):\n((?:    .*\n?)*)", output, flags=re.M):
        job = {"rule": block.group(1), "input": [], "output": [], "log": []}
        for key, value in re.findall(r"^    (input|output|log): (.*)$", block.group(2), flags=re.M):
            job[key] = value.split(", ")
        jobs.append(job)
    return jobs


def started_rules(output: str) -> set[str]:
    return {job["rule"] for job in started_jobs(output)}


def partials(workdir: Path) -> list[Path]:
    return [p for p in workdir.rglob(".*.partial") if ".snakemake" not in p.parts]


# --- killing a job --------------------------------------------------------------------------

class PausedRun:
    """snakemake started with a fault hook; ``pid`` is the rule script paused at the fault."""

    def __init__(self, workdir: Path, fault: str, *args: str, timeout: float = 300):
        self.fault_dir = workdir.parent / "fault_hook"
        self.fault_dir.mkdir(exist_ok=True)
        (self.fault_dir / "sitecustomize.py").write_text(FAULT_HOOK)
        env = {**os.environ, "PYTHONWARNINGS": "ignore", "FILTERLENS_FAULT": fault,
               "FILTERLENS_FAULT_DIR": str(self.fault_dir),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(self.fault_dir), os.environ.get("PYTHONPATH")]))}
        command = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *args]
        self.output_path = workdir.parent / "snakemake.out"
        self.process = subprocess.Popen(command, stdout=open(self.output_path, "w"), stderr=subprocess.STDOUT,
                                        env=env)
        deadline = time.monotonic() + timeout
        while not (markers := list(self.fault_dir.glob("paused.[0-9]*"))):
            if self.process.poll() is not None:
                raise AssertionError(f"snakemake ended before the fault {fault}:\n{self.output()}")
            if time.monotonic() > deadline:
                self.kill_all()
                raise AssertionError(f"fault {fault} not reached in {timeout} s:\n{self.output()}")
            time.sleep(0.1)
        self.pid = int(markers[0].name.split(".")[1])
        self.where = markers[0].read_text()
        # The paused process is one of snakemake's own jobs (a descendant of the snakemake process).
        self.tree = [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children(recursive=True)]
        assert self.pid in [p.pid for p in self.tree], (self.pid, self.tree)

    def output(self) -> str:
        return self.output_path.read_text()

    def kill_job(self) -> int:
        """SIGKILL the paused rule script; snakemake sees its job fail and finishes."""
        os.kill(self.pid, signal.SIGKILL)
        return self.process.wait(timeout=120)

    def kill_all(self) -> int:
        """SIGKILL snakemake and every process under it at once (a node that dies)."""
        for process in self.tree:
            try:
                process.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        return self.process.wait(timeout=120)


def test_a_job_killed_in_the_middle_of_extraction_is_redone_identically(micro_run, tmp_path):
    workdir = copy_run(micro_run, tmp_path)
    store = workdir / "results" / "filters" / "micro_robust.zarr"
    shutil.rmtree(store)
    target = "results/filters/micro_robust.zarr"
    run = PausedRun(workdir, "after_layers:3", *CONFIG, target)
    assert (workdir / "results" / "filters" / ".micro_robust.zarr.partial").is_dir()
    assert run.kill_job() != 0
    assert "Error in rule extract_filters" in run.output()
    assert not store.exists(), "a killed extraction leaves no store"
    run_snakemake(workdir, *CONFIG, target)
    assert_same_store(store, micro_run / "results" / "filters" / "micro_robust.zarr")
    assert not partials(workdir)


@pytest.mark.parametrize("kill", ["job before its second output is renamed", "snakemake and job after the outputs"])
def test_a_summary_killed_is_redone_identically(micro_run, tmp_path, kill):
    workdir = copy_run(micro_run, tmp_path)
    summaries = workdir / "results" / "summaries" / "micro_robust"
    for name in ("layers.tsv", "moments.npz"):
        (summaries / name).unlink()
    target = "results/summaries/micro_robust/layers.tsv"
    if kill.startswith("job"):
        # summarize_model writes moments.npz, then layers.tsv: killed with the first renamed
        # and the second complete under its .partial name
        run = PausedRun(workdir, "before_rename:micro_robust/layers.tsv", *CONFIG, target)
        assert (summaries / ".layers.tsv.partial").exists() and not (summaries / "layers.tsv").exists()
        assert run.kill_job() != 0
        assert "Error in rule summarize_model" in run.output()
        assert not (summaries / "layers.tsv").exists()
        assert not (summaries / "moments.npz").exists(), "snakemake removes the failed job's outputs"
        rerun = run_snakemake(workdir, *CONFIG, target)
    else:
        # both outputs written, the job not yet reported: snakemake marks them incomplete
        run = PausedRun(workdir, "at_exit", *CONFIG, target)
        assert (summaries / "layers.tsv").exists() and (summaries / "moments.npz").exists()
        run.kill_all()
        # snakemake's lock outlives a killed snakemake; the documented recovery is --unlock
        run_snakemake(workdir, *CONFIG, "--unlock", target)
        plan = run_snakemake(workdir, *CONFIG, "-n", "--workflow-profile", "none", target, check=False)
        assert plan.returncode != 0 and "Incomplete" in plan.stdout + plan.stderr, plan.stdout + plan.stderr
        rerun = run_snakemake(workdir, *CONFIG, target)  # the default profile has rerun-incomplete
        assert "summarize_model" in rerun.stdout + rerun.stderr
    reference = micro_run / "results" / "summaries" / "micro_robust"
    assert (summaries / "layers.tsv").read_text() == (reference / "layers.tsv").read_text()
    assert_same_npz(summaries / "moments.npz", reference / "moments.npz")
    assert not partials(workdir)


def test_a_training_job_killed_in_the_middle_is_redone_identically(micro_run, tmp_path):
    workdir = copy_run(micro_run, tmp_path)
    checkpoint = workdir / "data" / "models" / "micro_robust.pt"
    checkpoint.unlink()
    target = "data/models/micro_robust.pt"
    run = PausedRun(workdir, "after_steps:2", *CONFIG, target)
    assert run.where == "after step 2"
    assert run.kill_job() != 0
    assert "Error in rule train_minizoo" in run.output()
    assert not checkpoint.exists()
    run_snakemake(workdir, *CONFIG, target)
    assert_same_checkpoint(checkpoint, micro_run / "data" / "models" / "micro_robust.pt")
    assert not partials(workdir)


# --- bad checkpoints ------------------------------------------------------------------------

def _edit_state(path: Path, edit) -> None:
    data = torch.load(path, weights_only=True)
    edit(data["state_dict"])
    torch.save(data, path)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _nan(state):
    state["conv1.weight"][0, 0, 0, 0] = float("nan")


def _inf(state):
    state["block1.layer.0.conv1.weight"][1, 2, 0, 1] = float("inf")


def _edit_fields(path: Path, **fields) -> None:
    data = torch.load(path, weights_only=True)
    data.update(fields)
    torch.save(data, path)


def _marker(checkpoint: Path) -> Path:
    return checkpoint.parent.parent.parent / "payload_ran"


FILE_FIX = "Fix: delete data/models/micro_robust.pt and acquire the model again."
BAD_CHECKPOINTS = {
    "truncated": (_truncate, ["checkpoint data/models/micro_robust.pt cannot be loaded (truncated or corrupt?)",
                              FILE_FIX]),
    "empty": (lambda p: p.write_bytes(b""), ["checkpoint data/models/micro_robust.pt is empty", FILE_FIX]),
    "html page": (lambda p: p.write_bytes(b"<!DOCTYPE html>\n<html><body>Rate limit exceeded</body></html>\n"),
                  ["checkpoint data/models/micro_robust.pt is an HTML/XML page, not weights", FILE_FIX]),
    "missing key": (lambda p: _edit_state(p, lambda s: s.pop("fc.weight")),
                    ["model micro_robust: the weights do not fit architecture wide_resnet", "missing keys fc.weight",
                     "Fix: check the sheet's architecture and arch_kwargs"]),
    "extra key": (lambda p: _edit_state(p, lambda s: s.__setitem__("head.weight", torch.zeros(3))),
                  ["model micro_robust: the weights do not fit", "unexpected keys head.weight"]),
    "mis-shaped": (lambda p: _edit_state(p, lambda s: s.__setitem__("conv1.weight", torch.zeros(16, 3, 5, 5))),
                   ["model micro_robust: the weights do not fit",
                    "mis-shaped tensors conv1.weight (16, 3, 5, 5) != (16, 3, 3, 3)"]),
    "NaN weight": (lambda p: _edit_state(p, _nan), ["model micro_robust: weights with NaN or Inf in conv1.weight",
                                                    "Fix: acquire or train the model again"]),
    "Inf weight": (lambda p: _edit_state(p, _inf),
                   ["model micro_robust: weights with NaN or Inf in block1.layer.0.conv1.weight"]),
    "another model's checkpoint": (lambda p: _edit_fields(p, model_id="micro_normal"),
                                   ["checkpoint data/models/micro_robust.pt holds model_id 'micro_normal', but the "
                                    "sheet's row is 'micro_robust'",
                                    "Fix: delete data/models/micro_robust.pt and acquire the model again"]),
    "a pickle that runs code": (lambda p: _edit_fields(p, extra={"payload": CodeRunningPayload(_marker(p))}),
                                ["checkpoint data/models/micro_robust.pt holds objects other than tensors and plain "
                                 "values; unpickling them would run code from the file, so it is refused", FILE_FIX]),
}
@pytest.mark.parametrize("fault", BAD_CHECKPOINTS)
def test_a_bad_checkpoint_fails_its_jobs_with_the_model_and_fix_and_nothing_else_changes(micro_run, tmp_path,
                                                                                          fault):
    workdir = copy_run(micro_run, tmp_path)
    inject, fragments = BAD_CHECKPOINTS[fault]
    before = snapshot(workdir)
    inject(workdir / "data" / "models" / "micro_robust.pt")  # newer than everything downstream
    result = run_snakemake(workdir, *CONFIG, check=False)  # the whole workflow, keep-going (profile)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Error in rule extract_filters" in output and "logs/extract/micro_robust.log" in output
    log = (workdir / "logs" / "extract" / "micro_robust.log").read_text()
    last = log.strip().splitlines()[-1]  # the log ends with the one message (after the traceback)
    assert "extract_filters failed:" in last, log
    for fragment in fragments:
        assert fragment in last, (fragment, last)
    # only the jobs that read the checkpoint ran, each failed with the message; nothing else was rerun
    jobs = started_jobs(output)
    assert {"extract_filters", "evaluate_model"} <= {job["rule"] for job in jobs}, output
    for job in jobs:
        assert "data/models/micro_robust.pt" in job["input"], (job, output)
        last_line = (workdir / job["log"][0]).read_text().strip().splitlines()[-1]
        assert f"{job['rule']} failed:" in last_line and fragments[0] in last_line, (job["log"], last_line)
    assert "Finished jobid" not in output, output  # no job succeeded
    recomputed = tuple(path for job in jobs for path in job["output"])
    assert_untouched(before, snapshot(workdir), ("data/models/micro_robust.pt", *recomputed))
    assert not partials(workdir)
    assert not _marker(workdir / "data" / "models" / "micro_robust.pt").exists()


# --- bad filter stores ----------------------------------------------------------------------

def _rewrite_filters(store: Path, rows: np.ndarray) -> None:
    group = zarr.open_group(str(store), mode="r+")
    chunks = group["filters"].chunks
    del group["filters"]
    group.create_array("filters", data=rows, chunks=(chunks[0],) + rows.shape[1:])


def _store_rows(store: Path) -> np.ndarray:
    return zarr.open_array(str(store / "filters"), mode="r")[:]


def _nan_in_store(store: Path) -> None:
    array = zarr.open_array(str(store / "filters"), mode="r+")
    array[300, 4] = np.inf  # row 300 is in block1.layer.0.conv1 (rows 48-304)


def _edit_store_attrs(store: Path, edit) -> None:
    group = zarr.open_group(str(store), mode="r+")
    attrs = dict(group.attrs)
    edit(attrs)
    group.attrs.update(attrs)


def _wrong_c_out(attrs) -> None:
    attrs["layers"]["c_out"][1] += 1  # block1.layer.0.conv1: 16 x 16 rows, read as 17 x 16


def _overlapping_ranges(attrs) -> None:
    attrs["layers"]["row_start"][2] -= 16


def _another_models_store(store: Path) -> None:
    """micro_normal's store in micro_robust's place (snakemake's timestamp file kept, so only
    the summary asked for runs)."""
    stamp = store.parent / "stamp.kept"
    shutil.copy2(store / ".snakemake_timestamp", stamp)
    shutil.rmtree(store)
    shutil.copytree(store.parent / "micro_normal.zarr", store)
    shutil.copy2(stamp, store / ".snakemake_timestamp")
    stamp.unlink()


# A model's pass-1 outputs under results/summaries/<model>/: one job writes them all (its own and,
# with the sensitivity analysis, its variants'), and snakemake removes them all when it fails.
SUMMARY_OUTPUTS = ("layers.tsv", "moments.npz", "sensitivity/layers.tsv", "sensitivity/moments.npz")

BAD_STORES = {
    "missing chunk": (lambda s: (s / "filters" / "c" / "2" / "0").unlink(),
                      ["1 of 3 chunks are missing"]),
    "wrong dtype": (lambda s: _rewrite_filters(s, _store_rows(s).astype(np.float64)),
                    ["filters are float64 of shape (8240, 9), expected float32 of shape (8240, 9)"]),
    "wrong shape": (lambda s: _rewrite_filters(s, _store_rows(s)[:-5]),
                    ["filters are float32 of shape (8235, 9), expected float32 of shape (8240, 9)"]),
    "Inf values": (_nan_in_store, ["(model micro_robust): layer block1.layer.0.conv1 holds NaN or Inf values"]),
    "no zarr.json": (lambda s: (s / "zarr.json").unlink(), ["is not a readable filter store"]),
    "wrong c_out": (lambda s: _edit_store_attrs(s, _wrong_c_out),
                    ["c_out x c_in/groups = 17 x 16/1 = 272 rows in layer 1, but its row range holds 256"]),
    "overlapping ranges": (lambda s: _edit_store_attrs(s, _overlapping_ranges),
                           ["row_start/row_stop overlap between layers 1 and 2"]),
    "another model's store": (_another_models_store,
                              ["attribute model_id is 'micro_normal', but the sheet's row is 'micro_robust': the "
                               "store holds another model"]),
}


@pytest.mark.parametrize("fault", BAD_STORES)
def test_a_bad_filter_store_fails_its_summary_with_the_fix_and_nothing_else_changes(micro_run, tmp_path, fault):
    workdir = copy_run(micro_run, tmp_path)
    store = workdir / "results" / "filters" / "micro_robust.zarr"
    inject, fragments = BAD_STORES[fault]
    inject(store)
    summaries = workdir / "results" / "summaries" / "micro_robust"
    for name in SUMMARY_OUTPUTS:  # the store's timestamp is unchanged: ask for its summary
        (summaries / name).unlink()
    before = snapshot(workdir)
    # the whole workflow and the missing summary (snakemake does not remake a missing
    # intermediate file whose consumers are up to date)
    result = run_snakemake(workdir, *CONFIG, "all", "results/summaries/micro_robust/layers.tsv", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Error in rule summarize_model" in output, output
    jobs = started_jobs(output)
    assert "summarize_model" in {job["rule"] for job in jobs}, output
    assert all("results/filters/micro_robust.zarr" in job["input"] for job in jobs), output
    last = (workdir / "logs" / "summarize" / "micro_robust.log").read_text().strip().splitlines()[-1]
    assert "summarize_model failed:" in last and "results/filters/micro_robust.zarr" in last, last
    assert "Fix: delete results/filters/micro_robust.zarr" in last and "extract it again" in last, last
    for fragment in fragments:
        assert fragment in last, (fragment, last)
    assert not (summaries / "layers.tsv").exists() and not (summaries / "moments.npz").exists()
    assert_untouched(before, snapshot(workdir))
    assert not partials(workdir)


# --- bad sheets and configs against a finished run ------------------------------------------

def _sheet_with(tmp_path: Path, edit) -> Path:
    lines = (REPO / "config" / "models" / "micro.tsv").read_text().splitlines()
    path = tmp_path / "sheet.tsv"
    path.write_text("\n".join(edit(lines)) + "\n")
    return path


def _add_column(lines):
    return [lines[0] + "\tnotes", *(line + "\tsome note" for line in lines[1:])]


def _robust_counterpart(lines):
    return [*lines[:2], lines[2].replace("micro_normal", "micro_robust")]


def _bad_json(lines):
    return [*lines[:2], lines[2].replace('{"depth": 10, "widen_factor": 1}', "{depth: 10}")]


def _hash_in_a_cell(lines):
    return [*lines[:2], lines[2].replace("micro_robust", "micro_robust # the robust one", 1)]


def _unknown_argument(lines):
    return [*lines[:2], lines[2].replace('"widen_factor": 1', '"widen_factor": 1, "drop_rate": 0.3')]


def _case_twin(lines):
    return [*lines, lines[1].replace("micro_normal", "Micro_Normal")]


BAD_INPUTS = {
    "unknown sheet column": (_add_column, [], ["unknown columns ['notes']", "allowed: ['model_id'"]),
    "counterpart that is robust": (_robust_counterpart, [],
                                   ["counterpart 'micro_robust' of 'micro_robust' must be a normal (robust=false)"]),
    "arch_kwargs not JSON": (_bad_json, [], ["line 3 (model_id 'micro_robust')", "arch_kwargs is not a JSON object"]),
    "config value of the wrong type": (None, ["extraction={'chunk_rows': 'big'}"],
                                       ["config key extraction.chunk_rows: 'big' is not of type 'integer'"]),
    "'#' inside a cell": (_hash_in_a_cell, [], ["model_id: 'micro_robust # the robust one' does not match",
                                                "a cell holds '#': it starts a comment only at the start of a line"]),
    "an argument the architecture does not take": (_unknown_argument, [],
                                                   ["(model_id 'micro_robust'): arch_kwargs 'drop_rate' not "
                                                    "argument(s) of wide_resnet"]),
    "ids differing only in case": (_case_twin, [], ["'micro_normal' (line 2), 'Micro_Normal' (line 4) differ only "
                                                    "in case"]),
    "unknown config section": (None, ["extractoin={}"],
                               ["Additional properties are not allowed ('extractoin' was unexpected)"]),
}


@pytest.mark.parametrize("fault", BAD_INPUTS)
def test_a_bad_sheet_or_config_stops_before_any_job_and_touches_nothing(micro_run, tmp_path, fault):
    workdir = copy_run(micro_run, tmp_path)
    edit, config, fragments = BAD_INPUTS[fault]
    extra = ["--config", *config] if config else []
    if edit:
        extra = ["--config", f"sheet={_sheet_with(tmp_path, edit)}"]
    before = snapshot(workdir)
    result = run_snakemake(workdir, *CONFIG, *extra, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for fragment in fragments:
        assert fragment in output, (fragment, output)
    assert "Job stats" not in output  # stopped while parsing: no job planned
    assert_untouched(before, snapshot(workdir))


def test_a_target_for_a_model_not_in_the_sheet_names_the_file(micro_run, tmp_path):
    workdir = copy_run(micro_run, tmp_path)
    before = snapshot(workdir)
    result = run_snakemake(workdir, *CONFIG, "results/filters/no_such_model.zarr", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "results/filters/no_such_model.zarr" in output, output
    assert "MissingRuleException" in output or "No rule to produce" in output, output
    assert_untouched(before, snapshot(workdir))


# --- a full or read-only results/ (a tmpfs mounted for the test; root only) -----------------

def _results_on_tmpfs(workdir: Path, spare_kib: int) -> Path:
    """Move ``workdir/results`` onto a tmpfs just large enough for it plus ``spare_kib``."""
    from conftest import mount_tmpfs

    results = workdir / "results"
    kept = workdir / "results.on-disk"
    results.rename(kept)
    used = int(subprocess.run(["du", "-s", "--block-size=1K", str(kept)], capture_output=True, text=True,
                              check=True).stdout.split()[0])
    mount_tmpfs(results, used + spare_kib)
    for item in kept.iterdir():  # copy2 keeps the mtimes: snakemake sees the same run
        target = results / item.name
        shutil.copytree(item, target, symlinks=True) if item.is_dir() else shutil.copy2(item, target)
    shutil.rmtree(kept)
    return results


FULL_OR_READ_ONLY = {
    "disk full during extraction": ("results/filters/micro_robust.zarr", "extract_filters", "logs/extract",
                                    "no space left on the file system of results/filters"),
    "disk full during a summary": ("results/summaries/micro_robust/layers.tsv", "summarize_model", "logs/summarize",
                                   "no space left on the file system of results/summaries/micro_robust"),
    "read-only results": ("results/summaries/micro_robust/layers.tsv", "summarize_model", "logs/summarize",
                          "results is on a read-only file system"),
}


@pytest.mark.parametrize("fault", FULL_OR_READ_ONLY)
def test_a_full_or_read_only_results_folder_is_one_message_and_every_other_output_stays(micro_run, tmp_path,
                                                                                        fault):
    from conftest import fill, remount_read_only, unmount

    target, rule, log_dir, cause = FULL_OR_READ_ONLY[fault]
    workdir = copy_run(micro_run, tmp_path)
    results = _results_on_tmpfs(workdir, spare_kib=1024)
    try:
        if rule == "extract_filters":
            shutil.rmtree(workdir / target)
        else:
            for name in SUMMARY_OUTPUTS:
                (workdir / "results" / "summaries" / "micro_robust" / name).unlink()
        if fault.startswith("read-only"):
            remount_read_only(results)
        else:
            fill(results, leave_bytes=8192)
        before = snapshot(workdir)
        job_log = workdir / log_dir / "micro_robust.log"  # the finished run's
        log_before = job_log.stat().st_mtime_ns
        result = run_snakemake(workdir, *CONFIG, target, check=False)
        output = result.stdout + result.stderr
        assert result.returncode != 0, output
        if fault.startswith("read-only"):
            # refused before any job starts (snakemake itself could not even clear the outputs)
            assert "results is on a read-only file system" in output and "Fix: remount it writable" in output, output
            assert "Error in rule" not in output and job_log.stat().st_mtime_ns == log_before, output
            plan = run_snakemake(workdir, *CONFIG, "-n", target, check=False)  # a dry run still works
            assert plan.returncode == 0 and "summarize_model" in plan.stdout + plan.stderr, plan.stderr
            assert_untouched(before, snapshot(workdir))
            return
        assert f"Error in rule {rule}" in output, output
        last = (workdir / log_dir / "micro_robust.log").read_text().strip().splitlines()[-1]
        assert last.endswith("then rerun.") and f"{rule} failed: cannot write " in last, last
        assert cause in last, last
        assert ("the old output is kept" in last) or ("nothing was written" in last), last
        assert not partials(workdir)
        assert_untouched(before, snapshot(workdir))
    finally:
        unmount(results)
