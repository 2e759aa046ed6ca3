"""The zoo sheet: a TSV, one row per model, validated row by row (JSON schema) and across rows.

Every problem is collected and reported at once, each naming the row, the column and what is
allowed, so a user fixes the sheet in one pass before any job starts.
"""

from __future__ import annotations

import codecs
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
from filterlens.io.paths import regular_file_problem

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


def _sheet_text(path: Path) -> str:
    """The sheet's text: UTF-8 (a byte order mark allowed), or UTF-16 where a byte order mark
    declares it, as spreadsheets export "Unicode text". Anything else is named by line."""
    data = path.read_bytes()
    encoding = "utf-16" if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise SheetError(f"model sheet {path}, line {line}: byte {data[error.start]:#04x} is not "
                         f"{'UTF-16' if encoding == 'utf-16' else 'UTF-8'} text (saved in another encoding, such as "
                         "Latin-1?). Fix: save the sheet as UTF-8 text") from None


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]], list[str]]:
    """The header, the data rows with the line each starts on, and problems of the layout.

    A line whose first character is ``#`` is a comment; everywhere else ``#`` is a character of
    its cell (a comment after data would silently cut the cell). Blank lines are skipped.
    Cells may be quoted ("..."), as spreadsheets write them.
    """
    text = _sheet_text(path)
    lines = [("" if line.startswith("#") else line) for line in text.splitlines(keepends=True)]
    reader = csv.reader(lines, delimiter="\t", quotechar='"', strict=True)
    header: list[str] | None = None
    rows, problems = [], []
    line = 1
    try:
        for cells in reader:
            first_line, line = line, reader.line_num + 1
            if not "".join(cells).strip():  # a blank line, or cells of blanks only
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
    elif not rows and not problems:
        problems.append(f"{path} has no model rows (a line whose first character is '#' is a comment). Fix: add "
                        "a row per model under the header")
    return header or [], rows, problems


class RowValidator:
    """The row schema's problems, as ``column: message`` with jsonschema's own messages, split
    so that a sheet is validated by its distinct values: a cell against its column's schema
    (:meth:`cell_problems`), and the row-level parts (required columns, no other columns, the
    conditionals between columns) against the values of the columns the conditionals read
    (:meth:`row_problems`). A sheet of 10^6 rows repeats most cells (datasets, sources,
    architectures), so each distinct one is validated once."""

    def __init__(self, schema: dict[str, Any]):
        properties = schema["properties"]
        self._cells = {column: jsonschema.Draft202012Validator(sub) for column, sub in properties.items()}
        self._row = jsonschema.Draft202012Validator({**schema, "properties": dict.fromkeys(properties, True)})
        self.conditional = sorted(_named_properties([schema.get(k) for k in ("if", "then", "else")]))

    def cell_problems(self, column: str, value: Any) -> list[str]:
        if (cell := self._cells.get(column)) is None:
            return []  # an unknown column: the row-level check names it
        return [f"{'/'.join(map(str, [column, *e.absolute_path]))}: {_message(column, e)}" for e in cell.iter_errors(value)]

    def row_problems(self, columns: list[str], conditional_values: tuple) -> list[str]:
        """The row-level problems of a row of ``columns`` whose conditional columns (in
        :attr:`conditional` order, those present) hold ``conditional_values``."""
        values = dict(zip([c for c in self.conditional if c in columns], conditional_values))
        shape = {column: values.get(column) for column in columns}
        return [f"{'/'.join(map(str, e.absolute_path)) or 'row'}: {e.message}" for e in self._row.iter_errors(shape)]


def _message(column: str, error: jsonschema.ValidationError) -> str:
    if column == "robust" and error.validator == "type":
        return f"{error.instance!r} is not true, false or empty (empty: robustness unknown, a candidate)"
    return error.message


def _named_properties(schemas: list[Any]) -> set[str]:
    """The property names that (nested) schemas constrain or require."""
    names: set[str] = set()
    for schema in schemas:
        if isinstance(schema, dict):
            names |= set(schema.get("properties", {})) | set(schema.get("required", []))
            names |= _named_properties([schema.get(k) for k in ("if", "then", "else", "not")]
                                       + list(schema.get("allOf", [])) + list(schema.get("anyOf", []))
                                       + list(schema.get("oneOf", [])))
    return names


