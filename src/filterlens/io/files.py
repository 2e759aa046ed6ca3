"""Reading and writing the workflow's small outputs: complete or not at all (see filterlens.io.atomic)."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from filterlens.io.atomic import atomic_output

if TYPE_CHECKING:
    import pandas as pd  # imported where used: the coefficient passes' jobs read and write TSVs without it


def write_tsv(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """A tidy TSV; floats keep full precision (repr), so merges downstream lose nothing."""
    with atomic_output(path) as temporary:
        table.to_csv(temporary, sep="\t", index=False)


def write_tsv_rows(path: str | os.PathLike, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A small TSV without pandas, written as :func:`write_tsv` writes the same table: floats as
    repr, NaN as an empty field."""
    with atomic_output(path) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_field(value) for value in row] for row in rows)


def _field(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else repr(float(value))
    return value.item() if isinstance(value, np.generic) else value


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    with atomic_output(path) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, **arrays)


def read_tsv(path: str | os.PathLike) -> pd.DataFrame:
    import pandas as pd

    # A layer's name is text even when it is digits: nn.Sequential names its children "0", "1", ...
    return pd.read_csv(path, sep="\t", keep_default_na=True, dtype={"name": str})


def read_tsv_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """A small TSV's rows as text by column, without pandas."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))
