"""The paper's recipe for the normal CIFAR counterparts (docs/method.md §1), with checkpoint/resume.

Recipe: SGD with Nesterov momentum 0.9, lr 0.01, weight decay 0.01, batch 256, 125 epochs,
lr x0.1 every 30 epochs (``StepLR``, stepped per epoch), fp32 (no mixed precision),
RandomCrop(32, padding=4) + horizontal flip, inputs in [0, 1] without normalisation; the
checkpoint with the best validation accuracy is kept.

Options that keep the recipe (:data:`OPTION_KEYS`, default off): ``precision: bf16`` (the
forward pass and loss of each training step under bfloat16 autocast; weights, optimizer and
validation in float32), ``channels_last`` (weights and batches in channels-last layout) and
``compile`` (the training steps run through ``torch.compile`` of the model). With the
defaults the step is the recipe's alone: no autocast, no layout change, no compilation. Each is part of the resume fingerprint; a
resume file that differs from the run in these keys alone is refused with the key and the fix
(:class:`ResumeOptionError`) rather than discarded, since it may hold days of progress.

Data: torchvision's CIFAR-10/100 folders (``cifar-10-batches-py``, ``cifar-100-python``)
under ``data_dir``, read once with ``torchvision.datasets.CIFAR10/100`` into a uint8 tensor
that lives on the training device. Batches are drawn and augmented there (the crop and flip
are the same as torchvision's ``RandomCrop(32, padding=4)`` and ``RandomHorizontalFlip`` on
the images: zero padding, a uniform offset, a flip with probability 1/2), so no DataLoader
workers are needed and a GPU is never starved by PIL.

Validation: by default the CIFAR test set, as the authors' "best validation accuracy" (they
describe no held-out split); ``validation.split: holdout`` holds out a seeded random part of
the training set instead.

Resume: after every epoch the whole training state (model, optimizer, scheduler, completed
epochs, best weights and accuracy, history) is written atomically to a resume file beside
the output. A restarted job resumes after the last completed epoch. All randomness of an
epoch (batch order, crops, flips, and torch's global generator for dropout-like layers) is
seeded from (seed, epoch), so the RNG state at an epoch boundary is a function of the seed
and the epoch alone: an interrupted and resumed run ends with the same weights as an
uninterrupted one (bitwise on CPU, where deterministic algorithms are enforced).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from filterlens.config.validation import schema_defaults
from filterlens.io.atomic import atomic_output
from filterlens.train.batches import batched_accuracy, random_crop, random_flip, sgd_step, to_float

STATE_FORMAT = "filterlens-train-state"
STATE_VERSION = 1
# Options of the recipe that change its speed or numerics, not what it trains (schema: cifar_training).
OPTION_KEYS = ("precision", "channels_last", "compile")

# torchvision's folder and files of each dataset (torchvision.datasets.CIFAR10/100).
CIFAR_FILES = {
    "cifar10": ("cifar-10-batches-py",
                [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"],
                "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    "cifar100": ("cifar-100-python", ["train", "test", "meta"],
                 "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"),
}


class CifarDataError(RuntimeError):
    """The CIFAR data is missing or corrupt; the message names the folder and the fix."""


class ResumeOptionError(RuntimeError):
    """A resume file written with other options (:data:`OPTION_KEYS`); the message names the key and the fix."""


def _flat(section: dict[str, Any]) -> dict[str, Any]:
    """A ``cifar_training`` section with ``validation.<key>`` as ``validation_<key>``."""
    flat = {k: v for k, v in section.items() if k != "validation"}
    flat |= {f"validation_{k}": v for k, v in (section.get("validation") or {}).items()}
    return flat


_DEFAULTS = _flat(schema_defaults("cifar_training"))  # the packaged schema's: the paper's recipe
# cifar_training.precision: the dtype of the autocast of each training step's forward pass and loss.
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class CifarRecipe:
    """The training recipe (config key ``cifar_training``); the defaults are the schema's, the paper's
    recipe (src/filterlens/config/schemas/config.schema.yaml holds them and describes each)."""

    seed: int = _DEFAULTS["seed"]
    epochs: int = _DEFAULTS["epochs"]
    batch_size: int = _DEFAULTS["batch_size"]
    lr: float = _DEFAULTS["lr"]
    momentum: float = _DEFAULTS["momentum"]
    nesterov: bool = _DEFAULTS["nesterov"]
    weight_decay: float = _DEFAULTS["weight_decay"]
    lr_step_epochs: int = _DEFAULTS["lr_step_epochs"]
    lr_gamma: float = _DEFAULTS["lr_gamma"]
    crop_padding: int = _DEFAULTS["crop_padding"]
    horizontal_flip: bool = _DEFAULTS["horizontal_flip"]
    validation_split: str = _DEFAULTS["validation_split"]  # "test": the CIFAR test set; "holdout": part of train
    validation_size: int = _DEFAULTS["validation_size"]  # holdout only
    validation_seed: int = _DEFAULTS["validation_seed"]  # holdout only
    eval_batch_size: int = _DEFAULTS["eval_batch_size"]
    # Tests and smoke runs only: at most this many batches per epoch / images per split.
    max_steps_per_epoch: int | None = _DEFAULTS["max_steps_per_epoch"]
    limit: int | None = _DEFAULTS["limit"]
    precision: str = _DEFAULTS["precision"]  # "fp32" (the authors') or "bf16" (autocast of forward and loss)
    channels_last: bool = _DEFAULTS["channels_last"]
    compile: bool = _DEFAULTS["compile"]

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"cifar_training.precision must be one of {', '.join(PRECISIONS)}, not "
                             f"{self.precision!r}")

    def options(self) -> dict[str, Any]:
        """The options of :data:`OPTION_KEYS` and their values (what a checkpoint records of them)."""
        return {key: getattr(self, key) for key in OPTION_KEYS}

    def fingerprint(self) -> dict[str, Any]:
        """What a resume file must match to be resumed (everything that changes the result)."""
        return dataclasses.asdict(self)


def recipe_from_config(section: dict[str, Any]) -> CifarRecipe:
    """A recipe from the config's ``cifar_training`` section (data keys are not part of it)."""
    return CifarRecipe(**{k: v for k, v in _flat(section).items() if k in CifarRecipe.__dataclass_fields__})


