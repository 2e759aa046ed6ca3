"""A model as a researcher has it at hand, as a module: what ``filterlens.analyze`` and the
``filterlens`` command take besides a ``torch.nn.Module``.

- a filterlens checkpoint (``data/models/<model>.pt``): it names its architecture;
- a plain state dict file (``torch.save(model.state_dict(), path)`` or ``.safetensors``) with
  its architecture;
- a model name with its weights from a file, or seeded random weights.

An architecture is written as a sheet row's (the architecture column and its arch_kwargs,
filterlens.models.architectures) or in short, name and key in one string::

    torchvision:resnet18             torchvision   {"name": "resnet18"}
    timm:resnet50                    timm          {"name": "resnet50"}
    robustbench:cifar10/Linf/Standard robustbench  {"dataset": "cifar10", "threat_model": "Linf", "key": "Standard"}
    python:my_nets.py:build          python        {"constructor": "my_nets.py:build"}
    preact_resnet                    preact_resnet (arch_kwargs as given)

Nothing is downloaded: a name's weights come from a file the user names, or are random with a
seed the user names, so that a result never depends on what a cache happens to hold.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filterlens.config.architecture_names import ARCHITECTURE_NAMES

SHORT_FORMS = "torchvision:NAME, timm:NAME, robustbench:DATASET/THREAT/KEY, python:FILE.py:FUNCTION"
# Classes of a model built without weights, where nothing says otherwise: the ImageNet models'
# for torchvision and timm, CIFAR-10's for the rest. Only the classifier depends on it, never a 3x3 filter.
DEFAULT_CLASSES = {"torchvision": 1000, "timm": 1000}


class ModelSpecError(ValueError):
    """A model that cannot be made from what was given; the message names it and the fix."""


@dataclass(frozen=True)
class Architecture:
    """An architecture as a sheet row names it."""

    name: str
    kwargs: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.name} {self.kwargs}" if self.kwargs else self.name


def parse_architecture(text: str, arch_kwargs: dict[str, Any] | None = None) -> Architecture:
    """``text`` (a short form or a sheet architecture name) and extra keyword arguments as an
    :class:`Architecture`; :class:`ModelSpecError` lists the forms for anything else."""
    kwargs = dict(arch_kwargs or {})
    name, _, rest = text.partition(":")
    if name in ("torchvision", "timm") and rest:
        return Architecture(name, {"name": rest, **kwargs})
    if name == "python" and rest:
        return Architecture(name, {"constructor": rest, **kwargs})
    if name == "robustbench" and rest:
        parts = rest.split("/")
        if len(parts) != 3 or not all(parts):
            raise ModelSpecError(f"architecture {text!r}: a RobustBench model is robustbench:DATASET/THREAT/KEY, "
                                 "e.g. robustbench:cifar10/Linf/Standard")
        return Architecture(name, {"dataset": parts[0], "threat_model": parts[1], "key": parts[2], **kwargs})
    if text in ARCHITECTURE_NAMES and not rest:
        return Architecture(text, kwargs)
    raise ModelSpecError(f"unknown architecture {text!r}. Fix: name it as {SHORT_FORMS}, or as a sheet's architecture "
                         f"({', '.join(ARCHITECTURE_NAMES)}) with its arch_kwargs")


def is_model_name(text: str) -> bool:
    """Whether ``text`` is an architecture's short form (and so a model name, not a file)."""
    name, _, rest = text.partition(":")
    return name in ("torchvision", "timm", "robustbench", "python") and bool(rest)


@dataclass
class ModelSpec:
    """What makes one model: ``model`` (a module, a file or a name) and how to read it."""

    model: Any
    architecture: str | None = None
    arch_kwargs: dict[str, Any] | None = None
    weights: str | os.PathLike | None = None
    random_init: int | None = None
    num_classes: int | None = None


def model_from(spec: ModelSpec):
    """The module of ``spec`` (in eval mode) and what is known of it: ``model_id``, and, for a
    checkpoint or a RobustBench model, ``dataset`` and ``image_size``."""
    from torch import nn

    model = spec.model
    if isinstance(model, nn.Module):
        if spec.architecture or spec.weights or spec.random_init is not None:
            raise ModelSpecError("a torch.nn.Module comes with its architecture and weights: architecture, weights "
                                 "and random_init apply to a file or a model name")
        return model, {}
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"a model is a torch.nn.Module, a file or a model name, not a {type(model).__name__}")
    text = os.fspath(model)
    if is_model_name(text) and not Path(text).exists():
        return _named_model(text, spec)
    if spec.weights is not None or spec.random_init is not None:
        raise ModelSpecError(f"{text} is a file: weights and random_init go with a model name ({SHORT_FORMS})")
    return _model_of_file(Path(text), spec)


