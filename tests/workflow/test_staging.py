"""Staging a run: downloads that cannot reach their server fail at once, `filterlens stage` lists
what a run needs, a real run that would download from an unreachable server stops before any job,
config/config.yaml loads from any working directory, and dotted config keys (docs/runs.md).

"Unreachable" is made real and the same on every machine: a name under .invalid, which never
resolves (RFC 6761), a port of this machine that nothing listens on, or an HTTPS proxy there."""

from __future__ import annotations

import argparse
import json
import socket
import time
from pathlib import Path

import pytest
import requests
from conftest import REPO, run_snakemake

from filterlens.acquire.errors import NetworkUnreachable
from filterlens.acquire.retries import with_retries
from filterlens.cli import stage
from filterlens.config.validation import CONFIG_SCHEMA, ConfigError, expand_dotted_keys, retype_command_line
from filterlens.io.network import unreachable_hosts

KWARGS = json.dumps({"dataset": "cifar10", "key": "Ding2020MMA", "threat_model": "Linf"})
HEADER = "\t".join(["model_id", "dataset", "architecture", "arch_kwargs", "robust", "source", "source_key",
                    "counterpart", "clean_acc", "robust_acc"]) + "\n"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _no_sleep(seconds):
    raise AssertionError(f"slept {seconds} s: retried a download that cannot reach its server")


# --- downloads that cannot resolve or connect ---------------------------------------------------


@pytest.mark.parametrize("url", ["https://filterlens-test.invalid/model.pt", "http://127.0.0.1:{port}/model.pt"],
                         ids=["name-does-not-resolve", "connection-refused"])
def test_a_download_that_cannot_resolve_or_connect_fails_at_once_with_the_fix(url):
    calls = []

    def fetch(attempt):
        calls.append(attempt)
        with requests.Session() as session:  # the client RobustBench and the hub use; no proxy of the environment
            session.trust_env = False
            session.get(url.format(port=_closed_port()), timeout=5)

    started = time.monotonic()
    with pytest.raises(NetworkUnreachable) as error:
        with_retries(fetch, attempts=4, backoff_s=30, sleep=_no_sleep, what="RobustBench cifar10/Linf/X",
                     fix="Fix: save it as data/robustbench/cifar10/Linf/X.pt")
    assert calls == [1] and time.monotonic() - started < 10
    message = str(error.value)
    assert "RobustBench cifar10/Linf/X" in message and "filterlens stage" in message
    assert "Fix: save it as data/robustbench/cifar10/Linf/X.pt" in message


def test_the_network_check_is_bounded_and_tells_reachable_from_unreachable():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert unreachable_hosts(["127.0.0.1"], 1.5, port=port) == {}
    started = time.monotonic()
    found = unreachable_hosts(["filterlens-test.invalid", "127.0.0.1"], 1.5, port=_closed_port())
    assert time.monotonic() - started < 2.5
    assert set(found) == {"filterlens-test.invalid", "127.0.0.1"}
    assert "ConnectionRefusedError" in found["127.0.0.1"]


# --- filterlens stage ----------------------------------------------------------------------------


def _stage(*argv: str) -> tuple[int, str]:
    import contextlib
    import io

    parser = argparse.ArgumentParser()
    stage.add_arguments(parser)
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        status = stage.run(parser.parse_args(["--workflow-dir", str(REPO), *argv]))
    return status, output.getvalue()


def _one_robustbench_model(tmp_path: Path, model_dir: Path) -> Path:
    sheet = tmp_path / "one.tsv"
    sheet.write_text(HEADER + f"rb_mma\tcifar10\trobustbench\t{KWARGS}\ttrue\trobustbench\tDing2020MMA\tnormal_mma"
                     "\t\t\n" + f"normal_mma\tcifar10\trobustbench\t{KWARGS}\tfalse\ttrain_cifar\t\t\t\t\n")
    config = tmp_path / "one.yaml"
    config.write_text(f"sheet: {sheet}\nacquisition:\n  model_dir: {model_dir}\n")
    return config