# --- data -----------------------------------------------------------------------------------

@dataclass
class CifarData:
    x_train: torch.Tensor  # (n, 3, 32, 32) uint8
    y_train: torch.Tensor  # (n,) int64
    x_val: torch.Tensor
    y_val: torch.Tensor
    num_classes: int
    validation: str  # what the validation set is, in words


def missing_files(data_dir: str | os.PathLike, dataset: str) -> list[Path]:
    folder, files, _ = CIFAR_FILES[dataset]
    return [Path(data_dir) / folder / f for f in files if not (Path(data_dir) / folder / f).is_file()]


def _missing_message(data_dir: str | os.PathLike, dataset: str, missing: list[Path]) -> str:
    folder, _, url = CIFAR_FILES[dataset]
    root = Path(data_dir)
    return (
        f"{dataset} not found: torchvision's folder {root / folder} lacks "
        f"{', '.join(p.name for p in missing)}. Fix: download {url} and unpack it into {root} "
        f"(`tar xzf {url.rsplit('/', 1)[1]} -C {root}`, which creates {folder}/), or set "
        f"cifar_training.data_dir to the folder that holds {folder}/, or set "
        f"cifar_training.download: true to let torchvision download it (needs network)."
    )


def torchvision_class(dataset: str, verify_checksums: bool = True) -> type:
    """torchvision's CIFAR10/100 class; without checksum verification, a subclass that only
    checks that the files exist.

    With ``download=False`` torchvision still verifies the md5 of every batch file and of
    the meta file (``_check_integrity`` and ``_load_meta`` call ``check_integrity(path,
    md5)``), which a re-packed copy or a test fixture cannot pass. ``check_integrity`` with
    ``md5=None`` only checks that the file exists, so the subclass sets every md5 to None.
    """
    from torchvision.datasets import CIFAR10, CIFAR100

    base = {"cifar10": CIFAR10, "cifar100": CIFAR100}[dataset]
    if verify_checksums:
        return base
    return type(f"Unverified{base.__name__}", (base,), {
        "train_list": [[name, None] for name, _ in base.train_list],
        "test_list": [[name, None] for name, _ in base.test_list],
        "meta": {**base.meta, "md5": None},
    })


