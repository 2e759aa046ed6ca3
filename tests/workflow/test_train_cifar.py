"""Rule train_cifar and filterlens.train.cifar: the paper's recipe for the normal CIFAR counterparts.

Offline: every test writes a tiny dataset in torchvision's CIFAR format itself (pickled
Python-2-style dicts with str keys, as the real files load under ``encoding="latin1"``).
Its md5s cannot match torchvision's, so the tests read it with ``verify_checksums=False``
(filterlens.train.cifar.torchvision_class: a subclass whose md5s are None, i.e. existence checks).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from filterlens.config.validation import CONFIG_SCHEMA
import yaml
from conftest import run_snakemake

import filterlens.train.cifar as cifar
from filterlens.acquire.checkpoint import build_model, load_checkpoint
from filterlens.models.architectures import build_architecture
from filterlens.train.cifar import (OPTION_KEYS, CifarDataError, CifarRecipe, ResumeOptionError, augment, load_cifar,
                                    recipe_from_config, resume_path, train_cifar)

ARCH = ("wide_resnet", {"depth": 10, "widen_factor": 1})
# Tiny: 5 x 12 training images, 24 test images, batches of 12, at most 3 steps per epoch.
RECIPE = CifarRecipe(epochs=2, batch_size=12, lr=0.05, max_steps_per_epoch=3, seed=3)


def _pickle(path: Path, obj: dict) -> None:
    with open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=2)


def _images(n: int, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 (n, 3072) rows, channel-major as CIFAR stores them; a class-dependent tint."""
    x = rng.integers(0, 128, size=(n, 3, 32, 32))
    x[np.arange(n), labels % 3] += 100
    return x.astype(np.uint8).reshape(n, 3072)


def write_cifar10(root: Path, per_batch: int = 12, n_test: int = 24, seed: int = 0) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        labels = rng.integers(0, 10, size=n)
        _pickle(folder / name, {"batch_label": name, "labels": labels.tolist(),
                                "data": _images(n, labels, rng), "filenames": [f"{i}.png" for i in range(n)]})
    _pickle(folder / "batches.meta", {"label_names": [f"class{i}" for i in range(10)],
                                      "num_cases_per_batch": per_batch, "num_vis": 3072})
    return root