def test_stage_lists_each_file_where_it_goes_the_disk_the_training_and_the_network(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{_closed_port()}")  # unreachable on every machine
    config = _one_robustbench_model(tmp_path, tmp_path / "rb")
    status, report = _stage("--configfile", str(config))
    target = tmp_path / "rb" / "cifar10" / "Linf" / "Ding2020MMA.pt"
    assert status == 1, report
    assert f"MISSING  RobustBench checkpoint (rb_mma) -> {target}" in report
    assert "about 23.4 MB; from drive.google.com" in report  # WRN-28-4: 5.85M float32 parameters
    assert ("MISSING  cifar10 data (torchvision's folder) (normal_mma) -> data/datasets/cifar/cifar-10-batches-py"
            in report)
    # WRN-28-4's 3x3 filters: 3*16 + 16*64 + 64*64 + 6*64*64 + 64*128 + ... = 644,144 per model, two models
    assert "filter stores still to write (results/filters/, 32.1 bytes per filter): 41.4 MB" in report
    assert "1 train_cifar job(s), each on a GPU" in report and "hours: not measured" in report
    # WRN-28-4 at 32x32: 845M multiply-adds forward (1.69 GFLOPs); a training step about three times that,
    # over 50000 training images, and a forward pass over the 10000 validation images
    assert "normal_mma (cifar10): 2.71e+14 FLOPs per epoch x 125 = 3.38e+16" in report
    assert "drive.google.com: UNREACHABLE" in report

    # with a measured speed: 2 images/s of 1e12 FLOPs each (2 TFLOP/s) make 3.38e16 FLOPs 4.7 hours
    speed = tmp_path / "training.tsv"
    speed.write_text("device\toptions\timages_per_s\tflops_per_image\nSome GPU\tfp32\t2\t1e12\n")
    status, report = _stage("--configfile", str(config), "--throughput", str(speed))
    assert "hours: 5 on Some GPU (fp32)" in report, report
    speed.write_text("device\toptions\timages_per_s\nSome GPU\tfp32\tfast\n")
    assert _stage("--configfile", str(config), "--throughput", str(speed))[0] == 2

    target.parent.mkdir(parents=True)
    target.write_bytes(b"staged")  # staging is about the file being there; acquisition checks it
    (tmp_path / "data" / "models").mkdir(parents=True)
    (tmp_path / "data" / "models" / "normal_mma.pt").write_bytes(b"trained elsewhere")
    status, report = _stage("--configfile", str(config), "--config", "cifar_training.epochs=3")
    assert status == 0, report
    assert f"present  RobustBench checkpoint (rb_mma) -> {target}" in report
    assert "0 missing" in report and "network: nothing to download" in report and "train_cifar" not in report


def test_stage_loads_the_config_as_the_workflow_and_names_a_bad_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, report = _stage()  # the default run: the mini zoo, nothing to stage
    assert status == 0 and "config/models/minizoo.tsv (8 models)" in report and "0 missing" in report
    bad = tmp_path / "bad.yaml"
    bad.write_text("figures.entropi: scaled\n")
    parser = argparse.ArgumentParser()
    stage.add_arguments(parser)
    assert stage.run(parser.parse_args(["--workflow-dir", str(REPO), "--configfile", str(bad)])) == 2


def test_stage_is_quick_on_the_papers_zoo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{_closed_port()}")
    started = time.monotonic()
    status, report = _stage("--configfile", str(REPO / "config" / "paper.yaml"))
    assert status == 1
    # 73 RobustBench files (71 models, one an ensemble of 3), 3 timm cache entries, 2 CIFAR folders
    assert "78 item(s) to stage, 78 missing" in report
    assert "40 train_cifar job(s)" in report
    assert time.monotonic() - started < 120  # a loaded 2-core machine; about 15 s when idle


# --- the workflow ---------------------------------------------------------------------------------


@pytest.mark.workflow
def test_an_unstaged_run_with_no_network_stops_before_any_job_with_the_list(tmp_path, monkeypatch):
    config = _one_robustbench_model(tmp_path, tmp_path / "rb")
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{_closed_port()}")  # run_snakemake passes os.environ
    plan = run_snakemake(tmp_path, "-n", "--quiet", "rules", "--configfile", str(config))
    started = time.monotonic()
    result = run_snakemake(tmp_path, "data/models/rb_mma.pt", "--cores", "1", "--configfile", str(config),
                           check=False)
    planned, output = plan.stdout + plan.stderr, result.stdout + result.stderr
    assert "1 pretrained checkpoint(s) are not in data/models/" in planned and "`filterlens stage`" in planned
    assert result.returncode != 0 and time.monotonic() - started < 90
    assert "drive.google.com, which this machine does not reach" in output
    assert str(tmp_path / "rb" / "cifar10" / "Linf" / "Ding2020MMA.pt") in output
    assert not (tmp_path / "logs" / "acquire").exists()  # no job started


@pytest.mark.workflow
def test_a_run_directory_elsewhere_loads_config_yaml_and_takes_dotted_and_sectioned_settings(tmp_path):
    # From a directory of its own, with only a file that sets one dotted key: config/config.yaml is
    # loaded from the workflow's directory (the sheet comes from it) and the dotted key applies.
    settings = tmp_path / "mine.yaml"
    settings.write_text("training.epochs: 0\n")
    result = run_snakemake(tmp_path, "-n", "--quiet", "rules", "--configfile", str(settings), check=False)
    assert result.returncode != 0
    assert "config key training.epochs: 0 is less than the minimum of 1" in result.stdout + result.stderr
    settings.write_text("training.epochs: 2\nfigures.entropy: scaled\n")
    run_snakemake(tmp_path, "-n", "--quiet", "rules", "--configfile", str(settings))
    # On the command line a section in braces: its values typed by the schema (0 is an integer)
    result = run_snakemake(tmp_path, "-n", "--quiet", "rules", "--config", "training={epochs: 0}", check=False)
    assert "config key training.epochs: 0 is less than the minimum of 1" in result.stdout + result.stderr
    run_snakemake(tmp_path, "-n", "--quiet", "rules", "--config", "figures={entropy: scaled}")


# --- dotted keys ------------------------------------------------------------------------------------


def test_dotted_keys_go_into_their_sections_and_an_unknown_one_is_named():
    config = {"figures": {"entropy": "unscaled", "pair": None}, "figures.entropy": "scaled",
              "training.adversarial.eps": 0.2}
    expand_dotted_keys(config, CONFIG_SCHEMA)
    assert config == {"figures": {"entropy": "scaled", "pair": None}, "training": {"adversarial": {"eps": 0.2}}}
    with pytest.raises(ConfigError) as error:
        expand_dotted_keys({"figures.entropi": "scaled", "sheet.x": 1}, CONFIG_SCHEMA)
    message = str(error.value)
    assert "figures.entropi is not a key of section figures; known: pair, entropy" in message
    assert "config key sheet.x: sheet is a value, not a section" in message
    assert "--config 'figures={entropy: scaled}'" in message


def test_a_section_given_on_the_command_line_is_typed_by_the_schema():
    given = {"training": {"epochs": "2", "lr": "0.05", "adversarial": {"eps": "0.1"}}, "figures": {"entropy": "scaled"}}
    config = json.loads(json.dumps(given))
    retype_command_line(config, given, CONFIG_SCHEMA)
    assert config == {"training": {"epochs": 2, "lr": 0.05, "adversarial": {"eps": 0.1}},
                      "figures": {"entropy": "scaled"}}


# --- the dry run's size ---------------------------------------------------------------------------


@pytest.mark.workflow
def test_the_papers_dry_run_counts_its_jobs_in_under_100_kb_and_a_small_zoo_lists_each_job(tmp_path):
    paper = run_snakemake(tmp_path, "-n", "--configfile", str(REPO / "config" / "paper.yaml"))
    output = paper.stdout + paper.stderr
    assert len(output.encode()) < 100_000, len(output.encode())
    assert "this dry run of 114 models counts the jobs per rule below; -n --verbose lists each job" in output
    assert "40 CIFAR counterpart(s) are trained here (rule train_cifar): each needs a GPU" in output
    counts = dict(line.split() for line in output.splitlines() if line.startswith(("train_cifar ", "total ")))
    assert counts == {"train_cifar": "40", "total": "716"}
    micro = run_snakemake(tmp_path, "-n", "--configfile", str(REPO / "config" / "micro.yaml"))
    assert "rule train_minizoo:" in micro.stdout and "counts the jobs per rule" not in micro.stdout + micro.stderr
