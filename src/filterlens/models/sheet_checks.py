"""Checks of a sheet that need the model libraries: every row's architecture built from its
arguments on the ``meta`` device (no memory, no weights), and its source consistent with it.

:func:`filterlens.config.sheet.read_sheet` checks the text of a sheet without torch; this module
checks that each row can become a model, so that no job fails hours later on an argument the
architecture does not take, a WideResNet depth that is not 6n+4, an activation it does not
know, a RobustBench key that its dataset and threat model do not have, a timm name that
timm does not know, a torchvision name that is not one of its classification models, a
torchvision or timm model that cannot take its dataset's images (a forward on the meta device,
in eval mode), or a user constructor (architecture ``python``) that does not take its
arguments; the last imports the user's file, which runs it (filterlens.models.user_code).
Building every row of a large sheet, with the model libraries' imports, takes long against a
parse of the workflow, so a sheet that passed is remembered (a marker file named by the sheet's
sha256, the user constructor files it names, and the code and library versions that checked it)
and not built again while none changes.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import json
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

import filterlens

from filterlens.config.datasets import DATASETS
from filterlens.io.atomic import atomic_output

# Upper bounds on sizes in arch_kwargs: far above every published model, low enough that a
# typo (an extra digit) fails here instead of allocating a model that cannot fit anywhere.
MAX_DEPTH = 1000
MAX_WIDTH = 64
MAX_BASE_WIDTH = 4096
MAX_BLOCKS = 100
# Modules whose code decides the outcome (with the versions of torch, timm and RobustBench).
# The code whose verdict a marker remembers, relative to the package.
_CODE = ("models/sheet_checks.py", "models/architectures.py", "models/compat.py", "config/architecture_names.py",
         "config/datasets.py", "config/sheet.py", "models/user_code.py", "models/convgraph.py")
_LIBRARIES = ("torch", "timm", "torchvision", "robustbench")
# Keyword arguments of torchvision's builders that download pretrained weights when the model is built.
TORCHVISION_DOWNLOADS = ("weights", "weights_backbone", "pretrained")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_in(kwargs: dict, key: str, low: int, high: int) -> list[str]:
    if key not in kwargs:
        return []
    value = kwargs[key]
    if not _is_int(value) or not low <= value <= high:
        return [f"arch_kwargs {key} is {value!r}; must be an integer in [{low}, {high}]"]
    return []


def _wide_resnet_depth(kwargs: dict) -> list[str]:
    problems = _int_in(kwargs, "depth", 10, MAX_DEPTH)
    if not problems and "depth" in kwargs and (kwargs["depth"] - 4) % 6:
        problems.append(f"arch_kwargs depth is {kwargs['depth']}; a WideResNet's depth is 6n+4 (10, 16, 22, 28, 34, "
                        "40, ...)")
    return problems


def _argument_problems(architecture: str, kwargs: dict[str, Any]) -> list[str]:
    """Arguments the architecture's constructor does not take, or values it would reject."""
    from filterlens.models.architectures import ARCHITECTURES

    parameters = inspect.signature(ARCHITECTURES[architecture]).parameters
    allowed = [p for p in parameters if p != "num_classes"]
    problems = []
    if unknown := [k for k in kwargs if k not in allowed]:
        problems.append(f"arch_kwargs {', '.join(map(repr, unknown))} not argument(s) of {architecture}; "
                        f"allowed: {', '.join(allowed)}")
    if missing := [p for p in allowed if parameters[p].default is inspect.Parameter.empty and p not in kwargs]:
        problems.append(f"arch_kwargs lacks {', '.join(map(repr, missing))}, required by {architecture}")
    if architecture == "wide_resnet":
        problems += _wide_resnet_depth(kwargs) + _int_in(kwargs, "widen_factor", 1, MAX_WIDTH)
    elif architecture == "dm_wide_resnet":
        problems += _wide_resnet_depth(kwargs) + _int_in(kwargs, "width", 1, MAX_WIDTH)
        if "activation" in kwargs and kwargs["activation"] not in ("relu", "swish"):
            problems.append(f"arch_kwargs activation is {kwargs['activation']!r}; allowed: 'relu', 'swish'")
    elif architecture == "preact_resnet":
        problems += _int_in(kwargs, "width", 1, MAX_BASE_WIDTH)
        blocks = kwargs.get("num_blocks", [2, 2, 2, 2])
        if (not isinstance(blocks, list) or len(blocks) != 4
                or not all(_is_int(b) and 1 <= b <= MAX_BLOCKS for b in blocks)):
            problems.append(f"arch_kwargs num_blocks is {blocks!r}; must be 4 integers in [1, {MAX_BLOCKS}]")
    return problems


