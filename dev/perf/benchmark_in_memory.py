"""The plain in-memory approach (the authors' way) on growing parts of a zoo's filter stores,
for comparison with the streamed reductions of the scale run.

    python dev/perf/benchmark_in_memory.py [--stores 'results/filters/*.zarr'] [--max-gb 16]

For each size, a fresh process loads every filter of the first stores (in name order) until
the size is reached, computes each layer's orthogonality (whole float64 Gram), splits off the
sparse filters, scales the rest (float64), fits scikit-learn's PCA on all of them, projects
them and counts 70-bin histograms per component (tests/reference_reductions.py, the reference of the
equivalence tests). It records wall time and peak
RSS. Two small sizes give the memory per filter; the largest size whose projected peak fits
in --max-gb is measured too, and the RAM the approach would need for all the stores is
extrapolated from the measured slope. Writes results/benchmarks/in_memory.tsv.
"""

from __future__ import annotations

import argparse
import glob
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "dev" / "perf"))
sys.path.insert(0, str(REPO / "tests"))  # reference_reductions: the plain way, the tests' reference

BINS = 70


def load_layers(stores: list[str], size: int) -> tuple[list[tuple[np.ndarray, int]], int]:
    """The layers' rows (float32) and c_out of the first stores: at least ``size`` filters, or
    at most ``-size`` filters if ``size`` is negative (never fewer than one store)."""
    from filterlens.extract.store import open_filter_store

    layers, total = [], 0
    for path in stores:
        store = open_filter_store(path)
        n = store.filters.shape[0]
        if (total >= size > 0) or (size < 0 and total and total + n > -size):
            break
        rows = store.filters[:]
        table = store.layers
        layers += [(rows[a:b], c) for a, b, c in zip(table.row_start, table.row_stop, table.c_out)]
        total += len(rows)
    return layers, total


def run_size(stores: list[str], size: int) -> dict:
    from process_memory import peak_rss_mb

    from reference_reductions import fit_pca, histograms, orthogonality, scaled_filters

    start = time.perf_counter()
    layers, total = load_layers(stores, size)
    loaded = time.perf_counter()
    for rows, c_out in layers:
        if c_out > 1:
            orthogonality(rows.reshape(c_out, -1))
    scaled = scaled_filters([rows for rows, _ in layers])
    reference = fit_pca(scaled)
    coefficients = reference.transform(scaled)
    histograms(coefficients, coefficients.min(), coefficients.max(), BINS)
    end = time.perf_counter()
    return {"n_filters": total, "load_s": loaded - start, "reduce_s": end - loaded, "wall_s": end - start,
            "peak_rss_mb": peak_rss_mb()}


def measure(stores: list[str], size: int) -> dict:
    child = subprocess.run([sys.executable, __file__, f"--run-size={size}", "--stores", *stores],
                           capture_output=True, text=True, check=True)
    row = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"  {row['n_filters']:>13,} filters: {row['wall_s']:7.1f} s, peak RSS {row['peak_rss_mb']:8.0f} MB",
          flush=True)
    return row


def store_rows(stores: list[str]) -> int:
    from filterlens.extract.store import open_filter_store

    return sum(open_filter_store(p).filters.shape[0] for p in stores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", nargs="+", default=["results/filters/*.zarr"], help="store paths or globs")
    parser.add_argument("--small", type=float, nargs=2, default=[5e6, 20e6], help="the two sizes for the slope")
    parser.add_argument("--max-gb", type=float, default=16.0, help="memory the largest measurement may use")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks" / "in_memory.tsv")
    parser.add_argument("--run-size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    stores = sorted(p for pattern in args.stores for p in (glob.glob(pattern) or [pattern]))
    if args.run_size is not None:  # the child process of one measurement
        print(json.dumps(run_size(stores, args.run_size)))
        return

    import pandas as pd

    rows = [measure(stores, int(size)) for size in args.small]
    (a, b) = rows
    per_filter = (b["peak_rss_mb"] - a["peak_rss_mb"]) / (b["n_filters"] - a["n_filters"])  # MB per filter
    base = a["peak_rss_mb"] - per_filter * a["n_filters"]
    largest = int((args.max_gb * 1024 - base) / per_filter)
    rows.append(measure(stores, -largest))  # at most that many: the peak stays within --max-gb
    total = store_rows(stores)
    table = pd.DataFrame(rows)
    table["bytes_per_filter"] = per_filter * 2**20
    table["million_filters_per_s"] = table.n_filters / table.wall_s / 1e6
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, sep="\t", index=False, float_format="%.4g")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"\nmemory: {per_filter * 2**20:.0f} bytes per filter + {base:.0f} MB; all {len(stores)} stores "
          f"({total:,} filters) would need about {(base + per_filter * total) / 1024:.0f} GiB")


if __name__ == "__main__":
    main()
