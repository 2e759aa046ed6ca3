"""Benchmark of the reduction passes against the read floor, on synthetic zoos.

    python dev/perf/benchmark_reductions.py [--sizes 50000000 200000000] [--threads 2] [--mem-mb 2000]

For each size, a zoo is made from the real shapes of the paper's RobustBench architectures
(built on the meta device, in the order of config/reference/paper_models.csv, until the
size is reached) with seeded random weights, written as filter stores under
data/benchmark/<size>/ (kept and reused). Every pass then runs in a fresh process over all
stores of the zoo, as the workflow's per-model jobs would, and reports wall time, peak RSS
and throughput:

    read_floor            decompress and sum the stores (dask.array.from_zarr(...).sum())
    summary_streaming     pass 1 without orthogonality: counts, sparse filters, moments, entropy
    summary               pass 1 as the workflow runs it, orthogonality included (compute-bound:
                          c_out * c_in * 9 / 2 multiply-adds per output channel)
    orthogonality         derived: summary minus summary_streaming, with the Gram's GFLOP/s
                          (c_out^2 * c_in * 9 flops per layer, float32 GEMM from 256 channels)
    coefficient_range     pass 2: min/max of the coefficients on the full basis
    coefficient_histograms  pass 3: per layer and component, 70-bin counts
    merge                 PCA bases and KL from the small per-model summaries

Every pass is run --repeat times (default 3), in rounds over all passes, and its shortest
wall time is kept: the run least disturbed by other work on a shared machine, for the floor
and the passes alike. Peak RSS is the largest of the rounds.

Writes results/benchmarks/reductions.tsv and reductions.png and prints the targets:
every pass within 2x the read floor; peak RSS at the largest size within 1.2x of the
smallest and under 3 GiB.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "dev" / "perf"))

from process_memory import peak_rss_mb  # noqa: E402  (after the path)

from filterlens.reduce.jobs import PASS_MEM_MB  # noqa: E402  (plain Python: the passes' jobs' memory)

PASSES = ["read_floor", "summary_streaming", "summary", "coefficient_range", "coefficient_histograms", "merge"]
BINS = 70


# --- the synthetic zoo ---------------------------------------------------------------------

def paper_architectures():
    import torch

    from filterlens.config.datasets import dataset_info
    from filterlens.extract.weights import plan_extraction
    from filterlens.models.architectures import build_architecture

    with open(REPO / "config" / "reference" / "paper_models.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r["Name"].startswith("robustbench_")]
    for row in rows:
        info = dataset_info(row["Training-Dataset"])
        model = build_architecture("robustbench", {"dataset": info.name, "key": row["Network"]}, info.num_classes,
                                   device="meta")
        yield row["Network"], plan_extraction(model, torch.empty(1, 3, info.image_size, info.image_size, device="meta"))


def random_rows(plan, rng: np.random.Generator):
    """Each layer of ``plan`` with He-initialised random rows, a tenth of them near zero (sparse)."""
    for layer in plan.layers:
        fan_in = layer.c_in // layer.groups * 9
        rows = rng.standard_normal((layer.n_filters, 9), dtype=np.float32) * np.float32(np.sqrt(2 / fan_in))
        rows[rng.random(layer.n_filters) < 0.1] *= np.float32(1e-3)  # some sparse filters
        yield layer, rows


def make_zoo(size: int, root: Path, chunk_rows: int) -> list[Path]:
    """Stores of real architecture shapes with random weights, at least ``size`` filters in all."""
    from filterlens.extract.weights import write_filter_store

    root.mkdir(parents=True, exist_ok=True)
    paths, total = [], 0
    for index, (key, plan) in enumerate(paper_architectures()):
        if total >= size:
            break
        path = root / f"{index:02d}_{key}.zarr"
        paths.append(path)
        total += plan.n_filters
        if path.exists():
            continue
        write_filter_store(path, plan, random_rows(plan, np.random.default_rng(index)), chunk_rows,
                           model_id=path.stem, dataset=None, synthetic=True)
        print(f"  wrote {path.name}: {plan.n_filters:,} filters", flush=True)
    return paths


# --- one pass in a fresh process -----------------------------------------------------------

def run_pass(name: str, stores: list[str], work: Path, threads: int, mem_mb: int) -> dict:
    import dask
    import dask.array as da

    from filterlens.analyse.bases import basis_arrays, load_basis
    from filterlens.extract.store import open_filter_store
    from filterlens.io.files import write_npz
    from filterlens.method.distributions import histogram_edges, weighted_kl
    from filterlens.method.pca import Moments, pca
    from filterlens.reduce.passes import LayerMoments, coefficient_histograms, coefficient_range, summarize
    from filterlens.reduce.streaming import rows_per_segment
    from floors import summarize_without_orthogonality

    max_rows = rows_per_segment(mem_mb, threads)
    rows = 0
    start = time.perf_counter()
    if name == "merge":
        moments = [LayerMoments.from_arrays(np.load(work / f"{Path(s).stem}.moments.npz")).scaled for s in stores]
        basis = pca(Moments.sum(m for model in moments for m in model))
        counts = [np.load(work / f"{Path(s).stem}.hist.npz")["counts"].sum(axis=0) for s in stores]
        half = len(counts) // 2 or 1
        value_range = json.loads((work / "range.json").read_text())
        weighted_kl(sum(counts[:half]), sum(counts[half:]) if counts[half:] else counts[0], basis.ratio,
                    histogram_edges(value_range["low"], value_range["high"], BINS))
    else:
        basis = load_basis(work / "basis.npz") if name.startswith("coefficient") else None
        low_high = []
        for path in stores:
            store = open_filter_store(path)
            rows += store.filters.shape[0]
            if name == "read_floor":
                with dask.config.set(scheduler="threads", num_workers=threads):
                    da.from_zarr(store.filters).sum().compute()
            elif name == "summary_streaming":
                summarize_without_orthogonality(store, threads, max_rows)
            elif name == "summary":
                _, moments = summarize(store, threads, max_rows)
                write_npz(work / f"{Path(path).stem}.moments.npz", **moments.to_arrays())
            elif name == "coefficient_range":
                low_high.append(coefficient_range(store, basis, threads, max_rows))
            elif name == "coefficient_histograms":
                value_range = json.loads((work / "range.json").read_text())
                counts = coefficient_histograms(store, basis, value_range["low"], value_range["high"], BINS,
                                                threads, max_rows)
                write_npz(work / f"{Path(path).stem}.hist.npz", counts=counts)
        if name == "summary":
            moments = [LayerMoments.from_arrays(np.load(work / f"{Path(s).stem}.moments.npz")).scaled for s in stores]
            write_npz(work / "basis.npz", **basis_arrays(pca(Moments.sum(m for model in moments for m in model))))
        if name == "coefficient_range":
            (work / "range.json").write_text(json.dumps({"low": min(float(lo.min()) for lo, _ in low_high),
                                                         "high": max(float(hi.max()) for _, hi in low_high)}))
    wall = time.perf_counter() - start
    return {"pass": name, "wall_s": wall, "rows": rows, "peak_rss_mb": peak_rss_mb(),
            "gram_gflop": gram_gflop(stores) if name == "summary" else float("nan"), "blas": blas_kernel()}


def blas_kernel() -> str:
    """The BLAS this process runs and its kernel set: OpenBLAS picks one for the CPU unless
    OPENBLAS_CORETYPE names one, and the orthogonality Gram's speed follows it."""
    from threadpoolctl import threadpool_info

    found = [f"{i['internal_api']} {i.get('architecture') or ''}".strip() for i in threadpool_info()
             if i["user_api"] == "blas"]
    return ", ".join(dict.fromkeys(found)) or "none"


