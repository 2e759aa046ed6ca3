"""Reading and writing the workflow's small outputs: complete or not at all (see filterlens.io.atomic)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from filterlens.io.atomic import atomic_output


def write_tsv(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """A tidy TSV; floats keep full precision (repr), so merges downstream lose nothing."""
    with atomic_output(path) as temporary:
        table.to_csv(temporary, sep="\t", index=False)


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    with atomic_output(path) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, **arrays)


def read_tsv(path: str | os.PathLike) -> pd.DataFrame:
    # A layer's name is text even when it is digits: nn.Sequential names its children "0", "1", ...
    return pd.read_csv(path, sep="\t", keep_default_na=True, dtype={"name": str})
