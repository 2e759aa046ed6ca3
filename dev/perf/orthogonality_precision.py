"""How far the float32 Gram moves orthogonality from the float64 formula (filterlens.method.orthogonality.gram_dtype).

    python dev/perf/orthogonality_precision.py [--checkpoints data/models/*.pt]

Compares, layer by layer, orthogonality computed with the Gram forced to float32 against the
formula in float64 (every filterbank in memory, one GEMM): on synthetic layers of c_out 16 to
1024 (Gaussian; low-rank plus noise; positive, so that every cosine is large; orthonormal, so
that every cosine is rounding noise; heavy-tailed with zero filterbanks) and on the 3x3 layers
of the given checkpoints. Prints the absolute and relative difference per layer and the
largest per c_out range; gram_dtype's docstring quotes these numbers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))  # reference_reductions

from filterlens.method import orthogonality as ortho  # noqa: E402
from reference_reductions import orthogonality as float64_formula  # noqa: E402  (the whole Gram, float64)

SIZES = [16, 64, 128, 256, 512, 1024]


def float32_gram(w: np.ndarray) -> float:
    policy = ortho.gram_dtype
    ortho.gram_dtype = lambda c_out: np.float32
    try:
        return ortho.orthogonality(w)
    finally:
        ortho.gram_dtype = policy


def synthetic_layers(rng: np.random.Generator):
    for c in SIZES:
        width = 9 * c
        yield f"gaussian {c}x{c}", rng.standard_normal((c, width))
        yield f"gaussian {c}x3", rng.standard_normal((c, 27))
        yield f"low-rank {c}x{c}", rng.standard_normal((c, 8)) @ rng.standard_normal((8, width)) \
            + 0.1 * rng.standard_normal((c, width))
        yield f"positive {c}x{c}", np.abs(rng.standard_normal((c, width)))
        yield f"orthonormal {c}x{c}", np.linalg.qr(rng.standard_normal((width, c)))[0].T
        heavy = rng.standard_t(3, (c, width))
        heavy[::7] = 0
        yield f"t3, zero rows {c}x{c}", heavy


def checkpoint_layers(paths: list[str]):
    import torch

    for path in paths:
        state = torch.load(path, map_location="cpu", weights_only=False)
        state = state.get("state_dict", state)
        for name, weight in state.items():
            if getattr(weight, "ndim", 0) == 4 and tuple(weight.shape[-2:]) == (3, 3) and weight.shape[0] > 1:
                yield f"{Path(path).stem} {name}", weight.float().numpy().reshape(weight.shape[0], -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", nargs="*", default=[])
    args = parser.parse_args()
    worst: dict[str, float] = {}
    layers = [*synthetic_layers(np.random.default_rng(1)), *checkpoint_layers(args.checkpoints)]
    for name, w in layers:
        w = w.astype(np.float32)  # stores hold float32
        exact, fast = float64_formula(w), float32_gram(w)
        error = abs(fast - exact)
        group = "c_out >= 256" if len(w) >= ortho.FLOAT32_GRAM_MIN_C_OUT else "c_out < 256"
        worst[group] = max(worst.get(group, 0.0), error)
        print(f"{name:60s} {str(w.shape):14s} O = {exact:.9f}  |diff| {error:.1e}  rel {error / abs(exact):.1e}")
    for group, error in sorted(worst.items()):
        print(f"largest |diff|, {group}: {error:.1e}")


if __name__ == "__main__":
    main()
