"""Your own models beside the zoo: a state dict file (source local) for any architecture,
including a constructor in your own Python file (architecture python), becomes the checkpoint
contract; bad files stop the sheet or the acquisition with the row, the file and the fix."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO, run_snakemake
from safetensors.torch import save_file
from torch import nn

from filterlens.acquire.checkpoint import CheckpointError, build_model, load_checkpoint
from filterlens.acquire.errors import AcquisitionError
from filterlens.acquire.local import local_checkpoint, read_state_dict
from filterlens.config.sheet import SheetError, read_sheet
from filterlens.extract.store import open_filter_store
from filterlens.io.hashing import sha256_of
from filterlens.models import sheet_checks
from filterlens.models.architectures import build_architecture
from filterlens.models.local_sources import own_files, sheet_problems
from filterlens.models.sheet_checks import row_build_problems
from filterlens.models.user_code import ConstructorError, build_user_model, constructor_problem, load_constructor
from filterlens.report.provenance import model_facts

HEADER = "model_id\tdataset\tarchitecture\tarch_kwargs\trobust\tsource\tsource_key\tcounterpart\tclean_acc\trobust_acc"
# A RobustBench CIFAR-10 architecture of 2.2M parameters (WRN-40-2), built offline.
RB_KWARGS = {"dataset": "cifar10", "key": "Hendrycks2020AugMix_WRN", "threat_model": "corruptions"}
NETS = '''\
from torch import nn


def small_net(num_classes, width=8):
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.Conv2d(width, width, 3, padding=1, groups=2), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))


class Net(nn.Module):
    def __init__(self, channels=4):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3)

    def forward(self, x):
        return self.conv(x)


NOT_CALLABLE = 3


def not_a_module(num_classes):
    return "a model"
'''


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """tmp_path as the working directory (relative paths of the sheet resolve there), with nets.py."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nets.py").write_text(NETS)
    return tmp_path


def _row(**overrides):
    row = {"model_id": "own", "dataset": "cifar10", "architecture": "python",
           "arch_kwargs": {"constructor": "nets.py:small_net", "width": 8}, "robust": False, "source": "local",
           "source_key": "weights.pt"}
    return {**row, **overrides}


# --- the user's constructor ------------------------------------------------------------------

def test_a_constructor_is_checked_without_running_its_file(in_tmp):
    (in_tmp / "loud.py").write_text("open('ran', 'w').close()\n\ndef build(num_classes):\n    pass\n")
    assert constructor_problem({"constructor": "loud.py:build"}) is None
    assert "defines no 'make' at its top level" in constructor_problem({"constructor": "loud.py:make"})
    assert not (in_tmp / "ran").exists()
    assert "does not exist" in constructor_problem({"constructor": "missing.py:build"})
    assert "relative to the working directory" in constructor_problem({"constructor": "missing.py:build"})
    (in_tmp / "broken.py").write_text("def build(:\n")
    assert "is not valid Python" in constructor_problem({"constructor": "broken.py:build"})
    for spec in ("nets.py", "nets:small_net", "nets.py:small-net", "a.py:b:c", 7):
        assert "must be 'path/to/file.py:callable'" in constructor_problem({"constructor": spec}), spec


def test_a_constructor_gets_its_arguments_and_num_classes_when_it_takes_them(in_tmp):
    net = build_user_model(num_classes=7, constructor="nets.py:small_net", width=4)
    assert net[-1].out_features == 7 and net[0].out_channels == 4
    assert build_user_model(num_classes=7, constructor="nets.py:Net", channels=2).conv.out_channels == 2
    assert load_constructor("nets.py:small_net") is load_constructor("nets.py:small_net")  # imported once
    with pytest.raises(ConstructorError, match="is a int, not a callable"):
        load_constructor("nets.py:NOT_CALLABLE")
    with pytest.raises(ConstructorError, match="returned a str, not a torch.nn.Module"):
        build_user_model(num_classes=10, constructor="nets.py:not_a_module")
    (in_tmp / "exits.py").write_text("import sys\nsys.exit(3)\n\ndef build(num_classes):\n    pass\n")
    with pytest.raises(ConstructorError, match="importing the constructor file .*exits.py failed: SystemExit: 3"):
        load_constructor("exits.py:build")


def test_a_constructor_row_is_built_on_the_meta_device_at_parse_time(in_tmp):
    assert row_build_problems(_row()) == []
    (problem,) = row_build_problems(_row(arch_kwargs={"constructor": "nets.py:small_net", "depth": 3}))
    assert "do not fit nets.py:small_net" in problem and "depth" in problem, problem
    model = build_architecture("python", {"constructor": "nets.py:small_net"}, 10, device="meta")
    assert all(p.is_meta for p in model.parameters())


