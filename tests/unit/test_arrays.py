"""filterlens.io.arrays: whole-array checks in one reduction, the same answers as the plain ones."""

import numpy as np
import pytest

from filterlens.io.arrays import abs_max, all_finite


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_single_bad_value_is_found(bad):
    rows = np.random.default_rng(0).standard_normal((1000, 9)).astype(np.float32)
    assert all_finite(rows)
    rows[517, 4] = bad
    assert not all_finite(rows)


def test_infinities_of_both_signs_and_overflowing_finite_values():
    assert not all_finite(np.array([np.inf, -np.inf], dtype=np.float32))  # their sum is NaN
    assert all_finite(np.full(4, 3e38, dtype=np.float32))  # the sum overflows, every value is finite


def test_abs_max_is_the_largest_magnitude_of_either_sign():
    rows = np.random.default_rng(1).standard_normal((500, 9)).astype(np.float32)
    rows[3, 3] = -7.5
    assert abs_max(rows) == 7.5 == float(np.abs(rows).max())
    assert abs_max(-rows) == 7.5 and abs_max(np.zeros((2, 9), np.float32)) == 0.0
