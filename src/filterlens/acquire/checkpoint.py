"""The checkpoint contract: one file per model under data/models/, whatever its source.

A checkpoint is a ``torch.save`` dict of plain types and tensors::

    format, format_version      "filterlens-checkpoint", 1
    model_id, dataset, num_classes
    architecture, arch_kwargs   a name of filterlens.models.architectures and its keyword arguments
    normalization               {"mean": [...], "std": [...]} applied before the model, or None
    source                      where the weights came from (minizoo, robustbench, timm, ...)
    state_dict                  the architecture's weights
    extra                       source-specific facts (training history, download URL, ...)

Downstream code calls :func:`load_checkpoint` and :func:`build_model`; it never needs to know
the source.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from filterlens.acquire.errors import AcquisitionError
from filterlens.acquire.failed_downloads import failed_download_problem
from filterlens.io.archives import stored_zip_problem
from filterlens.io.atomic import atomic_output
from filterlens.models.architectures import build_architecture, build_with_weights

FORMAT = "filterlens-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the fix."""


@dataclass
class Checkpoint:
    model_id: str
    dataset: str
    num_classes: int
    architecture: str
    arch_kwargs: dict[str, Any]
    normalization: dict[str, list[float]] | None
    source: str
    state_dict: dict[str, torch.Tensor]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **self.__dict__}


def save_checkpoint(checkpoint: Checkpoint, path: str | os.PathLike) -> None:
    with atomic_output(path) as temporary:
        torch.save(checkpoint.to_dict(), temporary)


def usable_tensors(state_dict: dict[str, torch.Tensor], expected: dict[str, torch.Tensor],
                   what: str, fix: str | None = None) -> dict[str, torch.Tensor]:
    """The tensors as the analysis needs them: a floating tensor where the model holds one
    (half precision cast to the model's dtype, integers and booleans refused), every value
    finite, and BatchNorm variances that a fold can take (not negative). Raises
    :class:`CheckpointError` naming the keys and the fix."""
    usable, wrong_dtype, not_finite, negative_var = {}, [], [], []
    for key, tensor in state_dict.items():
        model_dtype = expected[key].dtype if key in expected else tensor.dtype
        if model_dtype.is_floating_point:
            if not tensor.dtype.is_floating_point:
                wrong_dtype.append(f"{key} ({str(tensor.dtype).removeprefix('torch.')})")
                continue
            tensor = tensor.to(model_dtype)
            if not bool(torch.isfinite(tensor).all()):
                not_finite.append(key)
            elif key.endswith("running_var") and bool((tensor < 0).any()):
                negative_var.append(key)
        usable[key] = tensor
    problems = []
    if wrong_dtype:
        problems.append(f"tensors of a non-floating dtype where the model holds floating ones: "
                        f"{', '.join(wrong_dtype[:5])}. Fix: save the weights in float32 (or float16/bfloat16, "
                        "which are cast); quantised weights are not analysed")
    if not_finite:
        problems.append(f"NaN or infinite values in {', '.join(not_finite[:5])}. Fix: save the weights of a "
                        "finished training run, not of one that diverged")
    if negative_var:
        problems.append(f"negative BatchNorm variances in {', '.join(negative_var[:5])}, which no fold can take. "
                        "Fix: save the model's state_dict() as it trained")
    if problems:
        if fix:  # one fix for every problem: the weights are not the user's to save again
            problems = [problem.split(". Fix:")[0] for problem in problems] + [f"Fix: {fix}"]
        raise CheckpointError(f"{what}: " + "; ".join(problems))
    return usable


def load_checkpoint(path: str | os.PathLike, model_id: str | None = None, dataset: str | None = None,
                    fix: str | None = None) -> Checkpoint:
    """The checkpoint at ``path``; with ``model_id`` / ``dataset`` (the sheet row's), one that
    holds another model or dataset raises :class:`CheckpointError` naming the file, the field
    and the fix.

    ``fix`` is the fix named for a file that cannot be used; the default suits the workflow's
    own checkpoints (data/models/), which it makes again. A caller given a file by the user
    (filterlens.analyze) passes one that does not tell the user to delete their file. A plain
    state dict is named as one, with how to give its architecture."""
    path = Path(path)
    fix = fix or f"Fix: delete {path} and acquire the model again."
    try:
        problem = failed_download_problem(path) or stored_zip_problem(path)
    except OSError as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {error}") from error
    if problem:
        raise CheckpointError(f"checkpoint {path} {problem}. {fix}")
    try:
        # Memory-mapped: tensors are paged in from the file as they are used, so a model of
        # 400M parameters is not held twice (file copy and model) by the job that loads it.
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:
        if "Weights only load failed" in str(error):
            detail = next((line for line in str(error).splitlines() if "GLOBAL" in line), "").strip()
            raise CheckpointError(f"checkpoint {path} holds objects other than tensors and plain values; unpickling "
                                  f"them would run code from the file, so it is refused ({detail}). {fix}") from None
        raise CheckpointError(f"checkpoint {path} cannot be loaded (truncated or corrupt?): {error}. {fix}") from error
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        if tensors := state_dict_keys(data):
            raise CheckpointError(plain_state_dict_message(path, tensors))
        raise CheckpointError(f"{path} is not a filterlens checkpoint (no format {FORMAT!r}). {fix}")
    if data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {data.get('format_version')}, expected {FORMAT_VERSION}. {fix}")
    fields = {k: data[k] for k in Checkpoint.__dataclass_fields__ if k in data}
    if missing := [k for k in Checkpoint.__dataclass_fields__ if k not in data and k != "extra"]:
        raise CheckpointError(f"checkpoint {path} lacks field(s) {', '.join(missing)}. {fix}")
    for field_name, expected in (("model_id", model_id), ("dataset", dataset)):
        if expected is not None and fields[field_name] != expected:
            raise CheckpointError(
                f"checkpoint {path} holds {field_name} {fields[field_name]!r}, but the sheet's row is {expected!r}: "
                f"the file belongs to another model. Fix: delete {path} and acquire the model again (or, if the sheet "
                f"is wrong, correct its {field_name}).")
    return Checkpoint(**fields)


