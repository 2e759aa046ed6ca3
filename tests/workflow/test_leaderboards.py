"""A sheet per RobustBench leaderboard: generated from robustbench.model_zoo.model_dicts (no
pairings file), paired by the paper's rule, and planned offline with no network."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_snakemake

from filterlens.cli import leaderboard_sheet
from filterlens.config.sheet import read_sheet
from filterlens.models.robustbench_zoo import zoo

SHEETS = REPO / "config" / "models" / "leaderboards"
CONFIG = REPO / "config" / "leaderboard.yaml"
PAPER_SHEET = REPO / "config" / "models" / "paper.tsv"
COMMITTED = sorted(path.stem for path in SHEETS.glob("*.tsv"))
# Any socket to another machine, or a name look-up, made by the dry run (and what it starts) is
# recorded and refused.
NO_NETWORK = '''
import socket

def _refuse(what):
    with open({record!r}, "a") as handle:
        handle.write(what + "\\n")
    raise OSError("no network in this test: " + what)

_connect = socket.socket.connect

def _connect_locally(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _refuse("connect " + repr(address))
    return _connect(self, address)

socket.socket.connect = _connect_locally
socket.getaddrinfo = lambda host, *args, **kwargs: _refuse("getaddrinfo " + repr(host))
'''


def _sheet_command(*args: str) -> int:
    """filterlens leaderboard-sheet, run in the repository (its reference data's default paths)."""
    from filterlens.cli import main

    return main(["leaderboard-sheet", *args])


def _board(stem: str) -> tuple[str, str]:
    dataset, threat_model = stem.split("_", 1)
    return dataset, threat_model


def _left_out(path: Path) -> set[str]:
    return {m[1] for m in re.finditer(r"^# Left out: (\S+?):", path.read_text(), re.MULTILINE)}


def test_there_is_a_sheet_for_every_leaderboard_robustbench_lists():
    assert sorted(f"{d}_{t}" for d, t in leaderboard_sheet.leaderboards()) == COMMITTED


@pytest.mark.parametrize("stem", COMMITTED)
def test_committed_sheet_is_what_the_tool_generates(stem, tmp_path):
    out = tmp_path / f"{stem}.tsv"
    assert _sheet_command("--leaderboard", ":".join(_board(stem)), "--out", str(out)) == 0
    assert out.read_text() == (SHEETS / f"{stem}.tsv").read_text(), (
        f"regenerate: .venv/bin/filterlens leaderboard-sheet --leaderboard {':'.join(_board(stem))}")


@pytest.mark.parametrize("stem", COMMITTED)
def test_every_entry_is_in_the_sheet_or_left_out_with_a_reason_and_paired_by_the_papers_rule(stem):
    dataset, threat_model = _board(stem)
    sheet = read_sheet(SHEETS / f"{stem}.tsv")
    from_robustbench = sheet[sheet.source == "robustbench"]
    left_out = _left_out(SHEETS / f"{stem}.tsv")
    assert sorted(set(from_robustbench.source_key) | left_out) == sorted(zoo(dataset, threat_model))
    assert not set(from_robustbench.source_key) & left_out
    assert (sheet.dataset == dataset).all()
    assert (from_robustbench.robust == ~from_robustbench.source_key.str.startswith("Standard")).all()
    assert all(kwargs["threat_model"] == threat_model for kwargs in from_robustbench.arch_kwargs)
    robust = sheet[sheet.robust == True]  # noqa: E712
    normal = sheet.loc[robust.counterpart]
    assert len(robust) > 0 and set(normal.source) == ({"timm"} if dataset == "imagenet" else {"train_cifar"})


def test_an_id_names_one_model_in_every_sheet_and_the_paper_sheet():
    sheets = [read_sheet(SHEETS / f"{stem}.tsv") for stem in COMMITTED] + [read_sheet(PAPER_SHEET)]
    model_of: dict[str, tuple] = {}
    for sheet in sheets:
        for row in sheet.itertuples():
            model = (row.dataset, row.architecture, json.dumps(row.arch_kwargs, sort_keys=True), row.source,
                     row.source_key)
            assert model_of.setdefault(row.model_id, model)[:3] == model[:3], row.model_id
            assert model_of[row.model_id][3:] == model[3:] or row.source == "train_cifar", row.model_id


def test_imagenet_linf_pairs_the_papers_five_models_as_the_authors_did():
    with open(REPO / "config" / "reference" / "paper_pairings.csv", newline="") as handle:
        authors = {row["Robust"].removeprefix("robustbench_").removesuffix("_imagenet_linf_13"):
                   row["Normal"].removesuffix("_imagenet1k_13")
                   for row in csv.DictReader(handle) if row["Dataset"] == "imagenet"}
    sheet = read_sheet(SHEETS / "imagenet_Linf.tsv")
    assert len(authors) == 5
    assert {key: sheet.loc[f"rb_imagenet_{key}"].counterpart for key in authors} == authors


@pytest.fixture
def no_network(tmp_path, monkeypatch) -> Path:
    """The file where processes started from here record what network use they tried (and were refused)."""
    record = tmp_path / "network.txt"
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(NO_NETWORK.format(record=str(record)))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(guard), os.environ.get("PYTHONPATH")])))
    return record


def test_the_guard_refuses_and_records_a_connection(no_network):
    command = "import socket; socket.create_connection(('203.0.113.1', 80), timeout=1)"
    result = subprocess.run([sys.executable, "-c", command], capture_output=True, text=True)
    assert result.returncode != 0 and "no network in this test" in result.stderr
    assert no_network.read_text().startswith("getaddrinfo") or no_network.read_text().startswith("connect")


@pytest.mark.parametrize("stem", COMMITTED)
def test_each_sheet_plans_every_job_offline_with_no_network(stem, tmp_path, no_network):
    workdir = tmp_path / "run"
    workdir.mkdir()
    result = run_snakemake(workdir, "-n", "--configfile", str(CONFIG), "--config",
                           f"sheet={SHEETS.relative_to(REPO)}/{stem}.tsv", "--quiet", "rules")
    output = result.stdout + result.stderr
    counts = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", output, re.MULTILINE)}
    sheet = read_sheet(SHEETS / f"{stem}.tsv")
    expected = {"acquire_robustbench": (sheet.source == "robustbench").sum(),
                "acquire_timm": (sheet.source == "timm").sum(), "train_cifar": (sheet.source == "train_cifar").sum(),
                "extract_filters": len(sheet), "summarize_model": len(sheet), "pca_bases": 1, "kl_divergence": 1,
                "layer_quality": 1, "model_table": 1, "all": 1}
    assert {rule: counts.get(rule, 0) for rule in expected} == expected, output
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total") > 0
    assert not no_network.exists(), no_network.read_text()
    assert sorted(p.name for p in workdir.iterdir()) == [".snakemake"]  # a dry run writes nothing else