def _named_model(name: str, spec: ModelSpec):
    if spec.architecture:
        raise ModelSpecError(f"{name} names its architecture already; architecture goes with a weights file")
    architecture = parse_architecture(name, spec.arch_kwargs)
    if spec.weights is not None:
        return _model_of_file(Path(spec.weights), spec, architecture)
    if spec.random_init is None:
        raise ModelSpecError(
            f"{name}: its weights are not at hand (nothing is downloaded). Fix: pass the file of its weights, "
            f"weights='path.pt' (filterlens analyze {name} --weights path.pt; a state dict saved by torch.save or "
            f".safetensors), or random_init=SEED (--random-init SEED) for seeded random weights")
    from filterlens.models.architectures import build_architecture

    classes = spec.num_classes or DEFAULT_CLASSES.get(architecture.name, 10)
    module = build_architecture(architecture.name, architecture.kwargs, classes, seed=spec.random_init)
    return module.eval(), {"model_id": _name_id(name), **_dataset_facts(architecture)}


def _model_of_file(path: Path, spec: ModelSpec, architecture: Architecture | None = None):
    """A checkpoint, or a plain state dict with its architecture."""
    if not path.is_file():
        raise ModelSpecError(f"{path} does not exist (or is not a file). Fix: give the path of the model's file")
    if architecture is None and spec.architecture:
        architecture = parse_architecture(spec.architecture, spec.arch_kwargs)
    if architecture is None:
        return _checkpoint_model(path)
    from filterlens.acquire.local import read_state_dict

    state_dict = read_state_dict(path)
    return _with_weights(path, architecture, state_dict, spec.num_classes), {
        "model_id": _file_id(path), **_dataset_facts(architecture)}


def _checkpoint_model(path: Path):
    from filterlens.acquire.checkpoint import build_model, load_checkpoint, plain_state_dict_message
    from filterlens.config.datasets import dataset_info

    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            raise ModelSpecError(plain_state_dict_message(path, list(handle.keys())))
    fix = (f"Fix: give a checkpoint of a run (data/models/<model>.pt), or a state dict file with its architecture "
           f"(torch.save(model.state_dict(), {str(path)!r}))")
    checkpoint = load_checkpoint(path, fix=fix)
    return build_model(checkpoint), {"model_id": checkpoint.model_id, "dataset": checkpoint.dataset,
                                     "image_size": dataset_info(checkpoint.dataset).image_size}


def _with_weights(path: Path, architecture: Architecture, state_dict, num_classes: int | None):
    """``architecture`` with the weights of ``state_dict`` (exactly: every key, every shape)."""
    from filterlens.acquire.checkpoint import Checkpoint, build_model, fit_problems
    from filterlens.models.architectures import build_architecture

    classes = num_classes or _classes_of(architecture, state_dict)
    shapes = build_architecture(architecture.name, architecture.kwargs, classes, device="meta")
    if problems := fit_problems(shapes, state_dict):
        raise ModelSpecError(
            f"{path}: the weights do not fit architecture {architecture} with {classes} classes: "
            f"{'; '.join(problems)}. Fix: name the architecture the weights were saved from (with its arch_kwargs, "
            "and num_classes if the classifier's size cannot be read from the weights)")
    checkpoint = Checkpoint(model_id=_file_id(path), dataset="", num_classes=classes, architecture=architecture.name,
                            arch_kwargs=architecture.kwargs, normalization=None, source="local",
                            state_dict=state_dict)
    return build_model(checkpoint)


def _classes_of(architecture: Architecture, state_dict) -> int:
    """The classes of the weights' classifier: the rows of the weight of the architecture's last
    linear layer, when the state dict has it; else the default."""
    from torch import nn

    from filterlens.models.architectures import build_architecture

    default = DEFAULT_CLASSES.get(architecture.name, 10)
    shapes = build_architecture(architecture.name, architecture.kwargs, default, device="meta")
    linear = [name for name, module in shapes.named_modules() if isinstance(module, nn.Linear)]
    weight = state_dict.get(f"{linear[-1]}.weight") if linear else None
    return int(weight.shape[0]) if weight is not None and weight.ndim == 2 else default


def _dataset_facts(architecture: Architecture) -> dict[str, Any]:
    """A RobustBench model's dataset and its image size (the size a model that torch.fx cannot
    trace is run at to find its convolutions)."""
    if architecture.name != "robustbench":
        return {}
    from filterlens.config.datasets import DATASETS

    dataset = architecture.kwargs.get("dataset")
    return {"dataset": dataset, "image_size": DATASETS[dataset].image_size} if dataset in DATASETS else {}


def _file_id(path: Path) -> str:
    return path.name.removesuffix(".safetensors").removesuffix(".pth").removesuffix(".pt")


def _name_id(name: str) -> str:
    return name.replace(":", "_").replace("/", "_")
