"""Source ``local``: the user's own state dict file into the checkpoint contract.

The file is ``torch.save`` of a dict of tensors (read with ``weights_only=True``: unpickling
runs no code from it), optionally with the tensors under ``"state_dict"`` as training scripts
often save them, or a safetensors file. The sheet row's architecture and arch_kwargs (any
architecture: a RobustBench key, a timm name, a mini zoo architecture, or a constructor in the
user's own file) must take it exactly (:func:`filterlens.acquire.checkpoint.check_fits`). The
checkpoint records the file's sha256 (and that of a constructor file) in ``extra``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from filterlens.acquire.checkpoint import Checkpoint, CheckpointError, check_fits, usable_tensors
from filterlens.acquire.failed_downloads import failed_download_problem
from filterlens.config.datasets import dataset_info
from filterlens.io.archives import stored_zip_problem
from filterlens.io.hashing import sha256_of
from filterlens.io.paths import regular_file_problem
from filterlens.models.architectures import build_architecture
from filterlens.models.user_code import constructor_file

LFS_POINTER = b"version https://git-lfs"


def _file_problem(path: Path) -> str | None:
    if problem := regular_file_problem(path):
        return problem
    if problem := failed_download_problem(path):
        return problem
    with open(path, "rb") as handle:
        if handle.read(len(LFS_POINTER)) == LFS_POINTER:
            return "is a Git LFS pointer, not the weights (run 'git lfs pull' where the file comes from)"
    return stored_zip_problem(path)


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a state dict file (see the module docstring); :class:`CheckpointError`
    names the file, what is wrong and the fix."""
    path = Path(path)
    if problem := _file_problem(path):
        raise CheckpointError(f"weights file {path} {problem}. Fix: correct the sheet's source_key.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            data: Any = load_file(str(path), device="cpu")
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        if "Weights only load failed" in str(error):
            raise CheckpointError(
                f"weights file {path} holds objects other than tensors and plain values (a whole pickled model?); "
                f"unpickling them would run code from the file, so it is refused. Fix: save the state dict "
                f"alone, torch.save(model.state_dict(), path), or as safetensors. ({first})") from None
        raise CheckpointError(f"weights file {path} cannot be read (truncated or corrupt?): {first}") from error
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not data:
        raise CheckpointError(f"weights file {path} holds a {type(data).__name__}, not a state dict (a dict of "
                              "tensors by parameter name). Fix: torch.save(model.state_dict(), path).")
    if others := sorted(str(k) for k, v in data.items() if not isinstance(v, torch.Tensor)):
        raise CheckpointError(f"weights file {path}: entries that are not tensors: {', '.join(others[:5])}. Fix: "
                              "save the state dict alone, or put the tensors under 'state_dict'.")
    return {str(k): v.detach().cpu() for k, v in data.items()}


def _normalization(architecture: str, arch_kwargs: dict[str, Any], num_classes: int) -> dict | None:
    """A timm architecture's pretrained mean/std (as acquire_timm records them); every other
    model takes [0, 1] images (RobustBench's normalise inside; a user model must do the same)."""
    model = build_architecture(architecture, arch_kwargs, num_classes, device="meta")
    config = getattr(model, "pretrained_cfg", None) or {}
    if config.get("mean") is None or config.get("std") is None:
        return None
    return {"mean": [float(m) for m in config["mean"]], "std": [float(s) for s in config["std"]]}


def local_checkpoint(row: dict[str, Any], weights: str | os.PathLike) -> Checkpoint:
    """The sheet row's model with the weights of ``weights`` as a checkpoint (source local)."""
    state_dict = read_state_dict(weights)
    architecture, arch_kwargs = row["architecture"], row["arch_kwargs"]
    num_classes = dataset_info(row["dataset"]).num_classes
    check_fits(state_dict, architecture, arch_kwargs, num_classes, row["model_id"])
    expected = build_architecture(architecture, arch_kwargs, num_classes, device="meta").state_dict()
    state_dict = usable_tensors(state_dict, expected, f"{row['model_id']}: weights file {weights}")
    extra: dict[str, Any] = {"file": str(weights), "sha256": sha256_of(weights),
                             "format": "safetensors" if Path(weights).suffix == ".safetensors" else "torch"}
    if architecture == "python":
        code = constructor_file(arch_kwargs)
        extra.update(constructor_file=str(code), constructor_sha256=sha256_of(code))
    return Checkpoint(model_id=row["model_id"], dataset=row["dataset"], num_classes=num_classes,
                      architecture=architecture, arch_kwargs=arch_kwargs,
                      normalization=_normalization(architecture, arch_kwargs, num_classes), source="local",
                      state_dict=state_dict, extra=extra)
