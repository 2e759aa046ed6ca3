"""Acquisition of pretrained models, offline, on files the tests write themselves.

RobustBench: a real zoo entry (Ding2020MMA, WRN-28-4, CIFAR-10 L-inf, 23 MB) written in
RobustBench's own layout and checkpoint format ({"state_dict": {"module.<key>": ...}}), loaded
through the real ``robustbench.utils.load_model``; its downloader is replaced by a fake (a test
that reached the network would fail). timm: the weights converted from ``pretrained=False``,
and the real ``pretrained=True`` path through a Hugging Face cache the test fills, offline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import REPO, CodeRunningPayload, run_snakemake

from filterlens.acquire import timm_weights
from filterlens.acquire.checkpoint import build_model, load_checkpoint, save_checkpoint
from filterlens.acquire.errors import AcquisitionError, PermanentError
from filterlens.acquire.lock_file import LockMismatch, read_lock, verify_or_record
from filterlens.acquire.retries import with_retries
from filterlens.acquire.robustbench_weights import (RobustBenchEntry, file_problem, load_robustbench,
                                                    robustbench_checkpoint)
from filterlens.acquire.timm_weights import timm_checkpoint
from filterlens.io.hashing import sha256_of
from filterlens.models.architectures import build_architecture
from filterlens.models.compat import import_robustbench

import_robustbench()
import robustbench.utils  # noqa: E402

ENTRY = RobustBenchEntry(dataset="cifar10", key="Ding2020MMA", threat_model="Linf")
HTML = b"<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head></html>"


def _robustbench_state_dict(seed: int) -> dict[str, torch.Tensor]:
    model = build_architecture("robustbench", {"dataset": "cifar10", "key": "Ding2020MMA"}, 10, seed=seed)
    return model.state_dict()


@pytest.fixture(scope="session")
def good_file(tmp_path_factory) -> Path:
    """A checkpoint as RobustBench ships it: a dict with 'state_dict', DataParallel prefixes."""
    path = tmp_path_factory.mktemp("rb") / "Ding2020MMA.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in _robustbench_state_dict(0).items()}}, path)
    return path


@pytest.fixture
def model_dir(tmp_path, good_file) -> Path:
    """A model directory filled beforehand, in RobustBench's layout."""
    folder = tmp_path / "robustbench" / "cifar10" / "Linf"
    folder.mkdir(parents=True)
    shutil.copy(good_file, folder / "Ding2020MMA.pt")
    return tmp_path / "robustbench"


@pytest.fixture
def no_network(monkeypatch):
    def refuse(gdrive_id, path):
        raise AssertionError(f"tried to download {gdrive_id} to {path}")

    monkeypatch.setattr(robustbench.utils, "download_gdrive_new", refuse)


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


def _no_sleep(seconds):
    raise AssertionError("slept although nothing failed")


# ---------------------------------------------------------------------------------------------
# RobustBench through the real load_model


def test_prefilled_model_dir_loads_with_no_network_into_a_fitting_checkpoint(model_dir, tmp_path, no_network):
    lock = tmp_path / "lock.tsv"
    model, facts = load_robustbench(ENTRY, model_dir, lock, sleep=_no_sleep)
    checkpoint = robustbench_checkpoint("rb_cifar10_Ding2020MMA", ENTRY, model, facts)
    save_checkpoint(checkpoint, tmp_path / "out.pt")
    loaded = load_checkpoint(tmp_path / "out.pt")
    rebuilt = build_model(loaded)  # strict: every key and shape fits the robustbench constructor
    expected = _robustbench_state_dict(0)
    assert set(rebuilt.state_dict()) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(rebuilt.state_dict()[key], value)
    assert loaded.architecture == "robustbench" and loaded.normalization is None
    assert loaded.arch_kwargs == {"dataset": "cifar10", "key": "Ding2020MMA", "threat_model": "Linf"}
    path = model_dir / "cifar10" / "Linf" / "Ding2020MMA.pt"
    assert read_lock(lock) == {"cifar10/Linf/Ding2020MMA.pt": {"sha256": sha256_of(path),
                                                               "bytes": path.stat().st_size}}
    assert loaded.extra["files"][0]["gdrive_id"] == ENTRY.zoo_entry()["gdrive_id"]
    # A second acquisition verifies the same file against the lock and changes nothing.
    before = lock.read_text()
    load_robustbench(ENTRY, model_dir, lock, sleep=_no_sleep)
    assert lock.read_text() == before


