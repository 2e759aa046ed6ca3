"""Each pass over filter stores in this process, on the reduction jobs' one thread: seconds and
nanoseconds per filter, against the read (decompress and sum) of the same store.

    python dev/perf/time_passes.py results/filters/<model>.zarr [...] [--repeat 5] [--bins 70]

The basis is the store's own (pass 1's scaled moments), the histogram range its own
coefficient range (pass 2). Pass 1 is also timed without its orthogonality column (the Gram
products). The passes run in rounds (read, pass 1, pass 2, pass 3), --repeat
times, and the shortest time of each counts: the run least disturbed by other work. Prints a
Markdown table; the store is read from the page cache after the first round.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from filterlens.extract.store import open_filter_store  # noqa: E402
from filterlens.method.pca import Moments, pca  # noqa: E402
from filterlens.reduce.jobs import PASS_MEM_MB, PASS_THREADS  # noqa: E402  (the passes' jobs')
from filterlens.reduce.passes import coefficient_histograms, coefficient_range, summarize  # noqa: E402
from filterlens.reduce.streaming import rows_per_segment  # noqa: E402
from floors import sum_rows, summarize_without_orthogonality  # noqa: E402  (dev/perf/floors.py)


def time_passes(path: str, repeat: int, bins: int) -> dict[str, float]:
    store = open_filter_store(path)
    max_rows = rows_per_segment(PASS_MEM_MB, PASS_THREADS)
    basis = pca(Moments.sum(summarize(store, PASS_THREADS, max_rows)[1].scaled))
    low, high = coefficient_range(store, basis, PASS_THREADS, max_rows)
    passes = {
        "read": lambda: sum_rows(store, PASS_THREADS, max_rows),
        "pass 1 (summary)": lambda: summarize(store, PASS_THREADS, max_rows),
        # the Gram products of orthogonality are compute that no read does: pass 1 without them
        "pass 1 without orthogonality": lambda: summarize_without_orthogonality(store, PASS_THREADS, max_rows),
        "pass 2 (coefficient range)": lambda: coefficient_range(store, basis, PASS_THREADS, max_rows),
        "pass 3 (histograms)": lambda: coefficient_histograms(store, basis, low.min(), high.max(), bins, PASS_THREADS,
                                                              max_rows),
    }
    best = {name: float("inf") for name in passes}
    for _ in range(repeat):
        for name, run in passes.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stores", nargs="+")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--bins", type=int, default=70)
    args = parser.parse_args()
    print("| store | M filters | pass | s | ns per filter | x read |")
    print("|---|---|---|---|---|---|")
    for path in args.stores:
        n_filters = open_filter_store(path).filters.shape[0]
        times = time_passes(path, args.repeat, args.bins)
        for name, seconds in times.items():
            print(f"| {Path(path).stem} | {n_filters / 1e6:.1f} | {name} | {seconds:.2f} | "
                  f"{seconds / n_filters * 1e9:.0f} | {seconds / times['read']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