def gram_gflop(stores: list[str]) -> float:
    """Floating-point operations of the orthogonality Grams of the stores: the symmetric
    Wn Wn^T of a layer is c_out^2 * width / 2 multiply-adds."""
    from filterlens.extract.store import open_filter_store

    total = 0
    for path in stores:
        layers = open_filter_store(path).layers
        total += int((layers.c_out ** 2 * (layers.c_in // layers.groups) * 9)[layers.c_out > 1].sum())
    return total / 1e9


# --- driver --------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[50e6, 200e6])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mem-mb", type=int, default=PASS_MEM_MB, help="the per-model rules' resources.mem_mb")
    parser.add_argument("--chunk-rows", type=int, default=65536)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every pass; the shortest wall time counts")
    parser.add_argument("--data", type=Path, default=REPO / "data" / "benchmark")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks")
    parser.add_argument("--run-pass", help=argparse.SUPPRESS)
    parser.add_argument("--stores", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.run_pass:  # the child process of one measurement
        print(json.dumps(run_pass(args.run_pass, args.stores, args.work, args.threads, args.mem_mb)))
        return

    results = []
    for size in map(int, args.sizes):
        print(f"zoo of >= {size:,} filters:", flush=True)
        stores = make_zoo(size, args.data / str(size), args.chunk_rows)
        work = args.data / f"{size}.work"
        work.mkdir(exist_ok=True)
        def run(name: str) -> dict:
            child = subprocess.run(
                [sys.executable, __file__, "--run-pass", name, "--work", str(work), "--threads", str(args.threads),
                 "--mem-mb", str(args.mem_mb), "--stores", *map(str, stores)],
                capture_output=True, text=True, check=True)
            return json.loads(child.stdout.strip().splitlines()[-1])

        run("read_floor")  # untimed: brings the stores into the page cache, as for every later pass
        rounds = [[run(name) for name in PASSES] for _ in range(args.repeat)]
        for runs in zip(*rounds):  # per pass: the least disturbed wall time, the largest peak RSS
            row = {**min(runs, key=lambda r: r["wall_s"]), "size": size, "n_models": len(stores),
                   "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}
            results.append(row)
            walls = ", ".join(f"{r['wall_s']:.2f}" for r in runs)
            print(f"  {row['pass']:24s} {row['wall_s']:8.2f} s (of {walls})  peak RSS {row['peak_rss_mb']:7.0f} MB",
                  flush=True)
    report(results, args.out)


def report(results: list[dict], out: Path) -> None:
    import pandas as pd

    table = pd.DataFrame(results)
    table = pd.concat([table, orthogonality_rows(table)], ignore_index=True)
    n_filters = table[table["pass"] == "read_floor"].set_index("size").rows
    floor = table[table["pass"] == "read_floor"].set_index("size").wall_s
    table["n_filters"] = table["size"].map(n_filters)
    table["ratio_to_floor"] = table.wall_s / table["size"].map(floor)
    table["million_filters_per_s"] = table.n_filters / table.wall_s / 1e6
    table["gflop_per_s"] = (table.gram_gflop / table.wall_s).where(table["pass"] == "orthogonality")
    order = PASSES[:PASSES.index("summary") + 1] + ["orthogonality"] + PASSES[PASSES.index("summary") + 1:]
    table = table.sort_values(["size", "pass"], key=lambda c: c.map(order.index) if c.name == "pass" else c)
    table = table[["size", "n_models", "n_filters", "pass", "wall_s", "million_filters_per_s", "ratio_to_floor",
                   "peak_rss_mb", "gflop_per_s", "blas"]]
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "reductions.tsv", sep="\t", index=False, float_format="%.4g")
    print()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    passes = table[~table["pass"].isin(["read_floor", "merge", "summary", "orthogonality"])]
    sizes = sorted(table["size"].unique())
    rss = table.groupby("size").peak_rss_mb.max()
    print(f"\nBLAS: {', '.join(table.blas.dropna().unique())}")
    print("targets:")
    print(f"  every streaming pass within 2x the read floor: worst {passes.ratio_to_floor.max():.2f}x "
          f"({passes.loc[passes.ratio_to_floor.idxmax(), 'pass']})")
    full = table[table["pass"] == "summary"]
    print(f"  summary with orthogonality (compute-bound): {full.ratio_to_floor.max():.2f}x the read floor")
    for row in table[table["pass"] == "orthogonality"].itertuples():
        print(f"  orthogonality at {row.n_filters / 1e6:.0f}M filters: {row.wall_s:.1f} s over the streaming "
              f"summary, {row.gflop_per_s:.1f} GFLOP/s of Gram")
    print(f"  peak RSS largest/smallest: {rss[sizes[-1]] / rss[sizes[0]]:.2f} (target <= 1.2); "
          f"largest {rss[sizes[-1]]:.0f} MB (target < 3072 MB)")
    plot(table, out / "reductions.png")


def orthogonality_rows(table):
    """Per size, the cost of orthogonality: the summary's wall time over the streaming summary's,
    with the summary's Gram flops (its peak RSS is the summary's)."""
    import pandas as pd

    by_pass = table.set_index(["size", "pass"])
    rows = []
    for size in table["size"].unique():
        full, streaming = by_pass.loc[(size, "summary")], by_pass.loc[(size, "summary_streaming")]
        rows.append({**full.to_dict(), "size": size, "pass": "orthogonality", "wall_s": full.wall_s - streaming.wall_s})
    return pd.DataFrame(rows)


def plot(table, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    table = table.assign(zoo=(table["n_filters"] / 1e6).round().astype(int).astype(str) + "M filters")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), constrained_layout=True)
    sns.barplot(table, x="pass", y="ratio_to_floor", hue="zoo", ax=axes[0], palette="colorblind")
    axes[0].axhline(2, color="grey", linestyle="--", linewidth=1)
    axes[0].set(ylabel="wall time / read floor", xlabel="")
    sns.barplot(table, x="pass", y="peak_rss_mb", hue="zoo", ax=axes[1], palette="colorblind")
    axes[1].axhline(3072, color="grey", linestyle="--", linewidth=1)
    axes[1].set(ylabel="peak RSS (MB)", xlabel="")
    for ax in axes:
        ax.tick_params(axis="x", rotation=30)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    fig.savefig(path, dpi=150)


if __name__ == "__main__":
    main()
