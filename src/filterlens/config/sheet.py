"""The zoo sheet: a TSV, one row per model, validated row by row (JSON schema) and across rows.

Every problem is collected and reported at once, each naming the row, the column and what is
allowed, so a user fixes the sheet in one pass before any job starts.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import yaml

from filterlens.config.architecture_names import ARCHITECTURE_NAMES
from filterlens.config.validation import MODELS_SCHEMA

SCHEMA = MODELS_SCHEMA
COLUMNS = ["model_id", "dataset", "architecture", "arch_kwargs", "robust", "source", "source_key",
           "counterpart", "clean_acc", "robust_acc"]
OPTIONAL_TEXT = ["source_key", "counterpart"]
OPTIONAL_NUMBERS = ["clean_acc", "robust_acc"]
# Sources that train the model here: the robust cell says how, so it may not be empty.
TRAINED_HERE = {"minizoo": "the mini zoo trains it adversarially when robust is true, normally when false"}


class SheetError(ValueError):
    """The sheet has problems; the message lists every one with its fix."""


def _cell_to_json(column: str, value: Any) -> Any:
    if column == "robust":  # empty: unknown, a candidate to place against a reference (docs/bundle.md)
        text = "" if value is None else str(value).strip().lower()
        return {"true": True, "false": False, "": None}.get(text, value)
    if column in OPTIONAL_NUMBERS:
        if value is None or str(value).strip() == "":
            return None
        try:
            return float(value)
        except ValueError:
            return value  # the schema reports it
    return "" if value is None else str(value)


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]], list[str]]:
    """The header, the data rows with the line each starts on, and problems of the layout.

    A line whose first character is ``#`` is a comment; everywhere else ``#`` is a character of
    its cell (a comment after data would silently cut the cell). Blank lines are skipped.
    Cells may be quoted ("..."), as spreadsheets write them.
    """
    text = path.read_text(encoding="utf-8-sig")
    lines = [("" if line.startswith("#") else line) for line in text.splitlines(keepends=True)]
    reader = csv.reader(lines, delimiter="\t", quotechar='"', strict=True)
    header: list[str] | None = None
    rows, problems = [], []
    line = 1
    try:
        for cells in reader:
            first_line, line = line, reader.line_num + 1
            if not cells or all(not c.strip() for c in cells):
                continue
            if header is None:
                header = cells
                continue
            if len(cells) != len(header):
                problems.append(f"{path}, line {first_line}: {len(cells)} cells, but the header has {len(header)} "
                                "columns; separate cells by one tab each ('#' starts a comment only at the start "
                                "of a line)")
                continue
            rows.append((first_line, cells))
    except csv.Error as error:
        problems.append(f"{path}, line {reader.line_num}: {error}; quote a cell wholly (\"...\") or not at all")
    if header is None:
        problems.append(f"{path} has no header line; the first line that is not a comment names the columns "
                        f"{COLUMNS}")
    return header or [], rows, problems


def read_sheet(path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate ``path``; raise :class:`SheetError` listing every problem."""
    path = Path(path)
    if not path.exists():
        raise SheetError(f"model sheet {path} does not exist. Fix: set 'sheet' in the config to an existing TSV.")
    header, rows, problems = _read_rows(path)
    if unknown := [c for c in header if c not in COLUMNS]:
        problems.append(f"unknown columns {unknown}; allowed: {COLUMNS}")
    if repeated := sorted({c for c in header if header.count(c) > 1}):
        problems.append(f"columns {repeated} appear more than once in the header")
    schema = yaml.safe_load(SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    records, lines = [], []
    for line, cells in rows:
        row = dict(zip(header, cells))
        record = {c: _cell_to_json(c, v) for c, v in row.items() if c in COLUMNS}
        for column in OPTIONAL_TEXT + OPTIONAL_NUMBERS:
            record.setdefault(column, None if column in OPTIONAL_NUMBERS else "")
        label = f"{path}, line {line} (model_id {record.get('model_id', '?')!r})"
        for error in validator.iter_errors(record):
            where = "/".join(str(p) for p in error.absolute_path) or "row"
            message = error.message
            if where == "robust" and error.validator == "type":
                message = f"{error.instance!r} is not true, false or empty (empty: robustness unknown, a candidate)"
            problems.append(f"{label}: {where}: {message}")
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
        if any("#" in str(v) for v in row.values()) and any(p.startswith(label) for p in problems):
            problems.append(f"{label}: a cell holds '#': it starts a comment only at the start of a line, "
                            "inside a row it is part of the cell")
        records.append(record)
        lines.append(line)
    sheet = pd.DataFrame(records, columns=COLUMNS)
    sheet["line"] = lines
    problems += _cross_row_problems(sheet, path)
    if problems:
        raise SheetError(f"the model sheet {path} has {len(problems)} problem(s):\n  - " + "\n  - ".join(problems))
    return sheet.drop(columns="line").set_index("model_id", drop=False)


def _cross_row_problems(sheet: pd.DataFrame, path: Path) -> list[str]:
    problems = []
    duplicated = sheet.model_id[sheet.model_id.duplicated()].unique()
    for model_id in duplicated:
        problems.append(f"{path}: model_id {model_id!r} appears more than once; ids must be unique")
    folded = sheet.model_id.map(lambda m: m.casefold() if isinstance(m, str) else m)
    for key, part in sheet[folded.duplicated(keep=False)].groupby(folded[folded.duplicated(keep=False)], sort=False):
        ids = list(dict.fromkeys(part.model_id))
        if len(ids) > 1:
            where = ", ".join(f"{i!r} (line {n})" for i, n in zip(part.model_id, part.line))
            problems.append(f"{path}: model_ids {where} differ only in case; file systems that ignore case "
                            "would mix up their files: rename one")
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
        elif row.robust is None and row.counterpart:
            problems.append(f"{path}: model {row.model_id!r} of unknown robustness (robust empty) has a "
                            "counterpart; leave counterpart empty, or set robust to true for a robust model")
        if row.robust is None and row.source in TRAINED_HERE:
            problems.append(f"{path}: model {row.model_id!r} has source {row.source} but robust empty: "
                            f"{TRAINED_HERE[row.source]}. Fix: set robust to true or false")
    return problems


def pairs(sheet: pd.DataFrame) -> pd.DataFrame:
    """The robust/normal pairs: columns robust, normal, dataset."""
    robust = sheet[sheet.robust == True]  # noqa: E712 (a boolean column)
    return pd.DataFrame({"robust": robust.model_id.values, "normal": robust.counterpart.values,
                         "dataset": robust.dataset.values})