def test_a_file_that_differs_from_the_lock_is_refused_and_kept(model_dir, tmp_path, no_network):
    lock = tmp_path / "lock.tsv"
    load_robustbench(ENTRY, model_dir, lock, sleep=_no_sleep)
    path = model_dir / "cifar10" / "Linf" / "Ding2020MMA.pt"
    torch.save({"state_dict": _robustbench_state_dict(1)}, path)  # a valid, but different, file
    with pytest.raises(LockMismatch) as error:
        load_robustbench(ENTRY, model_dir, lock, sleep=_no_sleep)
    message = str(error.value)
    assert str(path) in message and sha256_of(path) in message and "delete its row from the lock file" in message
    assert path.exists()


@pytest.mark.parametrize("damage", ["empty", "html", "truncated"])
def test_a_bad_file_is_removed_reported_and_downloaded_again(model_dir, tmp_path, good_file, monkeypatch, damage,
                                                             caplog):
    path = model_dir / "cifar10" / "Linf" / "Ding2020MMA.pt"
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "html": HTML, "truncated": data[: len(data) // 2]}[damage])
    downloads = []

    def fake_download(gdrive_id, destination):
        downloads.append(gdrive_id)
        shutil.copy(good_file, destination)

    monkeypatch.setattr(robustbench.utils, "download_gdrive_new", fake_download)
    caplog.set_level("WARNING", logger="filterlens.acquire.robustbench_weights")
    model, facts = load_robustbench(ENTRY, model_dir, tmp_path / "lock.tsv", sleep=_no_sleep)
    assert downloads == [ENTRY.zoo_entry()["gdrive_id"]]
    assert facts[0]["sha256"] == sha256_of(good_file)
    report = caplog.text
    assert "removed it" in report and str(path) in report
    assert f"https://drive.google.com/uc?id={downloads[0]}" in report
    assert {"empty": "empty", "html": "HTML page", "truncated": "truncated"}[damage] in report


def test_downloads_that_keep_failing_are_retried_with_backoff_then_fail_with_the_fix(model_dir, tmp_path,
                                                                                     monkeypatch):
    path = model_dir / "cifar10" / "Linf" / "Ding2020MMA.pt"
    path.unlink()
    attempts = []

    def quota_page(gdrive_id, destination):  # what Google Drive serves when a file is over its quota
        attempts.append(destination)
        Path(destination).write_bytes(HTML)

    monkeypatch.setattr(robustbench.utils, "download_gdrive_new", quota_page)
    sleeps = Sleeps()
    with pytest.raises(AcquisitionError) as error:
        load_robustbench(ENTRY, model_dir, tmp_path / "lock.tsv", attempts=3, backoff_s=5, sleep=sleeps)
    assert len(attempts) == 3 and sleeps == [5, 10]
    assert not path.exists()  # the HTML page is not left behind
    assert not (tmp_path / "lock.tsv").exists()  # nothing recorded
    message = str(error.value)
    assert "failed 3 time(s)" in message and "HTML page" in message
    assert "download by hand" in message and str(path) in message
    assert f"https://drive.google.com/uc?id={ENTRY.zoo_entry()['gdrive_id']}" in message


def test_ensemble_entries_name_every_file_in_robustbenchs_layout():
    entry = RobustBenchEntry("cifar10", "Chen2020Adversarial")
    files = entry.files("md")
    assert [p.as_posix() for p, _ in files] == [f"md/cifar10/Linf/Chen2020Adversarial.pt_m{i}.pt" for i in range(3)]
    with pytest.raises(AcquisitionError, match="no cifar10/Linf model 'NoSuchKey'"):
        RobustBenchEntry("cifar10", "NoSuchKey").files("md")


# ---------------------------------------------------------------------------------------------
# The pure pieces


def test_file_problem_tells_good_from_bad(tmp_path, good_file):
    assert file_problem(good_file) is None
    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(1000)}, legacy, _use_new_zipfile_serialization=False)
    assert file_problem(legacy) is None
    cases = {"empty": b"", "html": b"\n  <html><body>Sign in</body></html>",
             "truncated zip": good_file.read_bytes()[:100_000], "truncated legacy": legacy.read_bytes()[:600],
             "not torch": b"GIF89a..."}
    expected = {"empty": "empty", "html": "HTML page", "truncated zip": "truncated",
                "truncated legacy": "truncated", "not torch": "not a PyTorch file"}
    for name, data in cases.items():
        path = tmp_path / f"{name}.pt"
        path.write_bytes(data)
        assert expected[name] in file_problem(path), name