def read_sheet(path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate ``path``; raise :class:`SheetError` listing every problem."""
    path = Path(path)
    if problem := regular_file_problem(path):
        raise SheetError(f"model sheet {path} {problem}. Fix: set 'sheet' in the config to an existing TSV file.")
    header, rows, problems = _read_rows(path)
    if unknown := [c for c in header if c not in COLUMNS]:
        problems.append(f"unknown columns {unknown}; allowed: {COLUMNS}")
    if repeated := sorted({c for c in header if header.count(c) > 1}):
        problems.append(f"columns {repeated} appear more than once in the header")
    sheet, row_problems = _validated_columns(path, header, rows)
    problems += [problem for found in row_problems for problem in found]
    problems += _cross_row_problems(sheet, path)
    if problems:
        raise SheetError(f"the model sheet {path} has {len(problems)} problem(s):\n  - " + "\n  - ".join(problems))
    return sheet.drop(columns="line").set_index("model_id", drop=False)


def _validated_columns(path: Path, header: list[str], rows: list[tuple[int, list[str]]]
                       ) -> tuple[pd.DataFrame, list[list[str]]]:
    """The sheet's values (cells as JSON types, arch_kwargs parsed, a ``line`` column) and each
    row's problems, computed column by column over distinct values (:class:`RowValidator`)."""
    validator = RowValidator(yaml.safe_load(SCHEMA.read_text()))
    position = {column: index for index, column in enumerate(header) if column in COLUMNS}  # the last of a repeat
    lines = [line for line, _ in rows]
    raw = {column: [cells[index] for _, cells in rows] for column, index in position.items()}
    found: list[list[str]] = [[] for _ in rows]

    def flag(column_values: list, problems_of: dict) -> None:
        if any(problems_of.values()):
            for row, value in enumerate(column_values):
                found[row] += problems_of[value]

    values: dict[str, list] = {}
    for column, cells in raw.items():
        converted = {cell: _cell_to_json(column, cell) for cell in dict.fromkeys(cells)}
        values[column] = [converted[cell] for cell in cells]
        flag(cells, {cell: validator.cell_problems(column, value) for cell, value in converted.items()})
    for column in OPTIONAL_TEXT + OPTIONAL_NUMBERS:
        values.setdefault(column, [None if column in OPTIONAL_NUMBERS else ""] * len(rows))
    present = list(values)
    conditional = list(zip(*(values[c] for c in validator.conditional if c in values))) or [()] * len(rows)
    flag(conditional, {key: validator.row_problems(present, key) for key in dict.fromkeys(conditional)})
    if "architecture" in values:
        flag(values["architecture"], {name: [] if not name or name in ARCHITECTURE_NAMES else [
            f"unknown architecture {name!r}; allowed: {', '.join(ARCHITECTURE_NAMES)}"]
            for name in dict.fromkeys(values["architecture"])})
    if "arch_kwargs" in values:
        parsed = {text: _json_object(text) for text in dict.fromkeys(values["arch_kwargs"])}
        flag(values["arch_kwargs"], {text: [] if isinstance(kwargs, dict) else [
            f"arch_kwargs is not a JSON object ({kwargs}), e.g. {{\"depth\": 10}}"] for text, kwargs in parsed.items()})
        values["arch_kwargs"] = [dict(kwargs) if isinstance(kwargs, dict) else text  # a row's own dict
                                 for text, kwargs in ((text, parsed[text]) for text in values["arch_kwargs"])]
    ids = values.get("model_id", ["?"] * len(rows))
    for row, problems in enumerate(found):
        if problems:
            label = f"{path}, line {lines[row]} (model_id {ids[row]!r})"
            problems[:] = [f"{label}: {problem}" for problem in problems]
            if any("#" in cell for cell in rows[row][1]):
                problems.append(f"{label}: a cell holds '#': it starts a comment only at the start of a line, "
                                "inside a row it is part of the cell")
    sheet = pd.DataFrame({column: values.get(column, [None] * len(rows)) for column in COLUMNS}, columns=COLUMNS)
    sheet["line"] = lines
    return sheet, found


def _json_object(text: str) -> dict | str:
    """``text`` parsed as a JSON object, or why it is not one."""
    try:
        kwargs = json.loads(text or "{}")
    except ValueError as error:
        return str(error)
    return kwargs if isinstance(kwargs, dict) else "not a JSON object"


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