def test_the_sheet_check_marker_follows_the_constructor_files_content(in_tmp):
    sheet = in_tmp / "sheet.tsv"
    sheet.write_text(HEADER + "\n")
    code = in_tmp / "nets.py"
    before = sheet_checks.fingerprint(sheet, [code])
    code.write_text(NETS.replace("width=8", "width=9"))
    assert sheet_checks.fingerprint(sheet, [code]) != before


# --- the sheet -------------------------------------------------------------------------------

def test_a_local_row_names_a_path_and_other_sources_still_name_keys(in_tmp):
    line = "own\tcifar10\tpython\t{\"constructor\": \"nets.py:small_net\"}\tfalse\tlocal\tweights/own.pt\t\t\t"
    (in_tmp / "sheet.tsv").write_text(f"{HEADER}\n{line}\n")
    assert read_sheet(in_tmp / "sheet.tsv").loc["own", "source_key"] == "weights/own.pt"
    (in_tmp / "sheet.tsv").write_text(f"{HEADER}\n{line.replace('local', 'random')}\n")
    with pytest.raises(SheetError, match="source_key: 'weights/own.pt' does not match"):
        read_sheet(in_tmp / "sheet.tsv")


def test_missing_and_unknown_files_of_a_row_are_named_with_the_fix(in_tmp):
    problems = sheet_problems([_row(source_key="weights.pt"), _row(model_id="b", source_key="w.ckpt"),
                               _row(model_id="c", source_key=""),
                               _row(model_id="d", arch_kwargs={"constructor": "gone.py:build"}, source="random")])
    assert problems[0].startswith("model 'own': the weights file weights.pt (relative to the working directory")
    assert "Fix: correct source_key" in problems[0]
    assert "model 'b': source_key 'w.ckpt' is not a state dict file of a known kind" in problems[1]
    assert "model 'c': source local needs source_key" in problems[2]
    assert problems[3].startswith("model 'd': the constructor file gone.py") and len(problems) == 4, problems
    torch.save({}, in_tmp / "weights.pt")
    assert sheet_problems([_row()]) == []
    assert own_files(_row()) == {"weights": "weights.pt", "constructor": "nets.py"}


# --- reading the state dict ------------------------------------------------------------------

def _net_state(width=8, code="nets.py"):
    return build_user_model(10, f"{code}:small_net", width=width).state_dict()


def test_a_state_dict_is_read_from_torch_save_a_nested_state_dict_or_safetensors(in_tmp):
    state = _net_state()
    torch.save(state, "plain.pt")
    torch.save({"state_dict": state, "epoch": 3}, "nested.pth")
    save_file({k: v.contiguous() for k, v in state.items()}, "weights.safetensors")
    for name in ("plain.pt", "nested.pth", "weights.safetensors"):
        read = read_state_dict(name)
        assert read.keys() == state.keys() and all(torch.equal(read[k], state[k]) for k in state), name