def test_lock_file_records_then_verifies_and_reads_back(tmp_path):
    model_dir = tmp_path / "md"
    (model_dir / "a").mkdir(parents=True)
    first, second = model_dir / "a" / "x.pt", model_dir / "a" / "y.pt"
    first.write_bytes(b"one")
    second.write_bytes(b"two")
    lock = tmp_path / "conf" / "lock.tsv"
    verify_or_record(lock, model_dir, [first])
    verify_or_record(lock, model_dir, [second, first])
    assert list(read_lock(lock)) == ["a/x.pt", "a/y.pt"]
    assert read_lock(lock)["a/y.pt"]["bytes"] == 3
    assert lock.read_text().startswith("# sha256")
    first.write_bytes(b"changed")
    with pytest.raises(LockMismatch, match="a/x.pt"):
        verify_or_record(lock, model_dir, [first])
    lock.write_text("file\tsha256\tbytes\na/x.pt\tnot-a-hash\t3\n")
    with pytest.raises(AcquisitionError, match=r"line 2: sha256 'not-a-hash' is not 64 hex digits"):
        read_lock(lock)


def test_with_retries_backs_off_exponentially_caps_and_gives_up_on_permanent_errors():
    sleeps = Sleeps()
    calls = []

    def flaky(attempt):
        calls.append(attempt)
        if attempt < 4:
            raise ConnectionError(f"reset {attempt}")
        return "done"

    assert with_retries(flaky, attempts=5, backoff_s=2, max_backoff_s=6, sleep=sleeps) == "done"
    assert calls == [1, 2, 3, 4] and sleeps == [2, 4, 6]

    sleeps.clear()
    with pytest.raises(AcquisitionError) as error:
        with_retries(lambda a: 1 / 0, attempts=2, backoff_s=1, sleep=sleeps, what="thing", fix="Fix: this")
    assert sleeps == [1] and "thing failed 2 time(s)" in str(error.value) and "Fix: this" in str(error.value)

    def permanent(attempt):
        raise LockMismatch("different file")

    with pytest.raises(LockMismatch):
        with_retries(permanent, attempts=5, backoff_s=1, sleep=_no_sleep, give_up_on=(LockMismatch,))


# ---------------------------------------------------------------------------------------------
# timm


