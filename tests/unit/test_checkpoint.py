"""The checkpoint contract and the errors of bad checkpoints."""

import numpy as np
import pytest
import torch
from conftest import REPO

from filterlens.acquire.checkpoint import (Checkpoint, CheckpointError, build_model, classifier, load_checkpoint,
                                           save_checkpoint)
from filterlens.models.architectures import build_architecture

KWARGS = {"depth": 10, "widen_factor": 1}


def _checkpoint(state_dict=None, **overrides):
    model = build_architecture("wide_resnet", KWARGS, 10)
    fields = dict(model_id="m", dataset="coloured_digits", num_classes=10, architecture="wide_resnet",
                  arch_kwargs=KWARGS, normalization=None, source="minizoo",
                  state_dict=state_dict if state_dict is not None else model.state_dict())
    return Checkpoint(**{**fields, **overrides}), model


def test_round_trip_rebuilds_the_same_model(tmp_path):
    checkpoint, model = _checkpoint()
    save_checkpoint(checkpoint, tmp_path / "m.pt")
    rebuilt = build_model(load_checkpoint(tmp_path / "m.pt"))
    x = torch.rand(2, 3, 32, 32)
    model.eval()
    assert torch.equal(rebuilt(x), model(x))


def test_normalization_is_applied_before_the_model():
    checkpoint, model = _checkpoint(normalization={"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]})
    wrapped = classifier(build_model(checkpoint), checkpoint)
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(wrapped(x), model.eval()((x - 0.5) / 0.25))


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"<!DOCTYPE html><html><body>Quota exceeded</body></html>", "HTML/XML page"),
])
def test_empty_and_html_files_are_named(tmp_path, content, message):
    (tmp_path / "m.pt").write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(tmp_path / "m.pt")


@pytest.mark.parametrize("content, problem", [
    (b"", "is empty (0 bytes)"),
    (b"\n \n", "is empty (3 bytes of white space)"),
    (b"\n  <body>Sign in</body>", "is an HTML/XML page, not weights"),
    (b"<?xml version='1.0'?><Error>AccessDenied</Error>", "is an HTML/XML page, not weights"),
])
def test_one_failed_download_check_serves_acquisition_and_loading(tmp_path, content, problem):
    from filterlens.acquire.robustbench_weights import file_problem
    from filterlens.acquire.failed_downloads import failed_download_problem

    path = tmp_path / "m.pt"
    path.write_bytes(content)
    assert failed_download_problem(path).startswith(problem)
    assert file_problem(path) == f"it {failed_download_problem(path)}"
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    assert str(error.value).startswith(f"checkpoint {path} {failed_download_problem(path)}. Fix: delete")


def test_the_failed_download_check_needs_no_torch():
    import subprocess
    import sys

    code = "import sys, filterlens.acquire.failed_downloads; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO / "src")


def test_truncated_checkpoint_is_named_with_the_fix(tmp_path):
    checkpoint, _ = _checkpoint()
    save_checkpoint(checkpoint, tmp_path / "m.pt")
    data = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "m.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"truncated or corrupt.*acquire the model again"):
        load_checkpoint(tmp_path / "m.pt")


def test_weights_that_do_not_fit_name_the_keys():
    _, model = _checkpoint()
    state = model.state_dict()
    state.pop("fc.weight")
    state["extra.weight"] = torch.zeros(1)
    state["conv1.weight"] = torch.zeros(1, 1, 3, 3)
    with pytest.raises(CheckpointError, match=r"missing keys fc.weight.*unexpected keys extra.weight.*mis-shaped"):
        build_model(_checkpoint(state)[0])


@pytest.mark.parametrize("values", [[float("nan")], [float("inf")], [float("inf"), float("-inf")]])
def test_non_finite_weights_are_refused(values):
    _, model = _checkpoint()
    state = model.state_dict()
    state["conv1.weight"].view(-1)[:len(values)] = torch.tensor(values)
    with pytest.raises(CheckpointError, match="NaN or Inf in conv1.weight"):
        build_model(_checkpoint(state)[0])


