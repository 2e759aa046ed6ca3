"""Filter measures of neighbouring work (docs/method.md §7), as pure functions on arrays.

- :func:`l1l2_ratio`: the L1/L2 sparsity ratio of a filter, ((||F||_1 / ||F||_2)^2 - 1) / (d - 1),
  0 for a single non-zero weight, 1 for all weights equal in magnitude (Bakiskan 2022, ch. 3).
- :func:`high_frequency_share`: share of a filter's energy outside the DC term of its 3x3 DFT.
  By Parseval, sum |DFT(F)|^2 = 9 sum F^2 and DFT(F)[0, 0] = sum F, so the share is
  1 - (sum F)^2 / (9 sum F^2) = 1 - 9 mean(F)^2 / sum F^2: 0 for a constant filter.
- :func:`conv_singular_values`: every singular value of a convolution layer seen as a linear
  operator on n x n inputs with circular boundaries, exactly, by the FFT method of Sedghi et al.
  (ICLR 2019), extended to strided convolutions by a polyphase split of the input; grouped
  convolutions are block diagonal, so their singular values are those of the groups.
- :func:`spectrum_summary`: per layer numbers of a spectrum (max = spectral norm, mean, ...).
- :func:`perturbation_ratio`: ||f(x) - f(x')||_2 / ||f(x)||_2 per sample.

Both per-filter measures are scale invariant and undefined (NaN) for an all-zero filter; the
layer summaries average them over the non-sparse filters (whose peaks are > 0).
No scipy or torch here (numpy and pandas only): the functions run in every environment of the workflow.
"""

from __future__ import annotations

import numpy as np

D = 9  # weights per 3x3 filter


# --- per-filter measures -------------------------------------------------------------------

def _row_sums(values: np.ndarray) -> np.ndarray:
    """Row sums of (n, k) as a matrix-vector product (fast on short rows, deterministic)."""
    return values @ np.ones(values.shape[1])