def test_timm_model_becomes_a_checkpoint_with_its_pretrained_normalisation(tmp_path):
    import timm

    model = timm.create_model("resnet18.tv_in1k", pretrained=False)
    checkpoint = timm_checkpoint("timm_resnet18", "resnet18", model, "resnet18.tv_in1k")
    save_checkpoint(checkpoint, tmp_path / "t.pt")
    loaded = load_checkpoint(tmp_path / "t.pt")
    rebuilt = build_model(loaded)
    torch.testing.assert_close(rebuilt.conv1.weight, model.conv1.weight)
    assert loaded.normalization == {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    assert loaded.arch_kwargs == {"name": "resnet18"} and loaded.num_classes == 1000
    assert loaded.extra["hf_hub_id"] == "timm/resnet18.tv_in1k"


TIMM_OFFLINE = textwrap.dedent("""
    import sys, torch, timm
    from safetensors.torch import save_file
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from filterlens.acquire.errors import AcquisitionError
    from filterlens.acquire.timm_weights import load_timm
    cache = Path(sys.argv[1]) / "hub"
    try:
        load_timm("resnet18.tv_in1k", sleep=lambda s: None)
        raise SystemExit("loaded from an empty cache")
    except AcquisitionError as error:
        print("ERROR:", error)
    # fill the cache as huggingface_hub does: refs/main -> snapshots/<commit>/model.safetensors
    weights = timm.create_model("resnet18", pretrained=False, num_classes=1000).state_dict()
    repo = cache / "models--timm--resnet18.tv_in1k"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in weights.items()}, repo / "snapshots" / commit / "model.safetensors")
    model = load_timm("resnet18.tv_in1k", sleep=lambda s: None)
    assert torch.equal(model.conv1.weight, weights["conv1.weight"])
    print("OFFLINE LOAD OK")
""")


def test_timm_pretrained_offline_reads_the_hf_cache_and_names_the_fix_when_it_is_empty(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore")
    result = subprocess.run([sys.executable, "-c", TIMM_OFFLINE, str(tmp_path / "hf"), str(REPO / "src")],
                            capture_output=True, text=True, env=env, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    error = output.split("ERROR:", 1)[1].split("OFFLINE LOAD OK")[0]
    assert "HF_HUB_OFFLINE is set" in error and str(tmp_path / "hf" / "hub") in error
    assert "models--timm--resnet18.tv_in1k" in error
    assert "timm.create_model('resnet18.tv_in1k', pretrained=True)" in error
    assert "OFFLINE LOAD OK" in output


# ---------------------------------------------------------------------------------------------
# The rule, end to end


@pytest.mark.workflow
def test_rule_acquires_from_a_prefilled_model_dir_and_extracts(tmp_path, good_file):
    model_dir = tmp_path / "models_from_elsewhere"
    (model_dir / "cifar10" / "Linf").mkdir(parents=True)
    shutil.copy(good_file, model_dir / "cifar10" / "Linf" / "Ding2020MMA.pt")
    kwargs = json.dumps({"dataset": "cifar10", "key": "Ding2020MMA", "threat_model": "Linf"})
    sheet = tmp_path / "tiny.tsv"
    sheet.write_text(
        "model_id\tdataset\tarchitecture\tarch_kwargs\trobust\tsource\tsource_key\tcounterpart\tclean_acc\trobust_acc\n"
        f"rb_cifar10_Ding2020MMA\tcifar10\trobustbench\t{kwargs}\ttrue\trobustbench\tDing2020MMA\tnormal_mma"
        "\t84.36\t41.44\n"
        f"normal_mma\tcifar10\trobustbench\t{kwargs}\tfalse\trandom\t\t\t\t\n"
    )
    config = tmp_path / "tiny.yaml"
    config.write_text(f"sheet: {sheet}\nacquisition:\n  model_dir: {model_dir}\n  lock_file: lock.tsv\n"
                      "  attempts: 1\n")
    model_id = "rb_cifar10_Ding2020MMA"
    run_snakemake(tmp_path, "--configfile", str(config), "--cores", "1",
                  f"data/models/{model_id}.pt", f"results/filters/{model_id}.zarr")
    checkpoint = load_checkpoint(tmp_path / "data" / "models" / f"{model_id}.pt")
    assert checkpoint.source == "robustbench" and checkpoint.model_id == model_id
    build_model(checkpoint)
    assert (tmp_path / "results" / "filters" / f"{model_id}.zarr").is_dir()
    log = (tmp_path / "logs" / "acquire" / f"{model_id}.log").read_text()
    assert "all files present, no download" in log
    assert list(read_lock(tmp_path / "lock.tsv")) == ["cifar10/Linf/Ding2020MMA.pt"]


def test_timm_download_failures_are_retried_with_backoff(monkeypatch):
    monkeypatch.setattr(timm_weights, "hf_offline", lambda: False)
    sleeps, calls = Sleeps(), []

    def flaky_hub(name, pretrained):
        calls.append(name)
        raise ConnectionError("hub unreachable")

    with pytest.raises(AcquisitionError) as error:
        timm_weights.load_timm("resnet18.tv_in1k", attempts=3, backoff_s=1, create_model=flaky_hub, sleep=sleeps)
    assert calls == ["resnet18.tv_in1k"] * 3 and sleeps == [1, 2]
    assert "hub unreachable" in str(error.value) and "pretrained=True" in str(error.value)


def test_timm_without_pretrained_weights_or_without_the_hub_fails_at_once(monkeypatch):
    import timm.models._hub

    def never(*args, **kwargs):
        raise AssertionError("create_model called")

    with pytest.raises(PermanentError, match="no pretrained weights 'resnet18.no_such_tag'"):
        timm_weights.load_timm("resnet18.no_such_tag", create_model=never, sleep=_no_sleep)
    monkeypatch.setattr(timm.models._hub, "_has_hf_hub", False)  # as with huggingface_hub >= 1.0
    with pytest.raises(PermanentError, match=r"huggingface_hub of requirements.txt \(< 1.0\)"):
        timm_weights.load_timm("resnet18.tv_in1k", create_model=never, sleep=_no_sleep)


# ---------------------------------------------------------------------------------------------
# No downloaded file is parsed before it is checked


def _never_load(**kwargs):
    raise AssertionError("load_model read a file that had not been checked")


def _lock_row(path, model_dir):
    return f"{path.relative_to(model_dir).as_posix()}\t{sha256_of(path)}\t{path.stat().st_size}\n"


def test_a_crafted_checkpoint_that_differs_from_the_lock_runs_no_code(model_dir, tmp_path, no_network):
    """With trust_pickles on, a file whose sha256 is not the recorded one is refused before
    anything (RobustBench's torch.load included) reads it."""
    import robustbench.utils as rb_utils

    lock = tmp_path / "lock.tsv"
    load_robustbench(ENTRY, model_dir, lock, sleep=_no_sleep)
    path = model_dir / "cifar10" / "Linf" / "Ding2020MMA.pt"
    marker = tmp_path / "marker"
    torch.save({"state_dict": _robustbench_state_dict(0), "payload": CodeRunningPayload(marker)}, path)
    # the crafted file is a real threat: unpickled without weights_only it runs the payload
    torch.load(path, weights_only=False)
    assert marker.exists()
    marker.unlink()
    for load_model in (_never_load, rb_utils.load_model):
        with pytest.raises(LockMismatch) as error:
            load_robustbench(ENTRY, model_dir, lock, trust_pickles=True, load_model=load_model, sleep=_no_sleep)
        assert str(path) in str(error.value) and sha256_of(path) in str(error.value)
        assert "nothing read them" in str(error.value)
    assert not marker.exists() and path.exists()


def test_trust_pickles_unpickles_only_files_the_lock_pins(model_dir, tmp_path, no_network):
    import argparse

    path = model_dir / "cifar10" / "Linf" / "Ding2020MMA.pt"
    marker = tmp_path / "marker"
    lock = tmp_path / "lock.tsv"
    # a first download that holds more than tensors and would run code: refused, nothing recorded
    torch.save({"state_dict": _robustbench_state_dict(0), "payload": CodeRunningPayload(marker)}, path)
    with pytest.raises(PermanentError) as error:
        load_robustbench(ENTRY, model_dir, lock, trust_pickles=True, sleep=_no_sleep)
    message = str(error.value)
    assert "unpickles only files whose sha256 the lock file" in message
    assert _lock_row(path, model_dir).strip() in message and "add those lines to the lock file" in message
    assert not marker.exists() and not lock.exists()
    # a checkpoint with a harmless non-tensor object (training arguments), pinned by its owner: loaded
    torch.save({"state_dict": {f"module.{k}": v for k, v in _robustbench_state_dict(0).items()},
                "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(PermanentError, match="not record"):
        load_robustbench(ENTRY, model_dir, lock, trust_pickles=True, sleep=_no_sleep)
    lock.write_text("file\tsha256\tbytes\n" + _lock_row(path, model_dir))
    with pytest.raises(PermanentError, match="set config acquisition.trust_pickles: true"):
        load_robustbench(ENTRY, model_dir, lock, trust_pickles=False, sleep=_no_sleep)
    model, facts = load_robustbench(ENTRY, model_dir, lock, trust_pickles=True, sleep=_no_sleep)
    assert facts[0]["sha256"] == sha256_of(path)


def test_a_download_cut_short_of_its_lock_row_is_fetched_again(model_dir, tmp_path, good_file, monkeypatch):
    lock = tmp_path / "lock.tsv"
    path = model_dir / "cifar10" / "Linf" / "Ding2020MMA.pt"
    lock.write_text("file\tsha256\tbytes\n" + _lock_row(path, model_dir))
    data = good_file.read_bytes()
    path.write_bytes(data[:1000])  # an interrupted earlier download
    downloads = []

    def flaky(gdrive_id, destination):  # the first download is cut off again, the second completes
        downloads.append(gdrive_id)
        Path(destination).write_bytes(data[:5000] if len(downloads) == 1 else data)

    monkeypatch.setattr(robustbench.utils, "download_gdrive_new", flaky)
    sleeps = Sleeps()
    model, facts = load_robustbench(ENTRY, model_dir, lock, load_model=None, sleep=sleeps, backoff_s=1)
    assert len(downloads) == 2 and sleeps == [1] and facts[0]["sha256"] == sha256_of(good_file)


@pytest.mark.parametrize("content, message", [
    ("file\tsha\tbytes\n", r"line 1: header \['file', 'sha', 'bytes'\]"),
    ("file\tsha256\tbytes\na.pt\t" + "0" * 64 + "\n", r"line 2: 2 tab-separated field\(s\), expected 3"),
    ("file\tsha256\tbytes\na.pt\t" + "g" * 64 + "\t3\n", r"line 2: sha256 'g{64}' is not 64 hex digits"),
    ("file\tsha256\tbytes\na.pt\t" + "0" * 64 + "\tmany\n", r"line 2: bytes 'many' is not a non-negative integer"),
    ("file\tsha256\tbytes\n../a.pt\t" + "0" * 64 + "\t3\n", r"line 2: file '../a.pt' is not a path relative"),
    ("# c\nfile\tsha256\tbytes\na.pt\t" + "0" * 64 + "\t3\na.pt\t" + "1" * 64 + "\t3\n",
     r"line 4: file 'a.pt' is already listed on line 3 \(one row per file\)"),
])
def test_a_bad_lock_file_line_is_named(tmp_path, content, message):
    lock = tmp_path / "lock.tsv"
    lock.write_text(content)
    with pytest.raises(AcquisitionError, match=message) as error:
        read_lock(lock)
    assert str(lock) in str(error.value) and "Fix: correct or delete those lines" in str(error.value)


def test_an_upper_case_lock_hash_is_the_same_hash(model_dir, tmp_path, no_network):
    path = model_dir / "cifar10" / "Linf" / "Ding2020MMA.pt"
    lock = tmp_path / "lock.tsv"
    lock.write_text("file\tsha256\tbytes\n" + _lock_row(path, model_dir).replace(sha256_of(path),
                                                                                 sha256_of(path).upper()))
    load_robustbench(ENTRY, model_dir, lock, sleep=_no_sleep)
    assert read_lock(lock)["cifar10/Linf/Ding2020MMA.pt"]["sha256"] == sha256_of(path)


def test_a_lock_row_of_another_size_is_a_mismatch(model_dir, tmp_path, no_network):
    path = model_dir / "cifar10" / "Linf" / "Ding2020MMA.pt"
    lock = tmp_path / "lock.tsv"
    size = path.stat().st_size
    lock.write_text("file\tsha256\tbytes\n" + _lock_row(path, model_dir).replace(f"\t{size}\n", f"\t{size - 1}\n"))
    with pytest.raises(LockMismatch, match=f"{size} bytes.*{size - 1} bytes"):
        load_robustbench(ENTRY, model_dir, lock, load_model=_never_load, sleep=_no_sleep)


def test_the_entries_served_elsewhere_are_exactly_robustbenchs(monkeypatch):
    """The sheet-time list (no robustbench import at parse time) against the installed robustbench:
    every entry that load_model builds through timm, or returns without reading its model directory."""
    import timm
    from robustbench.model_zoo import model_dicts

    from filterlens.models.pretrained_sources import SERVED_ELSEWHERE

    found = {}
    for dataset, by_threat in model_dicts.items():
        for threat, entries in by_threat.items():
            for key in entries:
                threat_name = threat.value.replace("_3d", "").lower()
                name = f"{key.lower().replace('-', '_')}_{dataset.value.lower()}_{threat_name}"
                if timm.is_model(name):
                    found[(dataset.value, threat.name, key)] = "timm"
                elif dataset.value == "imagenet" and "Standard" in key:
                    found[(dataset.value, threat.name, key)] = "torchvision"
    assert found == SERVED_ELSEWHERE
    assert sum(1 for (_, threat, _), how in found.items() if threat == "Linf" and how == "timm") == 9
    with pytest.raises(PermanentError, match="not from its model directory"):
        load_robustbench(RobustBenchEntry("cifar10", "Debenedetti2022Light_XCiT-S12"), "md", None,
                         load_model=_never_load, sleep=_no_sleep)


def test_timm_names_that_load_from_any_repository_are_refused():
    def never(*args, **kwargs):
        raise AssertionError("create_model called")

    for name in ("hf-hub:someone/resnet50", "hf_hub:someone/resnet50", "local-dir:/tmp/x", "someone/resnet50"):
        with pytest.raises(PermanentError, match="arbitrary Hugging Face repository"):
            timm_weights.load_timm(name, create_model=never, sleep=_no_sleep)


def _sheet_line(model_id, arch, kwargs, source, source_key):
    return f"{model_id}\tcifar10\t{arch}\t{json.dumps(kwargs)}\tfalse\t{source}\t{source_key}\t\t\t\n"


@pytest.mark.parametrize("line, message", [
    (_sheet_line("xcit", "robustbench", {"dataset": "cifar10", "key": "Debenedetti2022Light_XCiT-S12",
                                         "threat_model": "Linf"}, "robustbench", "Debenedetti2022Light_XCiT-S12"),
     "model 'xcit': RobustBench cifar10/Linf/Debenedetti2022Light_XCiT-S12: RobustBench loads this entry through "
     "timm.create_model(pretrained=True)"),
    (_sheet_line("hub", "timm", {"name": "hf-hub:someone/resnet50"}, "random", ""),
     "model 'hub': timm name 'hf-hub:someone/resnet50' loads its configuration"),
    (_sheet_line("hub2", "timm", {"name": "resnet50"}, "timm", "hf-hub:someone/resnet50"),
     # refused by the sheet schema's source_key pattern (no ':' or '/'), before any source check
     "(model_id 'hub2'): source_key: 'hf-hub:someone/resnet50' does not match"),
])
def test_sources_that_bypass_the_checks_stop_the_sheet_before_any_job(tmp_path, line, message):
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text("model_id\tdataset\tarchitecture\tarch_kwargs\trobust\tsource\tsource_key\tcounterpart\t"
                     "clean_acc\trobust_acc\n" + line)
    (tmp_path / "config.yaml").write_text(f"sheet: {sheet}\n")
    result = run_snakemake(tmp_path, "-n", "--configfile", str(tmp_path / "config.yaml"), check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and message in output, output


def test_a_published_checkpoint_with_nan_weights_is_refused_before_it_becomes_a_checkpoint(tmp_path, no_network):
    from filterlens.acquire.checkpoint import CheckpointError

    state = _robustbench_state_dict(0)
    first = next(key for key in state if key.endswith("weight"))
    state[first][0] = float("nan")
    folder = tmp_path / "robustbench" / "cifar10" / "Linf"
    folder.mkdir(parents=True)
    torch.save({"state_dict": state}, folder / "Ding2020MMA.pt")
    model, facts = load_robustbench(ENTRY, tmp_path / "robustbench", None, sleep=_no_sleep)  # RobustBench's loader
    with pytest.raises(CheckpointError, match=rf"rb_x: RobustBench's Ding2020MMA: NaN or infinite values in {first}; "
                                              r"Fix: the published weights cannot be analysed as they are"):
        robustbench_checkpoint("rb_x", ENTRY, model, facts)