def write_cifar100(root: Path, n_train: int = 30, n_test: int = 10, seed: int = 0) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name, n in (("train", n_train), ("test", n_test)):
        fine = rng.integers(0, 100, size=n)
        _pickle(folder / name, {"fine_labels": fine.tolist(), "coarse_labels": (fine // 5).tolist(),
                                "data": _images(n, fine, rng)})
    _pickle(folder / "meta", {"fine_label_names": [f"f{i}" for i in range(100)],
                              "coarse_label_names": [f"c{i}" for i in range(20)]})
    return root


@pytest.fixture(scope="module")
def cifar10_dir(tmp_path_factory) -> Path:
    return write_cifar10(tmp_path_factory.mktemp("cifar"))


@pytest.fixture
def one_thread():
    """Bitwise comparisons need one thread count throughout (the rule runs with threads=1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _model():
    return build_architecture(*ARCH, num_classes=10, seed=RECIPE.seed)


def _train(data, state_file, recipe=RECIPE, **kwargs):
    return train_cifar(_model(), data, recipe, state_file, "cpu", log=lambda _: None, **kwargs)


def _assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_reads_torchvision_cifar10_and_cifar100_folders(tmp_path, cifar10_dir):
    data = load_cifar(cifar10_dir, "cifar10", CifarRecipe(), verify_checksums=False)
    assert data.x_train.shape == (60, 3, 32, 32) and data.x_train.dtype == torch.uint8
    assert data.x_val.shape == (24, 3, 32, 32) and data.num_classes == 10
    assert "test set" in data.validation
    # Channel-major rows as stored: row[:1024] is the red plane.
    with open(cifar10_dir / "cifar-10-batches-py" / "data_batch_1", "rb") as handle:
        first = pickle.load(handle, encoding="latin1")
    np.testing.assert_array_equal(data.x_train[0].numpy().reshape(-1), first["data"][0])
    assert data.y_train[:12].tolist() == first["labels"]

    holdout = load_cifar(cifar10_dir, "cifar10", recipe_from_config({"validation": {"split": "holdout", "size": 10}}),
                         verify_checksums=False)
    assert len(holdout.x_train) == 50 and len(holdout.x_val) == 10 and "held out" in holdout.validation

    c100 = load_cifar(write_cifar100(tmp_path), "cifar100", CifarRecipe(limit=8), verify_checksums=False)
    assert c100.num_classes == 100 and len(c100.x_train) == 8 and len(c100.x_val) == 8


def test_md5s_are_verified_by_default(cifar10_dir):
    """torchvision checks md5s even with download=False; a copy that fails says how to proceed."""
    with pytest.raises(CifarDataError, match="verify_checksums: false"):
        load_cifar(cifar10_dir, "cifar10", CifarRecipe())


def test_a_missing_dataset_names_the_folder_and_the_fix(tmp_path):
    with pytest.raises(CifarDataError) as error:
        load_cifar(tmp_path / "nowhere", "cifar100", CifarRecipe())
    message = str(error.value)
    assert str(tmp_path / "nowhere" / "cifar-100-python") in message
    assert "cifar-100-python.tar.gz" in message and "cifar_training.download: true" in message


def test_augmentation_is_a_zero_padded_crop_and_a_flip():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).reshape(2, 3, 32, 32) + 1
    assert torch.equal(augment(x, torch.Generator(), padding=0, flip=False), x)
    out = augment(x, torch.Generator().manual_seed(1), padding=4, flip=True)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(2):
        windows = [padded[i, :, dy:dy + 32, dx:dx + 32] for dy in range(9) for dx in range(9)]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(2)) for w in windows)


def test_the_crop_draws_the_row_offsets_first_or_with_columns_first_the_column_offsets():
    from filterlens.train.batches import random_crop

    x = torch.arange(3 * 2 * 6 * 6, dtype=torch.float32).reshape(3, 2, 6, 6)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    draws = torch.Generator().manual_seed(4)
    first, second = torch.randint(0, 5, (3,), generator=draws), torch.randint(0, 5, (3,), generator=draws)
    for columns_first, (dy, dx) in ((False, (first, second)), (True, (second, first))):
        out = random_crop(x, torch.Generator().manual_seed(4), padding=2, columns_first=columns_first)
        expected = torch.stack([padded[i, :, dy[i]:dy[i] + 6, dx[i]:dx[i] + 6] for i in range(3)])
        assert torch.equal(out, expected)


def test_recipe_defaults_are_the_papers():
    r = CifarRecipe()
    assert (r.epochs, r.batch_size, r.lr, r.momentum, r.nesterov, r.weight_decay) == (125, 256, 0.01, 0.9, True, 0.01)
    assert (r.lr_step_epochs, r.lr_gamma, r.crop_padding, r.horizontal_flip) == (30, 0.1, 4, True)
    assert r.validation_split == "test"
    assert r.options() == {"precision": "fp32", "channels_last": False, "compile": False}  # the authors': fp32
    schema = yaml.safe_load(CONFIG_SCHEMA.read_text())
    section = schema["properties"]["cifar_training"]["properties"]
    defaults = {k: v["default"] for k, v in section.items() if k != "validation"}
    defaults["validation"] = {k: v["default"] for k, v in section["validation"]["properties"].items()}
    assert recipe_from_config(defaults) == r


class Interrupted(Exception):
    pass


def test_a_killed_run_resumes_from_its_last_epoch_and_ends_as_an_uninterrupted_one(tmp_path, cifar10_dir,
                                                                                   one_thread):
    data = load_cifar(cifar10_dir, "cifar10", RECIPE, verify_checksums=False)
    whole = _train(data, tmp_path / "whole.pt")
    assert whole.resumed_from == 0 and [h["epoch"] for h in whole.history] == [1, 2]

    state_file = tmp_path / "resumed.pt"

    def kill_after_first(epoch, model):
        if epoch == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        _train(data, state_file, on_epoch_end=kill_after_first)
    assert torch.load(state_file, weights_only=True)["epoch"] == 1

    epochs_run = []
    resumed = _train(data, state_file, on_epoch_end=lambda epoch, model: epochs_run.append(epoch))
    assert resumed.resumed_from == 1 and epochs_run == [2]  # not from scratch
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in (*whole.history, *resumed.history)]
    assert strip[:2] == strip[2:]
    _assert_same_state(resumed.best_state, whole.best_state)
    final = torch.load(state_file, weights_only=True)
    _assert_same_state(final["model"], torch.load(tmp_path / "whole.pt", weights_only=True)["model"])

    # Other settings: the resume file is not used.
    other = _train(data, state_file, recipe=CifarRecipe(**{**RECIPE.fingerprint(), "epochs": 1}))
    assert other.resumed_from == 0


def test_the_best_validation_epoch_is_kept_not_the_last(tmp_path, cifar10_dir, monkeypatch, one_thread):
    data = load_cifar(cifar10_dir, "cifar10", RECIPE, verify_checksums=False)
    accuracies = iter([50.0, 80.0, 60.0])
    monkeypatch.setattr(cifar, "evaluate_accuracy", lambda *args: next(accuracies))
    snapshots = {}
    result = _train(data, tmp_path / "state.pt", recipe=CifarRecipe(**{**RECIPE.fingerprint(), "epochs": 3}),
                    on_epoch_end=lambda e, m: snapshots.update({e: {k: v.clone() for k, v in m.state_dict().items()}}))
    assert (result.best_epoch, result.best_val_acc) == (2, 80.0)
    _assert_same_state(result.best_state, snapshots[2])
    assert not torch.equal(result.best_state["conv1.weight"], snapshots[3]["conv1.weight"])


SHEET = (
    "model_id\tdataset\tarchitecture\tarch_kwargs\trobust\tsource\tsource_key\tcounterpart\tclean_acc\trobust_acc\n"
    'c10_normal\tcifar10\twide_resnet\t{"depth": 10, "widen_factor": 1}\tfalse\ttrain_cifar\t\t\t\t\n'
    'c10_robust\tcifar10\twide_resnet\t{"depth": 10, "widen_factor": 1}\ttrue\trandom\t\tc10_normal\t\t\n'
)


@pytest.mark.workflow
def test_rule_train_cifar_resumes_and_writes_the_checkpoint_contract(tmp_path, cifar10_dir, one_thread):
    (tmp_path / "sheet.tsv").write_text(SHEET)
    section = {"data_dir": str(tmp_path / "absent"), "verify_checksums": False, "seed": RECIPE.seed,
               "epochs": RECIPE.epochs, "batch_size": RECIPE.batch_size, "lr": RECIPE.lr,
               "max_steps_per_epoch": RECIPE.max_steps_per_epoch}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"sheet": str(tmp_path / "sheet.tsv"), "cifar_training": section}))
    target = "data/models/c10_normal.pt"
    args = (target, "--configfile", str(config), "--set-threads", "train_cifar=1", "--cores", "1")

    # No dataset: the job fails and its log names the folder and the fix.
    failed = run_snakemake(tmp_path, *args, check=False)
    assert failed.returncode != 0 and not (tmp_path / target).exists()
    log = (tmp_path / "logs/train_cifar/c10_normal.log").read_text()
    assert str(tmp_path / "absent" / "cifar-10-batches-py") in log and "cifar_training.download: true" in log

    # A job killed after epoch 1 left its resume state; the rule resumes from it.
    section["data_dir"] = str(cifar10_dir)
    config.write_text(yaml.safe_dump({"sheet": str(tmp_path / "sheet.tsv"), "cifar_training": section}))
    recipe = recipe_from_config(section)
    assert recipe == RECIPE
    data = load_cifar(cifar10_dir, "cifar10", recipe, verify_checksums=False)
    identity = {"model_id": "c10_normal", "dataset": "cifar10", "architecture": ARCH[0], "arch_kwargs": ARCH[1]}
    state_file = resume_path(tmp_path / target)
    assert state_file == tmp_path / "data/models/.c10_normal.train_state.pt"

    def kill_after_first(epoch, model):
        raise Interrupted

    with pytest.raises(Interrupted):
        train_cifar(_model(), data, recipe, state_file, "cpu", fingerprint_extra=identity, log=lambda _: None,
                    on_epoch_end=kill_after_first)
    whole = train_cifar(_model(), data, recipe, tmp_path / "whole.pt", "cpu", fingerprint_extra=identity,
                        log=lambda _: None)

    run_snakemake(tmp_path, *args)
    log = (tmp_path / "logs/train_cifar/c10_normal.log").read_text()
    assert "resuming after epoch 1/2" in log
    assert not state_file.exists()  # deleted once the output is written
    assert (tmp_path / "benchmarks/train_cifar/c10_normal.tsv").exists()
    checkpoint = load_checkpoint(tmp_path / target)
    assert (checkpoint.source, checkpoint.normalization, checkpoint.dataset) == ("train_cifar", None, "cifar10")
    assert (checkpoint.architecture, checkpoint.arch_kwargs, checkpoint.num_classes) == (*ARCH, 10)
    assert checkpoint.extra["best_epoch"] == whole.best_epoch and "test set" in checkpoint.extra["validation"]
    assert checkpoint.extra["training_options"] == {"precision": "fp32", "channels_last": False, "compile": False}
    assert {k: checkpoint.extra["recipe"][k] for k in OPTION_KEYS} == checkpoint.extra["training_options"]
    _assert_same_state(checkpoint.state_dict, whole.best_state)
    build_model(checkpoint)


# --- options that keep the recipe: precision, channels_last, compile --------------------------

OPTIONS = [{"precision": "bf16"}, {"channels_last": True}, {"compile": True}]


@pytest.fixture
def cheap_compile(monkeypatch):
    """torch.compile with the aot_eager backend, counting the graphs it captures.

    Inductor's default backend compiles C++ kernels on the CPU: 75 s for the tiny WRN-10-1 of
    these tests on a loaded 2-core machine, too slow for a test. aot_eager runs the same Dynamo
    capture and AOT autograd of forward and backward (seconds) and only skips the kernel
    generation, so the option's path through the training step is exercised for real."""
    real, graphs = torch.compile, []
    aot_eager = torch._dynamo.lookup_backend("aot_eager")

    def counting(gm, example_inputs):
        graphs.append(gm)
        return aot_eager(gm, example_inputs)

    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: real(model, backend=counting))
    yield graphs
    torch._dynamo.reset()


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: next(iter(o)))
def test_each_option_trains_resumes_and_is_recorded(tmp_path, cifar10_dir, one_thread, cheap_compile, option):
    recipe = CifarRecipe(**{**RECIPE.fingerprint(), "epochs": 3, **option})
    data = load_cifar(cifar10_dir, "cifar10", recipe, verify_checksums=False)
    layouts, weights, outputs = [], [], []

    def inspect(epoch, model):
        conv = model.conv1.weight
        layouts.append(conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous())
        weights.append(conv.dtype)
        if epoch == 1 and not recipe.compile:  # the dtype of conv1's output in the later epochs' steps
            model.conv1.register_forward_hook(lambda module, args, out: outputs.append((module.training, out.dtype)))

    whole = _train(data, tmp_path / "whole.pt", recipe=recipe, on_epoch_end=inspect)
    losses = [h["loss"] for h in whole.history]
    assert losses[-1] < losses[0], losses  # it trains
    assert weights == [torch.float32] * 3  # weights stay float32 under every option
    assert layouts == [option.get("channels_last", False)] * 3
    assert bool(cheap_compile) == option.get("compile", False)  # the steps ran through torch.compile
    recorded = torch.load(tmp_path / "whole.pt", weights_only=True)["fingerprint"]["recipe"]
    assert {k: recorded[k] for k in OPTION_KEYS} == recipe.options() == {**CifarRecipe().options(), **option}

    # bf16 autocast reaches the training steps and not the validation pass.
    if not recipe.compile:
        step = torch.bfloat16 if option.get("precision") == "bf16" else torch.float32
        assert set(outputs) == {(True, step), (False, torch.float32)}

    # A killed run resumes after its last epoch and ends where the uninterrupted one ended (bitwise on the CPU).
    state_file = tmp_path / "resumed.pt"

    def kill_after_second(epoch, model):
        if epoch == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        _train(data, state_file, recipe=recipe, on_epoch_end=kill_after_second)
    resumed = _train(data, state_file, recipe=recipe)
    assert resumed.resumed_from == 2 and [h["epoch"] for h in resumed.history] == [1, 2, 3]
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in (*whole.history, *resumed.history)]
    assert strip[:3] == strip[3:]
    _assert_same_state(resumed.best_state, whole.best_state)

    # Resumed under the default instead: refused, naming the key, both values and the fix; the file stays.
    with pytest.raises(ResumeOptionError) as error:
        _train(data, state_file, recipe=CifarRecipe(**{**recipe.fingerprint(), **CifarRecipe().options()}))
    (key, value), = option.items()
    message = str(error.value)
    default = str(getattr(CifarRecipe(), key)).lower()
    assert f"cifar_training.{key}: {str(value).lower()}" in message and f"cifar_training.{key}: {default}" in message
    assert str(state_file) in message and "delete" in message
    assert state_file.exists()


def test_a_resume_state_without_the_option_keys_resumes_under_the_defaults(tmp_path, cifar10_dir, one_thread):
    """A state without the option keys was trained as the defaults train: it resumes under them."""
    data = load_cifar(cifar10_dir, "cifar10", RECIPE, verify_checksums=False)
    state_file = tmp_path / "state.pt"
    with pytest.raises(Interrupted):
        _train(data, state_file, on_epoch_end=lambda epoch, model: (_ for _ in ()).throw(Interrupted()))
    state = torch.load(state_file, weights_only=True)
    for key in OPTION_KEYS:
        del state["fingerprint"]["recipe"][key]
    torch.save(state, state_file)
    assert _train(data, state_file).resumed_from == 1
    with pytest.raises(ResumeOptionError, match="cifar_training.precision: fp32"):
        _train(data, state_file, recipe=CifarRecipe(**{**RECIPE.fingerprint(), "precision": "bf16"}))


def test_an_unknown_precision_is_refused_naming_the_key():
    with pytest.raises(ValueError, match="cifar_training.precision must be one of fp32, bf16"):
        CifarRecipe(precision="fp16")