def l1l2_ratio(rows: np.ndarray) -> np.ndarray:
    """((||F||_1 / ||F||_2)^2 - 1) / (d - 1) of each row of ``rows`` (n, d); NaN for zero rows."""
    rows = np.asarray(rows, dtype=np.float64)
    d = rows.shape[1]
    l1 = _row_sums(np.abs(rows))
    l2_squared = _row_sums(rows * rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (l1 * l1 / l2_squared - 1.0) / (d - 1)


def high_frequency_share(rows: np.ndarray) -> np.ndarray:
    """1 - (sum F)^2 / (d sum F^2) of each row (n, d): energy outside the DC term; NaN for zero rows."""
    rows = np.asarray(rows, dtype=np.float64)
    d = rows.shape[1]
    total = _row_sums(rows)
    energy = _row_sums(rows * rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - total * total / (d * energy)


def filter_measure_sums(rows: np.ndarray) -> tuple[float, float]:
    """Sums over the rows (non-sparse filters, none all zero) of the L1/L2 ratio and the
    high-frequency share: the additive per-layer statistics of pass 1."""
    rows = np.asarray(rows, dtype=np.float64)
    if not len(rows):
        return 0.0, 0.0
    return float(l1l2_ratio(rows).sum()), float(high_frequency_share(rows).sum())


# --- singular values of a convolution layer ------------------------------------------------

def _check_operator(weight: np.ndarray, n: int, stride: int, groups: int) -> None:
    if weight.ndim != 4:
        raise ValueError(f"weight must be (c_out, c_in/groups, kh, kw), got shape {weight.shape}")
    if n < 1 or stride < 1 or n % stride:
        raise ValueError(f"input size {n} must be a positive multiple of the stride {stride}")
    if weight.shape[0] % groups:
        raise ValueError(f"c_out {weight.shape[0]} is not a multiple of groups {groups}")


def conv_singular_values(weight: np.ndarray, n: int, stride: int = 1, padding: int | None = None,
                         groups: int = 1, max_block_bytes: int = 1 << 27) -> np.ndarray:
    """All singular values (descending, float64) of the convolution with ``weight`` (c_out,
    c_in/groups, kh, kw) as an operator on (c_in, n, n) inputs with circular padding.

    The operator is the cross-correlation y[o, u] = sum_{c, t} w[o, c, t] x[c, stride u + t - padding]
    (indices mod n), as ``torch.nn.functional.conv2d`` with circular padding computes. Split the
    input into stride^2 phases x_a[v] = x[stride v + a]: each phase is correlated with a
    sub-kernel on the m = n / stride grid, so at each of the m^2 frequencies the operator is the
    c_out x (c_in * stride^2) matrix of the sub-kernels' DFTs (Sedghi et al. 2019 for stride 1).
    A kernel larger than the grid wraps around (its taps add up modulo n). Frequencies are
    processed in blocks of at most ``max_block_bytes`` of complex matrices, so memory stays
    bounded for large layers. ``padding`` only shifts the input (a unitary map): it does not
    change the singular values and defaults to kh // 2.
    """
    weight = np.asarray(weight, dtype=np.float64)
    _check_operator(weight, n, stride, groups)
    c_out, c_in_g, kh, kw = weight.shape
    padding = kh // 2 if padding is None else padding
    if groups > 1:
        per = c_out // groups
        values = [conv_singular_values(weight[g * per:(g + 1) * per], n, stride, padding, 1, max_block_bytes)
                  for g in range(groups)]
        return np.sort(np.concatenate(values))[::-1]
    m = n // stride
    # taps: position t = (i - padding) mod n on the n grid -> phase a = t mod stride, offset q = t // stride
    phases = stride * stride
    taps: dict[tuple[int, int, int], np.ndarray] = {}  # (phase, q1, q2) -> summed (c_out, c_in) weights
    for i in range(kh):
        for j in range(kw):
            t1, t2 = (i - padding) % n, (j - padding) % n
            key = ((t1 % stride) * stride + t2 % stride, t1 // stride, t2 // stride)
            taps[key] = taps.get(key, 0.0) + weight[:, :, i, j]
    frequencies = np.stack(np.meshgrid(np.arange(m), np.arange(m), indexing="ij"), axis=-1).reshape(-1, 2)
    per_matrix = c_out * c_in_g * phases * 16
    block = max(1, int(max_block_bytes // per_matrix))
    out = []
    for start in range(0, len(frequencies), block):
        f = frequencies[start:start + block]
        matrices = np.zeros((len(f), c_out, c_in_g, phases), dtype=np.complex128)
        for (phase, q1, q2), w in taps.items():
            factor = np.exp(-2j * np.pi * (f[:, 0] * q1 + f[:, 1] * q2) / m)
            matrices[:, :, :, phase] += factor[:, None, None] * w[None]
        out.append(np.linalg.svd(matrices.reshape(len(f), c_out, c_in_g * phases), compute_uv=False).ravel())
    return np.sort(np.concatenate(out))[::-1]


def spectrum_summary(values: np.ndarray) -> dict[str, float]:
    """Numbers of one layer's singular values: count, max (the spectral norm), mean, median, min,
    stable rank (sum s^2 / max s^2) and effective rank (exp of the entropy of s / sum s,
    Roy & Vetterli 2007), both also as a share of the count."""
    s = np.asarray(values, dtype=np.float64)
    count = len(s)
    if not count or not np.isfinite(s).all():
        nan = float("nan")
        return {"n_singular": count, "spectral_norm": nan, "sigma_mean": nan, "sigma_median": nan, "sigma_min": nan,
                "stable_rank": nan, "effective_rank": nan, "stable_rank_ratio": nan, "effective_rank_ratio": nan}
    top = float(s.max())
    stable = float((s * s).sum() / (top * top)) if top > 0 else float("nan")
    total = s.sum()
    if total > 0:
        p = s[s > 0] / total
        effective = float(np.exp(-(p * np.log(p)).sum()))
    else:
        effective = float("nan")
    return {"n_singular": count, "spectral_norm": top, "sigma_mean": float(s.mean()),
            "sigma_median": float(np.median(s)), "sigma_min": float(s.min()), "stable_rank": stable,
            "effective_rank": effective, "stable_rank_ratio": stable / count, "effective_rank_ratio": effective / count}


# --- perturbation-to-signal ratio ----------------------------------------------------------

def perturbation_ratio(clean: np.ndarray, perturbed: np.ndarray) -> np.ndarray:
    """||f(x) - f(x')||_2 / ||f(x)||_2 per sample (first axis); NaN where f(x) is all zero."""
    clean = np.asarray(clean, dtype=np.float64).reshape(len(clean), -1)
    perturbed = np.asarray(perturbed, dtype=np.float64).reshape(len(perturbed), -1)
    signal = np.linalg.norm(clean, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(signal > 0, np.linalg.norm(perturbed - clean, axis=1) / signal, np.nan)
