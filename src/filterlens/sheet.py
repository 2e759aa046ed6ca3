"""The zoo sheet: a TSV, one row per model, validated row by row (JSON schema) and across rows.

Every problem is collected and reported at once, each naming the row, the column and what is
allowed, so a user fixes the sheet in one pass before any job starts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import yaml

from filterlens.architecture_names import ARCHITECTURE_NAMES

SCHEMA = Path(__file__).resolve().parents[2] / "config" / "schemas" / "models.schema.yaml"
COLUMNS = ["model_id", "dataset", "architecture", "arch_kwargs", "robust", "source", "source_key",
           "counterpart", "clean_acc", "robust_acc"]
OPTIONAL_TEXT = ["source_key", "counterpart"]
OPTIONAL_NUMBERS = ["clean_acc", "robust_acc"]


class SheetError(ValueError):
    """The sheet has problems; the message lists every one with its fix."""


def _cell_to_json(column: str, value: Any) -> Any:
    if column == "robust":
        text = str(value).strip().lower()
        return {"true": True, "false": False}.get(text, value)
    if column in OPTIONAL_NUMBERS:
        if value is None or str(value).strip() == "":
            return None
        try:
            return float(value)
        except ValueError:
            return value  # the schema reports it
    return "" if value is None else str(value)


def read_sheet(path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate ``path``; raise :class:`SheetError` listing every problem."""
    path = Path(path)
    if not path.exists():
        raise SheetError(f"model sheet {path} does not exist. Fix: set 'sheet' in the config to an existing TSV.")
    raw = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment="#")
    problems: list[str] = []
    if unknown := [c for c in raw.columns if c not in COLUMNS]:
        problems.append(f"unknown columns {unknown}; allowed: {COLUMNS}")
    schema = yaml.safe_load(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    records = []
    for line, row in enumerate(raw.to_dict("records"), start=2):  # line 1 is the header
        record = {c: _cell_to_json(c, v) for c, v in row.items() if c in COLUMNS}
        for column in OPTIONAL_TEXT + OPTIONAL_NUMBERS:
            record.setdefault(column, None if column in OPTIONAL_NUMBERS else "")
        label = f"{path}, line {line} (model_id {record.get('model_id', '?')!r})"
        for error in validator.iter_errors(record):
            where = "/".join(str(p) for p in error.absolute_path) or "row"
            problems.append(f"{label}: {where}: {error.message}")
        if record.get("architecture") and record["architecture"] not in ARCHITECTURE_NAMES:
            problems.append(f"{label}: unknown architecture {record['architecture']!r}; "
                            f"allowed: {', '.join(ARCHITECTURE_NAMES)}")
        try:
            kwargs = json.loads(record.get("arch_kwargs") or "{}")
            if not isinstance(kwargs, dict):
                raise ValueError("not a JSON object")
            record["arch_kwargs"] = kwargs
        except ValueError as error:
            problems.append(f"{label}: arch_kwargs is not a JSON object ({error}), e.g. {{\"depth\": 10}}")
        records.append(record)
    sheet = pd.DataFrame(records, columns=COLUMNS)
    problems += _cross_row_problems(sheet, path)
    if problems:
        raise SheetError(f"the model sheet {path} has {len(problems)} problem(s):\n  - " + "\n  - ".join(problems))
    return sheet.set_index("model_id", drop=False)


def _cross_row_problems(sheet: pd.DataFrame, path: Path) -> list[str]:
    problems = []
    duplicated = sheet.model_id[sheet.model_id.duplicated()].unique()
    for model_id in duplicated:
        problems.append(f"{path}: model_id {model_id!r} appears more than once; ids must be unique")
    robust_of = dict(zip(sheet.model_id, sheet.robust))
    dataset_of = dict(zip(sheet.model_id, sheet.dataset))
    for row in sheet.itertuples():
        if row.robust is True:
            if not row.counterpart:
                problems.append(f"{path}: robust model {row.model_id!r} has no counterpart; "
                                "set 'counterpart' to the model_id of its normal model")
            elif row.counterpart not in robust_of:
                problems.append(f"{path}: counterpart {row.counterpart!r} of {row.model_id!r} is not in the sheet; "
                                "add it as a row or correct the id")
            elif robust_of[row.counterpart] is not False:
                problems.append(f"{path}: counterpart {row.counterpart!r} of {row.model_id!r} must be a normal "
                                "(robust=false) model")
            elif dataset_of[row.counterpart] != row.dataset:
                problems.append(f"{path}: counterpart {row.counterpart!r} of {row.model_id!r} is trained on "
                                f"{dataset_of[row.counterpart]!r}, not {row.dataset!r}")
        elif row.robust is False and row.counterpart:
            problems.append(f"{path}: normal model {row.model_id!r} has a counterpart; leave it empty "
                            "(counterparts are named on the robust rows)")
    return problems


def pairs(sheet: pd.DataFrame) -> pd.DataFrame:
    """The robust/normal pairs: columns robust, normal, dataset."""
    robust = sheet[sheet.robust == True]  # noqa: E712 (a boolean column)
    return pd.DataFrame({"robust": robust.model_id.values, "normal": robust.counterpart.values,
                         "dataset": robust.dataset.values})