def _robustbench_problems(row: dict[str, Any]) -> list[str]:
    from filterlens.models.compat import import_robustbench_module

    enums = import_robustbench_module("robustbench.model_zoo.enums")
    BenchmarkDataset, ThreatModel = enums.BenchmarkDataset, enums.ThreatModel

    from filterlens.models.robustbench_zoo import zoo

    kwargs = row["arch_kwargs"]
    dataset, key, threat = kwargs.get("dataset"), kwargs.get("key"), kwargs.get("threat_model", "Linf")
    problems = []
    if dataset != row["dataset"]:
        problems.append(f"arch_kwargs dataset {dataset!r} differs from the row's dataset {row['dataset']!r}")
    known_datasets = [d.value for d in BenchmarkDataset]
    if dataset not in known_datasets:
        return problems + [f"arch_kwargs dataset {dataset!r} is not a RobustBench dataset; allowed: "
                           f"{', '.join(known_datasets)}"]
    if threat not in ThreatModel.__members__:
        return problems + [f"arch_kwargs threat_model {threat!r} is not RobustBench's; allowed: "
                           f"{', '.join(ThreatModel.__members__)}"]
    entries = zoo(dataset, threat)
    if key not in entries:
        close = sorted(k for k in entries if isinstance(key, str) and k.lower().startswith(key.lower()[:8]))[:5]
        problems.append(f"RobustBench has no {dataset}/{threat} model {key!r}"
                        + (f" (similar: {', '.join(close)})" if close else "")
                        + "; fix arch_kwargs key (robustbench.model_zoo.model_dicts lists them)")
    if row["source"] == "robustbench" and row.get("source_key") and row["source_key"] != key:
        problems.append(f"source_key {row['source_key']!r} differs from arch_kwargs key {key!r}: the weights "
                        "would be another model's")
    return problems


def _timm_problems(row: dict[str, Any]) -> list[str]:
    import timm

    name = row["arch_kwargs"].get("name")
    if not isinstance(name, str) or not timm.is_model(name):
        return [f"timm has no model {name!r}; fix arch_kwargs name (timm.list_models() lists them)"]
    key = row.get("source_key") or ""
    if row["source"] != "timm" or not key:
        return []
    if key.split(".", 1)[0] != name:
        return [f"source_key {key!r} is not a pretrained tag of arch_kwargs name {name!r} ({name}.<tag>)"]
    if key not in set(timm.list_pretrained()) and not ("." not in key and timm.list_pretrained(name)):
        return [f"timm has no pretrained weights {key!r}; timm.list_pretrained({name!r}) lists "
                f"{', '.join(timm.list_pretrained(name)[:5]) or 'none'}"]
    return []


def _torchvision_problems(row: dict[str, Any]) -> list[str]:
    import torchvision

    kwargs, info = row["arch_kwargs"], DATASETS[row["dataset"]]
    name = kwargs.get("name")
    known = torchvision.models.list_models(module=torchvision.models)
    if not isinstance(name, str) or name not in known:
        close = difflib.get_close_matches(str(name), known, n=3)
        similar = f" (similar: {', '.join(close)})" if close else ""
        return [f"torchvision has no classification model {name!r}{similar}"
                + ". Fix: set arch_kwargs name to one that torchvision.models.list_models(module=torchvision.models) "
                "lists (resnet18, mobilenet_v2, ...)"]
    problems = []
    if downloads := [key for key in kwargs if key in TORCHVISION_DOWNLOADS]:
        problems.append(f"arch_kwargs {', '.join(map(repr, downloads))} would download torchvision's pretrained "
                        "weights in every job that builds the model. Fix: leave them out of arch_kwargs; for "
                        "pretrained weights, save them once with torch.save(model.state_dict(), path) and name that "
                        "file in source_key with source local")
    if "num_classes" in kwargs and kwargs["num_classes"] != info.num_classes:
        problems.append(f"arch_kwargs num_classes is {kwargs['num_classes']!r}, but the row's dataset {info.name} has "
                        f"{info.num_classes} classes. Fix: set it to {info.num_classes}, or leave it out (the "
                        "dataset's is passed)")
    return problems


def _input_problems(model: Any, row: dict[str, Any]) -> list[str]:
    """Whether ``model`` (on the meta device) takes a batch of its dataset's images: a forward in
    eval mode, shapes only."""
    import torch

    from filterlens.models.convgraph import run_with_pre_hooks

    info = DATASETS[row["dataset"]]
    try:
        run_with_pre_hooks(model, torch.empty(1, 3, info.image_size, info.image_size, device="meta"), {})
    except Exception as error:  # noqa: BLE001 (any failure of the forward is the row's problem)
        return [f"{row['architecture']} {json.dumps(row['arch_kwargs'])} cannot take {info.name}'s "
                f"{info.image_size}x{info.image_size} images ({type(error).__name__}: {error}). Fix: name a model in "
                f"arch_kwargs that takes {info.image_size}x{info.image_size} inputs, or add the arguments that make it "
                "take them (a ViT's image_size)"]
    return []


