"""The paper's zoo sheet: generated, complete, paired as the authors did, and planned offline."""

from __future__ import annotations

import csv
import re

import pytest
from conftest import REPO, run_snakemake

from filterlens.config.sheet import pairs, read_sheet

SHEET = REPO / "config" / "models" / "paper.tsv"
PAIRINGS = REPO / "config" / "reference" / "paper_pairings.csv"


def _sheet_command(*args: str) -> int:
    """filterlens leaderboard-sheet, run in the repository (its reference data's default paths)."""
    from filterlens.cli import main

    return main(["leaderboard-sheet", *args])


@pytest.fixture(scope="module")
def sheet():
    return read_sheet(SHEET)


def test_committed_sheet_is_what_the_tool_generates(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    out = tmp_path / "paper.tsv"
    assert _sheet_command("--out", str(out)) == 0
    assert out.read_text() == SHEET.read_text(), "regenerate: .venv/bin/filterlens leaderboard-sheet"


def test_tool_reports_unknown_models(tmp_path, capsys):
    pairings = tmp_path / "p.csv"
    pairings.write_text(",Robust,Normal,Arch,Dataset\n0,robustbench_NoSuchModel_cifar10_linf_13,"
                        "hso_normal_training_robustbench_NoSuchModel_cifar10_13,x,cifar10\n")
    assert _sheet_command("--pairings", str(pairings), "--models", str(REPO / "config/reference/paper_models.csv"),
                          "--out", str(tmp_path / "s.tsv")) == 1
    assert "RobustBench has no cifar10/Linf model 'NoSuchModel'" in capsys.readouterr().err


def test_71_robust_and_43_normal_models_49_17_5_per_dataset(sheet):
    assert len(sheet) == 114
    assert (sheet.robust == True).sum() == 71 and (sheet.robust == False).sum() == 43  # noqa: E712
    robust = sheet[sheet.robust == True]  # noqa: E712
    assert robust.dataset.value_counts().to_dict() == {"cifar10": 49, "cifar100": 17, "imagenet": 5}
    assert set(robust.source) == {"robustbench"}
    normal = sheet[sheet.robust == False]  # noqa: E712
    assert normal.groupby("dataset").source.agg(set).to_dict() == {
        "cifar10": {"train_cifar"}, "cifar100": {"train_cifar"}, "imagenet": {"timm"}}
    assert sheet.clean_acc.notna().all() and sheet.robust_acc.notna().all()


def test_every_robust_row_has_the_authors_counterpart(sheet):
    rb = re.compile(r"^robustbench_(.+)_(cifar100|cifar10|imagenet)_linf_\d+$")
    normal_rb = re.compile(r"^hso_normal_training_robustbench_(.+)_(cifar100|cifar10|imagenet)_\d+$")
    normal_timm = re.compile(r"^timm_(.+)_imagenet1k_\d+$")
    with open(PAIRINGS, newline="") as handle:
        pairings = list(csv.DictReader(handle))
    assert len(pairings) == 71
    pair_of = {r.robust: r.normal for r in pairs(sheet).itertuples()}
    for pairing in pairings:
        key, dataset = rb.match(pairing["Robust"]).groups()
        robust = sheet[(sheet.source == "robustbench") & (sheet.source_key == key) & (sheet.dataset == dataset)]
        assert len(robust) == 1, pairing
        assert robust.iloc[0].arch_kwargs == {"dataset": dataset, "key": key, "threat_model": "Linf"}
        normal = sheet.loc[pair_of[robust.index[0]]]
        if match := normal_rb.match(pairing["Normal"]):
            assert (normal.source, normal.dataset) == ("train_cifar", match[2])
            assert normal.arch_kwargs == {"dataset": match[2], "key": match[1], "threat_model": "Linf"}
        else:
            name = normal_timm.match(pairing["Normal"])[1]
            assert (normal.source, normal.architecture, normal.arch_kwargs) == ("timm", "timm", {"name": name})
            assert normal.source_key.split(".")[0] == name
    assert len(set(pair_of.values())) == 43


def test_paper_config_plans_every_job_of_all_114_models_offline(tmp_path):
    result = run_snakemake(tmp_path, "-n", "--configfile", str(REPO / "config" / "paper.yaml"), "--quiet", "rules")
    output = result.stdout + result.stderr
    counts = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", output, re.MULTILINE)}
    expected = {"acquire_robustbench": 71, "acquire_timm": 3, "train_cifar": 40, "extract_filters": 114,
                "summarize_model": 114, "coefficient_range": 114, "coefficient_histograms": 114,
                "pca_bases": 1, "kl_divergence": 1, "layer_quality": 1, "model_table": 1, "all": 1}
    assert {rule: counts.get(rule) for rule in expected} == expected, output
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".snakemake"]  # a dry run writes nothing else
