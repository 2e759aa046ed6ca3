"""What produced a run: the resolved config, the sheet's sha256, package versions, the
workflow's git commit, the interpreter and platform, and each checkpoint's sha256.

:func:`run_facts` is cheap (no torch import, one ``git`` call) and runs at parse time: its
result is the ``provenance`` rule's params, so the rule reruns when any of it changes (config,
sheet content, packages, commit, dirty tree) and no other rule depends on it. The job adds
the per-model facts (:func:`model_facts`) and writes JSON, TSV and HTML (:func:`write_provenance`).
"""

from __future__ import annotations

import html
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from filterlens.io.atomic import atomic_output
from filterlens.io.hashing import sha256_of

KEY_PACKAGES = ("torch", "torchvision", "robustbench", "timm", "snakemake", "zarr", "dask", "numpy", "pandas",
                "scipy", "seaborn", "matplotlib")
FORMAT = "filterlens-provenance"
FORMAT_VERSION = 1


def package_versions(names: Iterable[str] = KEY_PACKAGES) -> dict[str, str | None]:
    """Installed distribution versions (importlib.metadata); None for one not installed."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(directory: str | os.PathLike) -> dict[str, Any]:
    """The commit of the checkout holding ``directory`` and whether its tree is dirty (tracked
    changes or untracked files that are not ignored). Outside a git checkout, or without git,
    ``commit`` is None and ``note`` says why."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        changes = git("status", "--porcelain")
    except FileNotFoundError:
        return {"commit": None, "dirty": None, "note": "git is not installed"}
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        reason = (getattr(error, "stderr", "") or "").strip().splitlines()
        return {"commit": None, "dirty": None, "note": f"not a git checkout ({reason[0] if reason else error})"}
    return {"commit": commit, "dirty": bool(changes), "note": ""}


def interpreter() -> dict[str, str]:
    return {"python": platform.python_version(), "implementation": platform.python_implementation(),
            "platform": platform.platform(), "machine": platform.machine(), "executable": sys.executable}


def run_facts(config: dict[str, Any], sheet_path: str | os.PathLike, workflow_dir: str | os.PathLike) -> dict:
    """Everything known at parse time, as plain JSON types (the provenance rule's params)."""
    return {
        "config": json.loads(json.dumps(config, default=str)),
        "sheet": {"path": str(sheet_path), "sha256": sha256_of(sheet_path)},
        # The commit only: whether the tree is dirty is read when the job runs (the provenance
        # script), so editing a file does not make every run plan the provenance job again.
        "workflow": {"directory": str(Path(workflow_dir).resolve()), "commit": git_state(workflow_dir)["commit"]},
        "packages": package_versions(),
        "interpreter": interpreter(),
    }


def model_facts(model_id: str, checkpoint_sha256: str, store_attrs: dict[str, Any] | None,
                own_files: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """One model's checkpoint digest beside the one its filter store recorded at extraction;
    with ``own_files`` (role -> {"file", "sha256"}: the weights and constructor files of your
    own model), ``<role>_file`` and ``<role>_sha256`` too."""
    recorded = (store_attrs or {}).get("checkpoint_sha256")
    own = {f"{role}_{key}": value for role, facts in (own_files or {}).items() for key, value in facts.items()}
    return {
        "model_id": model_id,
        "checkpoint_sha256": checkpoint_sha256,
        "store_checkpoint_sha256": recorded,
        "store_matches_checkpoint": None if recorded is None else recorded == checkpoint_sha256,
        "depth_method": (store_attrs or {}).get("depth_method"),
        "n_filters": (store_attrs or {}).get("n_filters"),
        **own,
    }


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested dicts as (dotted key, JSON value) rows; lists of models stay one row each."""
    if isinstance(value, dict) and value:
        rows = []
        for key, item in value.items():
            rows += flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return rows
    return [(prefix, value if isinstance(value, str) else json.dumps(value))]


def _html(record: dict[str, Any]) -> str:
    def table(rows: list[tuple[str, str]], header=("key", "value")) -> str:
        body = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
        return (f"<table><thead><tr><th>{header[0]}</th><th>{header[1]}</th></tr></thead>"
                f"<tbody>{body}</tbody></table>")

    models = pd.DataFrame(record["models"])
    sections = [
        ("Workflow", flatten(record["workflow"])),
        ("Model sheet", flatten(record["sheet"])),
        ("Packages", flatten(record["packages"])),
        ("Interpreter", flatten(record["interpreter"])),
        ("Config as resolved", flatten(record["config"])),
    ]
    parts = [f"<h2>{html.escape(title)}</h2>{table(rows)}" for title, rows in sections]
    parts.insert(2, "<h2>Checkpoints</h2>" + models.to_html(index=False, na_rep="", border=0, escape=True))
    style = ("body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse;margin-bottom:1em}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>filterlens provenance</title>"
            f"<style>{style}</style></head><body><h1>What produced this run</h1>"
            f"<p>Written {html.escape(record['written_at'])}.</p>{''.join(parts)}</body></html>\n")


def write_provenance(record: dict[str, Any], json_path, tsv_path, html_path) -> None:
    """The record as JSON (complete), a key/value TSV (models one row per field) and HTML."""
    with atomic_output(json_path) as temporary:
        temporary.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
    rows = flatten({k: v for k, v in record.items() if k != "models"})
    for model in record["models"]:
        rows += [(f"models.{model['model_id']}.{k}", v if isinstance(v, str) else json.dumps(v))
                 for k, v in model.items() if k != "model_id"]
    with atomic_output(tsv_path) as temporary:
        pd.DataFrame(rows, columns=["key", "value"]).to_csv(temporary, sep="\t", index=False)
    with atomic_output(html_path) as temporary:
        temporary.write_text(_html(record))
