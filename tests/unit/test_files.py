"""The small-output writers of filterlens.io.files: with and without pandas, the same text."""

import numpy as np
import pandas as pd

from filterlens.io.files import read_tsv, read_tsv_rows, write_tsv, write_tsv_rows

COLUMNS = ["model_id", "n", "low", "high", "robust"]
ROWS = [
    ["a", 3, -2.2119343027666774, 0.1, True],
    ["b", np.int64(0), np.float64(1e-300), float("nan"), False],
    ["c", 10**12, np.float32(0.5), 1 / 3, True],
]


def test_the_writer_without_pandas_writes_what_pandas_writes(tmp_path):
    write_tsv(pd.DataFrame(ROWS, columns=COLUMNS), tmp_path / "pandas.tsv")
    write_tsv_rows(tmp_path / "rows.tsv", COLUMNS, ROWS)
    assert (tmp_path / "rows.tsv").read_bytes() == (tmp_path / "pandas.tsv").read_bytes()


def test_rows_read_back_as_text_and_as_a_table_with_every_float_bit(tmp_path):
    write_tsv_rows(tmp_path / "rows.tsv", COLUMNS, ROWS)
    assert read_tsv_rows(tmp_path / "rows.tsv")[1] == {"model_id": "b", "n": "0", "low": "1e-300", "high": "",
                                                      "robust": "False"}
    table = read_tsv(tmp_path / "rows.tsv")
    assert table.low.tolist() == [-2.2119343027666774, 1e-300, 0.5] and np.isnan(table.high[1])