def state_dict_keys(data: Any) -> list[str]:
    """The tensor names of ``data`` if it is a plain state dict (a dict of tensors, or one under
    ``"state_dict"`` as training scripts save it), else none."""
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if isinstance(data, dict) and data and all(isinstance(v, torch.Tensor) for v in data.values()):
        return [str(k) for k in data]
    return []


def plain_state_dict_message(path: Path, tensors: list[str]) -> str:
    """Why a plain state dict is not enough to analyse, and how to name its architecture."""
    return (f"{path} is a plain state dict ({len(tensors)} tensors: {_preview(tensors, 3)}), not a filterlens "
            "checkpoint: it holds the weights but not the architecture they belong to. Fix: name the architecture: "
            f"filterlens.analyze({str(path)!r}, architecture='timm:resnet18') or `filterlens analyze {path} "
            "--architecture timm:resnet18`, with the model's own architecture (torchvision:NAME, timm:NAME, "
            "robustbench:DATASET/THREAT/KEY, python:FILE.py:FUNCTION); in a run, a sheet row with source local "
            f"and source_key {path}.")


def build_model(checkpoint: Checkpoint, device: str | torch.device = "cpu") -> nn.Module:
    """The checkpoint's architecture with its weights, in eval mode.

    Missing, unexpected or mis-shaped keys and non-finite weights raise :class:`CheckpointError`.
    """
    # Shapes only (no allocation): the checkpoint's own tensors become the weights below.
    model = build_architecture(checkpoint.architecture, checkpoint.arch_kwargs, checkpoint.num_classes, "meta")
    given = checkpoint.state_dict
    if problems := fit_problems(model, given):
        raise CheckpointError(
            f"model {checkpoint.model_id}: the weights do not fit architecture {checkpoint.architecture} "
            f"{checkpoint.arch_kwargs}: {'; '.join(problems)}. Fix: check the sheet's architecture and "
            f"arch_kwargs for this model, or acquire the checkpoint again."
        )
    model.load_state_dict(given, assign=True)
    if _has_meta_tensors(model):
        # A buffer outside the state dict (e.g. DMWideResNet's mean/std constants) needs the
        # real constructor.
        model = build_with_weights(checkpoint.architecture, checkpoint.arch_kwargs, checkpoint.num_classes, given)
    if bad := [k for k, v in given.items() if v.is_floating_point() and not _all_finite(v)]:
        raise CheckpointError(
            f"model {checkpoint.model_id}: weights with NaN or Inf in {_preview(bad)}. "
            "Fix: acquire or train the model again (a diverged training run?)."
        )
    return model.to(device).eval()


def fit_problems(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> list[str]:
    """What keeps ``state_dict`` from loading into ``model`` exactly (none: it fits): missing,
    unexpected and mis-shaped keys, five of each named. ``model`` may be on the meta device."""
    expected = model.state_dict()
    problems = []
    if missing := sorted(set(expected) - set(state_dict)):
        problems.append(f"missing keys {_preview(missing)}")
    if unexpected := sorted(set(state_dict) - set(expected)):
        problems.append(f"unexpected keys {_preview(unexpected)}")
    if misshaped := [f"{k} {tuple(state_dict[k].shape)} != {tuple(expected[k].shape)}"
                     for k in sorted(set(state_dict) & set(expected)) if state_dict[k].shape != expected[k].shape]:
        problems.append(f"mis-shaped tensors {_preview(misshaped)}")
    return problems


def check_fits(state_dict: dict[str, torch.Tensor], architecture: str, arch_kwargs: dict[str, Any],
               num_classes: int, model_id: str) -> None:
    """Raise :class:`AcquisitionError` unless ``state_dict`` fits the architecture exactly."""
    model = build_architecture(architecture, arch_kwargs, num_classes, device="meta")
    if problems := fit_problems(model, state_dict):
        raise AcquisitionError(
            f"{model_id}: the acquired weights do not fit architecture {architecture} {arch_kwargs}: "
            f"{'; '.join(problems)}. Fix: check the sheet's architecture and arch_kwargs.")


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict as plain tensors on the CPU (what a checkpoint stores)."""
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


# The published weights cannot be saved again by the user: what to do when they are unusable.
UNUSABLE_FIX = ("the published weights cannot be analysed as they are; leave the model out of the sheet (and tell "
                "its authors)")


def _all_finite(tensor: torch.Tensor) -> bool:
    """As filterlens.io.arrays.all_finite, for a tensor: one sum settles the usual case."""
    return bool(torch.isfinite(tensor.sum())) or bool(torch.isfinite(tensor).all())


def _has_meta_tensors(model: nn.Module) -> bool:
    return any(t.is_meta for t in (*model.parameters(), *model.buffers()))


def _preview(items: list[str], n: int = 5) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


class Normalize(nn.Module):
    def __init__(self, mean: list[float], std: list[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def classifier(model: nn.Module, checkpoint: Checkpoint) -> nn.Module:
    """A module that takes [0, 1] images: the model behind its input normalisation, if any."""
    if checkpoint.normalization is None:
        return model
    return nn.Sequential(Normalize(**checkpoint.normalization), model).eval()