def _read_split(cls: type, data_dir: str | os.PathLike, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    data = cls(root=str(data_dir), train=train, download=download)
    x = torch.from_numpy(np.ascontiguousarray(data.data.transpose(0, 3, 1, 2)))  # NHWC -> NCHW
    return x, torch.tensor(data.targets, dtype=torch.int64)


def load_cifar(data_dir: str | os.PathLike, dataset: str, recipe: CifarRecipe, download: bool = False,
               verify_checksums: bool = True) -> CifarData:
    """The training and validation images of ``dataset`` (cifar10 or cifar100) as uint8 tensors."""
    if dataset not in CIFAR_FILES:
        raise ValueError(f"train_cifar trains on cifar10 or cifar100, not {dataset!r}")
    if not download and (missing := missing_files(data_dir, dataset)):
        raise CifarDataError(_missing_message(data_dir, dataset, missing))
    if download:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
    cls = torchvision_class(dataset, verify_checksums)
    try:
        x_train, y_train = _read_split(cls, data_dir, True, download)
        x_test, y_test = _read_split(cls, data_dir, False, False)
    except RuntimeError as error:  # torchvision: "Dataset not found or corrupted"
        folder = Path(data_dir) / CIFAR_FILES[dataset][0]
        raise CifarDataError(
            f"{dataset} in {folder} cannot be read: {error} (an md5 mismatch: a truncated or re-packed "
            f"copy). Fix: delete {folder} and unpack the original archive again, or set "
            f"cifar_training.verify_checksums: false for a copy you trust."
        ) from error
    num_classes = 10 if dataset == "cifar10" else 100
    if recipe.validation_split == "test":
        x_val, y_val = x_test, y_test
        validation = f"the {dataset} test set"
    elif recipe.validation_split == "holdout":
        if not 0 < recipe.validation_size < len(x_train):
            raise ValueError(f"cifar_training.validation.size must be in (0, {len(x_train)}), "
                             f"not {recipe.validation_size}")
        order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(recipe.validation_seed))
        held, kept = order[:recipe.validation_size].sort().values, order[recipe.validation_size:].sort().values
        x_val, y_val, x_train, y_train = x_train[held], y_train[held], x_train[kept], y_train[kept]
        validation = (f"{recipe.validation_size} {dataset} training images held out "
                      f"(seed {recipe.validation_seed})")
    else:
        raise ValueError(f"cifar_training.validation.split must be 'test' or 'holdout', not {recipe.validation_split!r}")
    if recipe.limit is not None:
        x_train, y_train, x_val, y_val = (t[:recipe.limit] for t in (x_train, y_train, x_val, y_val))
        validation += f" (first {len(x_val)} images: limit {recipe.limit})"
    return CifarData(x_train, y_train, x_val, y_val, num_classes, validation)


def load_test_split(path: str | os.PathLike, dataset: str,
                    verify_checksums: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The test images (n, 3, 32, 32) uint8 and labels (n,) int64 of ``dataset`` from its
    test file (:func:`filterlens.config.datasets.cifar_test_path`), read as torchvision reads it (a pickled dict with
    ``data`` (n, 3072) channel-major and ``labels``, or ``fine_labels`` for cifar100). With
    ``verify_checksums`` its md5 must be torchvision's (the original archive). Only the test
    file is needed, not the training batches torchvision's own class insists on."""
    import pickle

    from torchvision.datasets import CIFAR10, CIFAR100
    from torchvision.datasets.utils import check_integrity

    path = Path(path)
    if not path.is_file():
        folder, _, url = CIFAR_FILES[dataset]
        raise CifarDataError(f"{dataset} test set not found: {path} is missing. Fix: unpack {url} into the folder "
                             f"that holds {folder}/ and set cifar_training.data_dir to it.")
    md5 = {"cifar10": CIFAR10, "cifar100": CIFAR100}[dataset].test_list[0][1]
    if verify_checksums and not check_integrity(str(path), md5):
        raise CifarDataError(f"{path} does not have torchvision's md5 {md5} (a truncated or re-packed copy). Fix: "
                             f"unpack the original archive again, or set cifar_training.verify_checksums: false "
                             f"for a copy you trust.")
    with open(path, "rb") as handle:
        entry = pickle.load(handle, encoding="latin1")
    labels = entry["labels"] if "labels" in entry else entry["fine_labels"]
    x = torch.from_numpy(np.ascontiguousarray(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)))
    return x, torch.tensor(labels, dtype=torch.int64)


# --- training -------------------------------------------------------------------------------