@pytest.mark.parametrize("content, message", [
    (lambda p: torch.save(nn.Conv2d(3, 3, 3), p), "holds objects other than tensors and plain values"),
    (lambda p: torch.save({"conv.weight": torch.ones(1), "epoch": 3}, p), "entries that are not tensors: epoch"),
    (lambda p: torch.save([torch.ones(1)], p), "holds a list, not a state dict"),
    (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    (lambda p: p.write_text("<!DOCTYPE html><html>quota</html>"), "is an HTML/XML page"),
    (lambda p: p.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:ab\n"), "is a Git LFS pointer"),
    (lambda p: p.write_bytes(b"PK\x03\x04 cut off"), "cannot be read (truncated or corrupt?)"),
], ids=["pickled module", "non-tensor entry", "a list", "empty", "html page", "lfs pointer", "truncated"])
def test_a_bad_weights_file_is_refused_with_what_is_wrong(in_tmp, content, message):
    path = in_tmp / "weights.pt"
    content(path)
    with pytest.raises(CheckpointError, match="weights file .*weights.pt") as raised:
        read_state_dict(path)
    assert message in str(raised.value), raised.value


def test_a_local_checkpoint_records_the_files_sha256_and_builds_its_model(in_tmp):
    torch.save(_net_state(), "weights.pt")
    checkpoint = local_checkpoint(_row(), "weights.pt")
    assert checkpoint.source == "local" and checkpoint.normalization is None
    assert checkpoint.extra == {"file": "weights.pt", "sha256": sha256_of("weights.pt"), "format": "torch",
                                "constructor_file": "nets.py", "constructor_sha256": sha256_of("nets.py")}
    model = build_model(checkpoint)
    assert torch.equal(model[0].weight, read_state_dict("weights.pt")["0.weight"])


def test_a_timm_architecture_keeps_its_pretrained_normalisation(in_tmp):
    state = build_architecture("timm", {"name": "resnet10t"}, 1000, seed=0).state_dict()
    torch.save(state, "timm.pt")
    row = _row(dataset="imagenet", architecture="timm", arch_kwargs={"name": "resnet10t"}, source_key="timm.pt")
    checkpoint = local_checkpoint(row, "timm.pt")
    assert checkpoint.normalization == {"mean": pytest.approx([0.485, 0.456, 0.406]),
                                        "std": pytest.approx([0.229, 0.224, 0.225])}


def test_weights_that_do_not_fit_the_architecture_name_the_keys(in_tmp):
    torch.save(_net_state(width=6), "weights.pt")
    with pytest.raises(AcquisitionError, match="own: the acquired weights do not fit architecture python .*mis-shaped"):
        local_checkpoint(_row(), "weights.pt")
    state = _net_state()
    state["extra.weight"] = state.pop("0.bias")
    torch.save(state, "weights.pt")
    with pytest.raises(AcquisitionError, match=r"missing keys 0.bias; unexpected keys extra.weight"):
        local_checkpoint(_row(), "weights.pt")


def test_provenance_records_the_own_files_beside_the_checkpoint():
    own = {"weights": {"file": "w.pt", "sha256": "ab"}, "constructor": {"file": "nets.py", "sha256": "cd"}}
    facts = model_facts("own", "ef", {"checkpoint_sha256": "ef"}, own)
    assert facts["store_matches_checkpoint"] is True
    assert {k: facts[k] for k in ("weights_file", "weights_sha256", "constructor_file", "constructor_sha256")} == {
        "weights_file": "w.pt", "weights_sha256": "ab", "constructor_file": "nets.py", "constructor_sha256": "cd"}
    assert "weights_sha256" not in model_facts("zoo", "ef", {"checkpoint_sha256": "ef"})


# --- the workflow ----------------------------------------------------------------------------

def _own_run_directory(workdir):
    """A working directory for the micro config with two rows of your own: random weights of a
    RobustBench architecture (torch.save) and of a constructor in nets.py (safetensors)."""
    (workdir / "nets.py").write_text(NETS)
    torch.save(build_architecture("robustbench", RB_KWARGS, 10, seed=1).state_dict(), workdir / "rb.pt")
    (workdir / "weights").mkdir()
    save_file(_net_state(code=workdir / "nets.py"), workdir / "weights" / "py.safetensors")
    rows = [f"own_rb\tcifar10\trobustbench\t{json.dumps(RB_KWARGS)}\tfalse\tlocal\trb.pt\t\t\t",
            'own_py\tcifar10\tpython\t{"constructor": "nets.py:small_net", "width": 8}\tfalse\tlocal\t'
            "weights/py.safetensors\t\t\t"]
    micro = (REPO / "config" / "models" / "micro.tsv").read_text().rstrip("\n")
    (workdir / "sheet.tsv").write_text("\n".join([micro, *rows]) + "\n")
    config = yaml.safe_load((REPO / "config" / "micro.yaml").read_text())
    (workdir / "config.yaml").write_text(yaml.safe_dump({**config, "sheet": "sheet.tsv"}))
    return ["--configfile", str(workdir / "config.yaml")]


@pytest.mark.workflow
def test_own_models_are_planned_acquired_extracted_summarised_and_recorded(tmp_path):
    args = _own_run_directory(tmp_path)
    plan = run_snakemake(tmp_path, "-n", *args, "--cores", "2")
    assert "acquire_local                         2" in plan.stdout, plan.stdout
    targets = [f"results/summaries/{m}/layers.tsv" for m in ("own_rb", "own_py")]
    run_snakemake(tmp_path, *args, "--cores", "2", *targets, "results/provenance/provenance.json")
    for model, weights in (("own_rb", "rb.pt"), ("own_py", "weights/py.safetensors")):
        checkpoint = load_checkpoint(tmp_path / "data" / "models" / f"{model}.pt", model_id=model, dataset="cifar10")
        assert checkpoint.source == "local" and checkpoint.extra["sha256"] == sha256_of(tmp_path / weights)
        store = open_filter_store(tmp_path / "results" / "filters" / f"{model}.zarr")
        layers = pd.read_csv(tmp_path / "results" / "summaries" / model / "layers.tsv", sep="\t")
        assert layers.n_filters.sum() == store.filters.shape[0] == store.attrs["n_filters"]
        assert (layers.n_filters == layers.c_out * layers.c_in // layers.groups).all()
    py_layers = pd.read_csv(tmp_path / "results" / "summaries" / "own_py" / "layers.tsv", sep="\t")
    assert py_layers[["c_in", "c_out", "groups"]].values.tolist() == [[3, 8, 1], [8, 8, 2]]
    assert read_state_dict(tmp_path / "rb.pt").keys() == load_checkpoint(
        tmp_path / "data" / "models" / "own_rb.pt").state_dict.keys()
    provenance = json.loads((tmp_path / "results" / "provenance" / "provenance.json").read_text())
    facts = {m["model_id"]: m for m in provenance["models"]}
    assert facts["own_py"]["weights_sha256"] == sha256_of(tmp_path / "weights" / "py.safetensors")
    assert facts["own_py"]["constructor_sha256"] == sha256_of(tmp_path / "nets.py")
    assert facts["own_rb"]["weights_file"] == "rb.pt" and "constructor_file" not in facts["own_rb"]
    assert "weights_sha256" not in facts["micro_normal"]


@pytest.mark.workflow
def test_a_missing_weights_file_stops_the_plan_naming_the_row_and_the_fix(tmp_path):
    args = _own_run_directory(tmp_path)
    (tmp_path / "rb.pt").unlink()
    (tmp_path / "nets.py").write_text("def other(num_classes):\n    pass\n")
    result = run_snakemake(tmp_path, "-n", *args, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Job stats" not in output, output
    assert f"model 'own_rb': the weights file rb.pt (relative to the working directory {tmp_path}) does not exist" \
        in output, output
    assert "model 'own_py': the constructor file nets.py defines no 'small_net' at its top level" in output, output


@pytest.mark.parametrize("kind, message", [
    ("folder", "is a folder, not a regular file"),
    ("named pipe", "is a named pipe, not a regular file"),
    ("looping symlink", "cannot be reached"),
    ("dangling symlink", "is a symlink to a file that does not exist"),
    ("compressed zip entry", "holds compressed zip entries"),
])
def test_a_weights_path_that_is_not_a_plain_file_is_named_for_what_it_is(in_tmp, kind, message):
    import os
    import zipfile

    path = in_tmp / "weights.pt"
    if kind == "folder":
        path.mkdir()
    elif kind == "named pipe":
        os.mkfifo(path)
    elif kind == "looping symlink":
        path.symlink_to(in_tmp / "loop.pt")
        (in_tmp / "loop.pt").symlink_to(path)
    elif kind == "dangling symlink":
        path.symlink_to(in_tmp / "gone.pt")
    else:  # torch.save's archive with its entries deflated: what a zip bomb needs
        torch.save(_net_state(), in_tmp / "plain.pt")
        with zipfile.ZipFile(in_tmp / "plain.pt") as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
            for entry in source.infolist():
                out.writestr(entry.filename, source.read(entry))
    with pytest.raises(CheckpointError) as raised:
        read_state_dict(path)
    assert f"weights file {path} {message}" in str(raised.value) and "Fix:" in str(raised.value), raised.value


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update({"0.weight": s["0.weight"].to(torch.int8)}), "non-floating dtype .*0.weight \\(int8\\)"),
    (lambda s: s.update({"1.weight": s["1.weight"] > 0}), "non-floating dtype .*1.weight \\(bool\\)"),
    (lambda s: s["0.bias"].__setitem__(0, float("nan")), "NaN or infinite values in 0.bias"),
    (lambda s: s["1.running_var"].__setitem__(0, -1.0), "negative BatchNorm variances in 1.running_var"),
], ids=["int8", "bool", "nan", "negative variance"])
def test_weights_the_analysis_cannot_use_are_refused_before_they_become_a_checkpoint(in_tmp, change, message):
    state = _net_state()
    change(state)
    torch.save(state, "weights.pt")
    with pytest.raises(CheckpointError, match=f"own: weights file weights.pt: .*{message}"):
        local_checkpoint(_row(), "weights.pt")


def test_half_precision_weights_are_cast_to_the_models_dtype(in_tmp):
    state = _net_state()
    torch.save({key: value.half() if value.is_floating_point() else value for key, value in state.items()},
               "weights.pt")
    checkpoint = local_checkpoint(_row(), "weights.pt")
    assert checkpoint.state_dict["0.weight"].dtype == torch.float32
    torch.testing.assert_close(checkpoint.state_dict["0.weight"], state["0.weight"], atol=1e-2, rtol=1e-3)


def test_a_source_key_that_is_not_a_regular_file_is_named_for_what_it_is_at_parse_time(in_tmp):
    import os

    os.mkfifo("pipe.pt")
    os.mkdir("folder.pt")
    os.symlink("loop.pt", "loop2.pt")
    os.symlink("loop2.pt", "loop.pt")
    rows = [_row(model_id=name.split(".")[0], source_key=name) for name in ("pipe.pt", "folder.pt", "loop.pt")]
    problems = sheet_problems(rows)
    assert "model 'pipe': the weights file pipe.pt (relative to" in problems[0] and "is a named pipe" in problems[0]
    assert "is a folder, not a regular file. Fix: correct source_key" in problems[1]
    assert "cannot be reached" in problems[2]
    assert not any("does not exist" in problem for problem in problems)