def row_build_problems(row: dict[str, Any]) -> list[str]:
    """What stops this row from becoming a model (without its label); empty if nothing."""
    from filterlens.models.architectures import build_architecture

    architecture, kwargs, source = row["architecture"], row["arch_kwargs"], row["source"]
    problems = []
    if source == "robustbench" and architecture != "robustbench":
        problems.append(f"source robustbench needs architecture robustbench (RobustBench's own constructor for "
                        f"the key), not {architecture!r}")
    if source == "timm" and architecture != "timm":
        problems.append(f"source timm needs architecture timm (arch_kwargs {{\"name\": ...}}), not {architecture!r}")
    if architecture == "python":
        from filterlens.models.user_code import argument_problems

        problems += argument_problems(kwargs, DATASETS[row["dataset"]].num_classes)
    elif architecture == "torchvision":
        problems += _torchvision_problems(row)
    else:
        problems += _argument_problems(architecture, kwargs)
    if architecture == "robustbench":
        problems += _robustbench_problems(row)
    elif architecture == "timm" and not problems:
        problems += _timm_problems(row)
    if problems:
        return problems
    try:
        model = build_architecture(architecture, kwargs, DATASETS[row["dataset"]].num_classes, device="meta")
    except Exception as error:  # noqa: BLE001 (any failure of the constructor is the row's problem)
        fix = (f". Fix: give arch_kwargs only keyword arguments of torchvision.models.{kwargs['name']} (its "
               "documentation lists them)") if architecture == "torchvision" and isinstance(error, TypeError) else ""
        return [f"{architecture} with arch_kwargs {json.dumps(kwargs)} cannot be built: "
                f"{type(error).__name__}: {error}{fix}"]
    # A library's model may be made for larger images than the dataset's (ViTs, Inception v3).
    return _input_problems(model, row) if architecture in ("torchvision", "timm") else []


def sheet_build_problems(sheet: pd.DataFrame, path: str | os.PathLike) -> list[str]:
    """Every row's problems, each naming the sheet, the line or model, and the fix; rows that
    ask for the same model are built once."""
    problems: list[str] = []
    seen: dict[str, list[str]] = {}
    for row in sheet.to_dict("records"):
        identity = json.dumps([row["architecture"], row["arch_kwargs"], row["dataset"], row["source"],
                               row.get("source_key")], sort_keys=True, default=str)
        if identity not in seen:
            seen[identity] = row_build_problems(row)
        for problem in seen[identity]:
            problems.append(f"{path} (model_id {row['model_id']!r}): {problem}")
    return problems


# --- remembering a sheet that passed -------------------------------------------------------

def fingerprint(sheet_path: str | os.PathLike, user_files: list[Path] = ()) -> str:
    """sha256 of the sheet's bytes, the user constructor files it names, the checking code and
    the model libraries' versions."""
    digest = hashlib.sha256(Path(sheet_path).read_bytes())
    for path in user_files:
        digest.update(str(path).encode() + b"\0" + (path.read_bytes() if path.is_file() else b"(absent)"))
    here = Path(filterlens.__file__).resolve().parent
    for name in _CODE:
        digest.update(name.encode() + b"\0" + (here / name).read_bytes())
    for library in _LIBRARIES:
        try:
            version = metadata.version(library)
        except metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{library}={version}".encode())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def check_sheet_builds(sheet: pd.DataFrame, path: str | os.PathLike, cache_dir: str | os.PathLike) -> list[str]:
    """The problems of :func:`sheet_build_problems`, or none if this sheet passed before with
    this code (its marker in ``cache_dir``); a sheet that passes gets its marker."""
    marker = Path(cache_dir) / f"{fingerprint(path, _constructor_files(sheet))}.json"
    if marker.is_file():
        return []
    problems = sheet_build_problems(sheet, path)
    if not problems:
        _remember(marker, {"sheet": str(path), "models": len(sheet)})
    return problems


def _constructor_files(sheet: pd.DataFrame) -> list[Path]:
    from filterlens.models.user_code import constructor_file

    files = [constructor_file(row.arch_kwargs) for row in sheet.itertuples() if row.architecture == "python"]
    return sorted({f for f in files if f is not None})


def _remember(marker: Path, facts: dict) -> None:
    try:
        with atomic_output(marker, shared=True) as temporary:
            temporary.write_text(json.dumps(facts))
    except OSError:
        pass  # a read-only working directory: the sheet is checked again next time