def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of all randomness of one epoch (0-based), a function of (seed, epoch) alone."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0] >> 1)


def augment(x: torch.Tensor, generator: torch.Generator, padding: int = 4, flip: bool = True) -> torch.Tensor:
    """RandomCrop(size, padding) with zero fill (none for padding 0), then a horizontal flip with
    probability 1/2; offsets and flips are drawn on the CPU from ``generator``."""
    if padding:
        x = random_crop(x, generator, padding)
    return random_flip(x, generator) if flip else x


def evaluate_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Clean accuracy in percent of uint8 images, in eval mode, without augmentation."""
    return batched_accuracy(model, x, y, batch_size, inputs=lambda xb, _: to_float(xb))


def make_optimizer(model: nn.Module, recipe: CifarRecipe) -> tuple[torch.optim.Optimizer, Any]:
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay, nesterov=recipe.nesterov)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=recipe.lr_step_epochs, gamma=recipe.lr_gamma)
    return optimizer, scheduler


def prepare_model(model: nn.Module, recipe: CifarRecipe, device: torch.device) -> nn.Module:
    """``model`` moved to ``device`` (in channels-last layout with ``recipe.channels_last``), and the
    module the training steps call: ``torch.compile(model)`` with ``recipe.compile``, else the
    model itself, which validates and holds the weights that are saved either way. The steps'
    batches go in channels-last layout too, and with ``recipe.precision`` bf16 the steps run
    :func:`filterlens.train.batches.sgd_step` with ``autocast=PRECISIONS[recipe.precision]``."""
    model.to(device)
    if recipe.channels_last:
        model.to(memory_format=torch.channels_last)
    return torch.compile(model) if recipe.compile else model


def resume_path(output: str | os.PathLike) -> Path:
    """The resume file of an output: ``data/models/.{model}.train_state.pt`` beside it."""
    output = Path(output)
    return output.with_name(f".{output.stem}.train_state.pt")


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _load_resume(path: Path, fingerprint: dict[str, Any], device: torch.device,
                 log: Callable[[str], None]) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # noqa: BLE001  (a damaged resume file only costs the progress)
        log(f"resume file {path} cannot be read ({error}); training from scratch")
        return None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT or state.get("version") != STATE_VERSION:
        log(f"resume file {path} is not a filterlens training state; training from scratch")
        return None
    stored = _with_default_options(state["fingerprint"])
    if stored != fingerprint:
        changed = sorted(k for k in set(fingerprint) | set(stored) if fingerprint.get(k) != stored.get(k))
        if changed == ["recipe"]:
            old, new = stored["recipe"], fingerprint["recipe"]
            keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            if set(keys) <= set(OPTION_KEYS):
                raise ResumeOptionError("; ".join(
                    f"resume file {path} was written with cifar_training.{k}: {_yaml(old.get(k))}, but this run "
                    f"has cifar_training.{k}: {_yaml(new.get(k))}. Fix: set cifar_training.{k}: {_yaml(old.get(k))} "
                    f"in the config to resume it, or delete {path} to train from scratch with {_yaml(new.get(k))}"
                    for k in keys))
            changed = [f"recipe.{k}" for k in keys]
        log(f"resume file {path} was made with other settings ({', '.join(changed)}); training from scratch")
        return None
    return state


def _yaml(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) or value is None else str(value)


def _with_default_options(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """A stored fingerprint with the options it lacks at their defaults: a resume file without them
    was written by a run whose step was the defaults' step."""
    if not isinstance(fingerprint.get("recipe"), dict):
        return fingerprint
    defaults = {key: getattr(CifarRecipe, key) for key in OPTION_KEYS}
    return {**fingerprint, "recipe": {**defaults, **fingerprint["recipe"]}}


@dataclass
class TrainResult:
    best_state: dict[str, torch.Tensor]
    best_epoch: int  # 1-based
    best_val_acc: float
    history: list[dict[str, Any]]
    resumed_from: int  # completed epochs found in the resume file (0: from scratch)


