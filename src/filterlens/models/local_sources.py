"""Parse-time checks of the user's own files that a sheet names (no torch, nothing imported).

Source ``local``
    ``source_key`` is a state dict file: ``torch.save`` of a dict of tensors (``.pt``, ``.pth``,
    ``.bin``; read with ``weights_only=True``, so nothing in it runs) or a ``.safetensors``
    file. The row's ``architecture`` and ``arch_kwargs`` build the model it fits
    (filterlens.acquire.local turns the two into the checkpoint contract).
Architecture ``python``
    ``arch_kwargs`` ``constructor`` names ``file.py:callable`` in the user's own file; here the
    file is only parsed, not run (filterlens.models.user_code).

Relative paths are relative to the working directory, where snakemake runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from filterlens.io.paths import regular_file_problem
from filterlens.models.user_code import constructor_file, constructor_problem

WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


def weights_file_problem(source_key: Any) -> str | None:
    """Why ``source_key`` of a ``local`` row is not a weight file to read, or None."""
    if not source_key:
        return ("source local needs source_key: the path of the state dict file (.pt, .pth, .bin or "
                ".safetensors). Fix: set source_key")
    path = Path(source_key)
    if path.suffix not in WEIGHT_SUFFIXES:
        return (f"source_key {source_key!r} is not a state dict file of a known kind; allowed: "
                f"{', '.join(WEIGHT_SUFFIXES)} (torch.save of a dict of tensors, or safetensors)")
    if problem := regular_file_problem(path):
        base = "" if path.is_absolute() else f" (relative to the working directory {os.getcwd()})"
        return (f"the weights file {source_key}{base} {problem}. Fix: correct source_key, or run "
                "snakemake in the directory the path is relative to")
    return None


def sheet_problems(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Every ``local`` row's weights file and every ``python`` row's constructor file checked
    (rows: dicts with model_id, architecture, arch_kwargs as a dict, source, source_key)."""
    problems = []
    for row in rows:
        label = f"model {row['model_id']!r}"
        if row.get("source") == "local" and (problem := weights_file_problem(row.get("source_key"))):
            problems.append(f"{label}: {problem}")
        if row.get("architecture") == "python" and (problem := constructor_problem(row.get("arch_kwargs") or {})):
            problems.append(f"{label}: {problem}")
    return problems


def own_files(row: dict[str, Any]) -> dict[str, str]:
    """The user's files a sheet row names, by role: ``weights`` (source local) and
    ``constructor`` (architecture python); empty for a row that names none."""
    files = {}
    if row.get("source") == "local" and row.get("source_key"):
        files["weights"] = str(row["source_key"])
    if row.get("architecture") == "python" and (code := constructor_file(row.get("arch_kwargs") or {})):
        files["constructor"] = str(code)
    return files