def test_finite_weights_whose_sum_overflows_are_accepted():
    _, model = _checkpoint()
    state = model.state_dict()
    state["conv1.weight"].view(-1)[:4] = 3e38  # their float32 sum is inf
    assert build_model(_checkpoint(state)[0]).conv1.weight.max().item() == pytest.approx(3e38)


@pytest.mark.parametrize("field, value", [("model_id", "other_model"), ("dataset", "cifar10")])
def test_a_checkpoint_of_another_model_or_dataset_is_refused_naming_file_and_field(tmp_path, field, value):
    checkpoint, _ = _checkpoint(**{field: value})
    save_checkpoint(checkpoint, tmp_path / "m.pt")
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(tmp_path / "m.pt", model_id="m", dataset="coloured_digits")
    message = str(error.value)
    expected = {"model_id": "m", "dataset": "coloured_digits"}[field]
    assert f"checkpoint {tmp_path / 'm.pt'} holds {field} {value!r}, but the sheet's row is {expected!r}" in message
    assert f"Fix: delete {tmp_path / 'm.pt'} and acquire the model again" in message
    assert load_checkpoint(tmp_path / "m.pt").model_id == checkpoint.model_id  # no expectation: loaded


def test_a_crafted_checkpoint_runs_no_code(tmp_path):
    import os

    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    checkpoint, _ = _checkpoint()
    torch.save({**checkpoint.to_dict(), "extra": {"payload": Payload()}}, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match=r"m\.pt holds objects other than tensors .*GLOBAL posix\.system.*"
                                              r"Fix: delete .*m\.pt and acquire the model again"):
        load_checkpoint(tmp_path / "m.pt", model_id="m")
    assert not marker.exists()


# A non-persistent buffer: the real constructor makes it, the state dict does not hold it.
BUFFERED_NETS = '''\
import torch
from torch import nn


class Constant(nn.Module):  # as DMWideResNet's mean and std
    def __init__(self, num_classes):
        super().__init__()
        self.conv = nn.Conv2d(3, num_classes, 3)
        self.register_buffer("scale", torch.arange(1.0, 4.0).view(3, 1, 1), persistent=False)

    def forward(self, x):
        return self.conv(x * self.scale)


class Drawn(Constant):  # a buffer made by an initialiser
    def __init__(self, num_classes):
        super().__init__(num_classes)
        self.register_buffer("scale", torch.empty(3, 1, 1).normal_(), persistent=False)
'''


@pytest.mark.parametrize("cls", ["Constant", "Drawn"])
def test_a_model_with_a_buffer_outside_the_state_dict_gets_the_constructors_buffer(tmp_path, monkeypatch, cls):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nets.py").write_text(BUFFERED_NETS)
    kwargs = {"constructor": f"nets.py:{cls}"}
    reference = build_architecture("python", kwargs, 4, seed=0)
    checkpoint, _ = _checkpoint(state_dict=reference.state_dict(), architecture="python", arch_kwargs=kwargs,
                                num_classes=4)
    with torch.random.fork_rng():
        torch.manual_seed(0)  # as the reference's: Drawn's buffer is then the same draw
        model = build_model(checkpoint)
    assert torch.equal(model.scale, reference.scale) and torch.equal(model.conv.weight, reference.conv.weight)
    x = torch.rand(1, 3, 5, 5)
    assert torch.equal(model(x), reference.eval()(x))
    assert not torch.equal(torch.nn.init.normal_(torch.zeros(3)), torch.zeros(3))  # initialisers work again after


def test_a_robustbench_dm_model_is_built_with_its_checkpoints_weights_and_constants():
    kwargs = {"dataset": "cifar10", "key": "Rebuffi2021Fixing_R18_ddpm", "threat_model": "Linf"}
    reference = build_architecture("robustbench", kwargs, 10, seed=0).eval()
    checkpoint, _ = _checkpoint(state_dict=reference.state_dict(), architecture="robustbench", arch_kwargs=kwargs)
    model = build_model(checkpoint)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