def train_cifar(model: nn.Module, data: CifarData, recipe: CifarRecipe, state_file: str | os.PathLike,
                device: str | torch.device = "cpu", fingerprint_extra: dict[str, Any] | None = None,
                log: Callable[[str], None] = print,
                on_epoch_end: Callable[[int, nn.Module], None] | None = None) -> TrainResult:
    """Train ``model`` (freshly initialised) with ``recipe``, resuming from ``state_file``.

    ``state_file`` is written after every epoch and left in place; the caller deletes it once
    the output is safely written. A ``state_file`` written with other options (``recipe.precision``,
    ``channels_last``, ``compile``) raises :class:`ResumeOptionError`. ``fingerprint_extra`` (the model's id, architecture, ...)
    must match too for a resume. ``on_epoch_end(epoch, model)`` is called after the state file
    of epoch ``epoch`` (1-based) is written (tests use it to interrupt a run).
    """
    # One function on purpose: resume, the epochs and the state file share the model, the optimizer,
    # the scheduler and the random state, and their order is what makes a resume bitwise.
    device = torch.device(device)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    else:  # GPU: fast cuDNN kernels; runs agree to floating-point noise, not bitwise
        torch.backends.cudnn.benchmark = True
    step_model = prepare_model(model, recipe, device)
    optimizer, scheduler = make_optimizer(model, recipe)
    autocast = PRECISIONS[recipe.precision]
    fingerprint = {"recipe": recipe.fingerprint(), "model": fingerprint_extra or {},
                   "n_train": len(data.x_train), "n_val": len(data.x_val)}
    state_file = Path(state_file)
    start, history = 0, []
    best = {"epoch": 0, "val_acc": -1.0, "state_dict": _cpu_state(model)}
    if (state := _load_resume(state_file, fingerprint, device, log)) is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, history, best = state["epoch"], list(state["history"]), state["best"]
        best["state_dict"] = {k: v.cpu() for k, v in best["state_dict"].items()}
        log(f"resuming after epoch {start}/{recipe.epochs} from {state_file} "
            f"(best validation accuracy so far {best['val_acc']:.2f}% at epoch {best['epoch']})")
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    x_val, y_val = data.x_val.to(device), data.y_val.to(device)
    n = len(x_train)
    for epoch in range(start, recipe.epochs):
        began = time.perf_counter()
        seed = epoch_seed(recipe.seed, epoch)
        torch.manual_seed(seed)  # torch's global generators (CPU and CUDA): dropout and the like
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(n, generator=generator).to(device)
        batches = [order[i:i + recipe.batch_size] for i in range(0, n, recipe.batch_size)]
        if len(batches) > 1 and len(batches[-1]) == 1:
            batches.pop()  # BatchNorm cannot train on a batch of one
        if recipe.max_steps_per_epoch is not None:
            batches = batches[:recipe.max_steps_per_epoch]
        lr = optimizer.param_groups[0]["lr"]
        model.train()
        total_loss = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        seen = 0
        for index in batches:
            xb = to_float(augment(x_train[index], generator, recipe.crop_padding, recipe.horizontal_flip))
            if recipe.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            yb = y_train[index]
            logits, loss = sgd_step(step_model, optimizer, xb, yb, autocast)
            total_loss += loss.detach() * len(index)
            correct += (logits.argmax(1) == yb).sum()
            seen += len(index)
        scheduler.step()
        val_acc = evaluate_accuracy(model, x_val, y_val, recipe.eval_batch_size)
        row = {"epoch": epoch + 1, "lr": lr, "loss": total_loss.item() / seen,
               "train_acc": 100.0 * correct.item() / seen, "val_acc": val_acc,
               "seconds": round(time.perf_counter() - began, 3)}
        history.append(row)
        if val_acc > best["val_acc"]:
            best = {"epoch": epoch + 1, "val_acc": val_acc, "state_dict": _cpu_state(model)}
        log(f"epoch {epoch + 1}/{recipe.epochs}: lr {lr:.2g}, loss {row['loss']:.4f}, train accuracy "
            f"{row['train_acc']:.2f}%, validation accuracy {val_acc:.2f}% (best {best['val_acc']:.2f}% at epoch "
            f"{best['epoch']}), {row['seconds']:.1f} s")
        with atomic_output(state_file) as temporary:
            torch.save({"format": STATE_FORMAT, "version": STATE_VERSION, "fingerprint": fingerprint,
                        "epoch": epoch + 1, "model": _cpu_state(model), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "best": best, "history": history}, temporary)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, model)
    model.eval()
    return TrainResult(best_state=copy.copy(best["state_dict"]), best_epoch=best["epoch"],
                       best_val_acc=best["val_acc"], history=history, resumed_from=start)
