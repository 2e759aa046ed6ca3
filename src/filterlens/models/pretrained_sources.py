"""Which pretrained sources a sheet may name, checked when the sheet is read (no torch here).

RobustBench entries not served from RobustBench's model directory
    ``robustbench.utils.load_model`` builds fourteen entries of robustbench 1.1.1 otherwise:
    twelve through ``timm.create_model(..., pretrained=True)`` (the nine L-inf XCiT models of
    Debenedetti2022Light on CIFAR-10, CIFAR-100 and ImageNet, and three ImageNet corruptions
    models), whose weights timm fetches from a URL into its own cache, and ImageNet's
    ``Standard_R50`` (L-inf and corruptions), whose constructor fetches torchvision's weights. Their files are never
    under ``acquisition.model_dir``, so the lock file cannot check them, and their constructors
    download again whenever the architecture is built. None is among the paper's 71 models:
    they are refused when the sheet is read. (``tests/workflow/test_acquire.py`` checks this list
    against the installed robustbench.)

timm names that load from anywhere
    ``hf-hub:<repo>`` (or ``hf_hub:``) and ``local-dir:<path>`` make timm read its
    configuration (and weights) from any Hugging Face repository or directory, on every build
    of the architecture. The sheet names timm's own pretrained tags (``resnet50.a1_in1k``),
    whose repositories timm fixes; prefixed names are refused.

The user's own files (source ``local``, architecture ``python``) are checked here too
(filterlens.models.local_sources): they exist, and the constructor file defines its callable.
"""

from __future__ import annotations

from typing import Any, Iterable

from filterlens.models.local_sources import sheet_problems as local_sheet_problems

SERVED_ELSEWHERE: dict[tuple[str, str, str], str] = {
    **{(dataset, "Linf", f"Debenedetti2022Light_XCiT-{size}12"): "timm"
       for dataset in ("cifar10", "cifar100", "imagenet") for size in ("S", "M", "L")},
    ("imagenet", "corruptions", "AlexNet"): "timm",
    ("imagenet", "corruptions", "Tian2022Deeper_DeiT-S"): "timm",
    ("imagenet", "corruptions", "Tian2022Deeper_DeiT-B"): "timm",
    ("imagenet", "Linf", "Standard_R50"): "torchvision",
    ("imagenet", "corruptions", "Standard_R50"): "torchvision",
}

TIMM_PREFIXES = ("hf-hub:", "hf_hub:", "local-dir:")


def served_elsewhere(dataset: str, threat_model: str, key: str) -> str | None:
    """Why RobustBench entry ``dataset/threat_model/key`` cannot be acquired, or None."""
    through = SERVED_ELSEWHERE.get((dataset, threat_model, key))
    if through is None:
        return None
    how = ("timm.create_model(pretrained=True), from a URL into timm's cache" if through == "timm"
           else "its constructor, from torchvision's servers")
    return (f"RobustBench loads this entry through {how}, not from its model directory, so its weights cannot be "
            "checked against the lock file and are fetched again whenever the architecture is built. It is not "
            "one of the paper's models. Fix: remove the row, or take the model's filters from another source")


def timm_name_problem(name: str) -> str | None:
    """Why ``name`` may not be given to timm, or None."""
    if any(str(name).startswith(prefix) for prefix in TIMM_PREFIXES) or "/" in str(name):
        return (f"timm name {name!r} loads its configuration and weights from an arbitrary Hugging Face repository or "
                "directory at every build. Fix: use one of timm's own pretrained tags (timm.list_pretrained(), "
                "e.g. 'resnet50.a1_in1k')")
    return None


def sheet_problems(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Parse-time checks of the sheet's pretrained rows and of the user's own files (dicts with
    model_id, architecture, arch_kwargs as a dict, source, source_key)."""
    rows = list(rows)
    problems = []
    for row in rows:
        kwargs = row.get("arch_kwargs") or {}
        label = f"model {row['model_id']!r}"
        if row.get("architecture") == "robustbench":
            keys = [kwargs.get("key")] + ([row.get("source_key")] if row.get("source") == "robustbench" else [])
            dataset, threat_model = kwargs.get("dataset", ""), kwargs.get("threat_model", "Linf")
            for key in dict.fromkeys(k for k in keys if k):
                if reason := served_elsewhere(dataset, threat_model, key):
                    problems.append(f"{label}: RobustBench {dataset}/{threat_model}/{key}: {reason}")
        if row.get("architecture") == "timm" or row.get("source") == "timm":
            names = [kwargs.get("name")] if row.get("architecture") == "timm" else []
            if row.get("source") == "timm":
                names.append(row.get("source_key"))
            for name in dict.fromkeys(n for n in names if n):
                if problem := timm_name_problem(name):
                    problems.append(f"{label}: {problem}")
    return problems + local_sheet_problems(rows)
