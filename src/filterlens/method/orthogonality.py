"""Filter orthogonality of a layer (docs/method.md §5), in channel blocks.

Precision policy: the Gram is float32 for layers of 256 output channels or more (within 1e-7
absolute of the float64 formula) and float64 below (see :func:`gram_dtype`); docs/design.md.
"""

from __future__ import annotations

import functools
import math

import numpy as np

# Orthogonality is the one compute-bound metric: the Gram Wn Wn^T costs c_out * c_in * 9 / 2
# multiply-adds per output channel (numpy hands a @ a.T to BLAS as a symmetric rank-k
# update). It is computed in blocks of output channels fixed by the layer's shape, never by
# memory or threads, so a layer gives bitwise the same value whether it lies in one segment
# or is read block by block from the store; the blocks' sums are added exactly (math.fsum),
# so neither their order nor their grouping matters.
GRAM_BLOCK_WEIGHTS = 1 << 23  # weights per channel block (32 MiB in float32): few blocks, few rereads
FLOAT32_GRAM_MIN_C_OUT = 256  # precision policy: see gram_dtype


def gram_dtype(c_out: int) -> type:
    """float32 for layers of at least FLOAT32_GRAM_MIN_C_OUT output channels, float64 below.

    The rows are scaled to unit norm in float64, then rounded; float32 GEMM is about twice as
    fast, and the blocks' sums of |G| are taken in float64. The diagonal is exact either way.
    Measured against the float64 formula (dev/perf/orthogonality_precision.py): on the 3x3
    layers of two trained RobustBench models (WRN-34-10 Wu2020Adversarial, WRN-70-16
    Gowal2020Uncovering_70_16_extra; 86 layers of c_out 256..1024) float32 moves the value by
    at most 7e-11; on synthetic layers of c_out 256..1024 (Gaussian, low-rank, positive,
    heavy-tailed with zero filterbanks, orthonormal) by at most 6e-9, the worst case being
    orthonormal filterbanks, whose every |cos| is rounding noise that the absolute value
    cannot cancel. The paper reports three decimals; the tests allow 1e-7 absolute for the
    float32 path. Smaller layers cost little (the Gram work per filter is proportional to
    c_out) and float32 would be off by up to 2e-8 there, so they stay in float64, within
    1e-15 of the formula (the equivalence tests hold them to 1e-9 relative).
    """
    return np.float32 if c_out >= FLOAT32_GRAM_MIN_C_OUT else np.float64


def channel_blocks(c_out: int, width: int) -> list[tuple[int, int]]:
    """Output channel ranges of about equal size, each of at most GRAM_BLOCK_WEIGHTS weights
    (at least one channel), for filterbanks of ``width`` weights."""
    n_blocks = max(1, -(-c_out * width // GRAM_BLOCK_WEIGHTS))
    size = -(-c_out // n_blocks)
    return [(o, min(c_out, o + size)) for o in range(0, c_out, size)]


def unit_rows(filterbanks: np.ndarray, dtype: type) -> tuple[np.ndarray, int]:
    """The rows scaled to unit L2 norm in float64, then rounded to ``dtype``; zero rows stay
    zero. Also returns the number of zero rows. A few rows at a time, so the float64
    temporaries stay small."""
    w = np.asarray(filterbanks)
    out = np.empty(w.shape, dtype)
    step = max(1, (1 << 18) // max(w.shape[1], 1))
    zero_rows = 0
    for r in range(0, len(w), step):
        part = w[r:r + step].astype(np.float64)
        norms = np.sqrt(np.einsum("ij,ij->i", part, part))
        zero = norms == 0
        zero_rows += int(zero.sum())
        np.divide(part, np.where(zero, 1.0, norms)[:, None], out=out[r:r + step], casting="same_kind")
    return out, zero_rows


def _abs_sum(g: np.ndarray) -> float:
    return float(np.abs(g, out=g).sum(dtype=np.float64))


def block_row_deviations(unit_block, n_blocks: int, i: int) -> list[float]:
    """The parts of sum |Wn Wn^T - I| from the Gram blocks (i, j >= i), blocks j > i counted
    twice (for their mirror images); ``unit_block(j)`` gives block j's unit rows and its
    number of zero rows."""
    wa, zero_rows = unit_block(i)
    g = wa @ wa.T
    # The diagonal of Wn Wn^T - I is exactly 0 for unit rows and -1 for zero rows: kept out
    # of the GEMM's rounding.
    np.fill_diagonal(g, 0.0)
    parts = [_abs_sum(g), float(zero_rows)]
    parts += [2.0 * _abs_sum(wa @ unit_block(j)[0].T) for j in range(i + 1, n_blocks)]
    return parts


def blocked_orthogonality(read_block, c_out: int, width: int, map_rows=map, hold_blocks: bool = True) -> float:
    """1 - sum|Wn Wn^T - I| / (c_out (c_out - 1)) of a layer of ``c_out`` filterbanks of
    ``width`` weights, from ``read_block(o0, o1)`` (the filterbanks of channels o0..o1).

    ``map_rows(f, block_indices)`` may run the block rows in parallel; ``hold_blocks`` keeps
    each block's unit rows once made (a layer in memory) rather than reading and scaling it
    again for every block row (a layer read from the store). Neither changes the result: the
    parts are the same numbers, added exactly.
    """
    if c_out < 2:
        return float("nan")
    blocks = channel_blocks(c_out, width)
    dtype = gram_dtype(c_out)

    def unit_block(j: int) -> tuple[np.ndarray, int]:
        return unit_rows(read_block(*blocks[j]), dtype)

    if hold_blocks:
        unit_block = functools.cache(unit_block)
    rows = map_rows(lambda i: block_row_deviations(unit_block, len(blocks), i), range(len(blocks)))
    return 1.0 - math.fsum(part for row in rows for part in row) / (c_out * (c_out - 1))


def orthogonality(filterbanks: np.ndarray) -> float:
    """Orthogonality of a layer given as (c_out, c_in/groups * 9) filterbanks."""
    w = np.asarray(filterbanks)
    return blocked_orthogonality(lambda o0, o1: w[o0:o1], *w.shape)
