"""The scale run's table: per stage the wall time, peak RSS per job, disk and throughput
against the read floor, from Snakemake's benchmark files (benchmarks/<stage>/...).

    python tools/scale_report.py [--stores 'results/filters/*.zarr'] [--threads 1] [--floor-only]

The read floor is measured here, on the run's own stores: decompress and sum each store as
the passes read it (filterlens.reduce.streaming.sum_rows, the reduction jobs' threads),
in this one process. Each reduction job also starts a Python process and imports numpy, Zarr
and Dask's scheduler (docs/benchmarks.md, "Imports"), which weighs on small models: x_read_floor is over all
jobs, x_read_floor_10M over the jobs of stores of at least 10M filters, and x_job_floor
compares every job with a job that only reads: a fresh process per store that imports what the
reduction jobs import, then decompresses and sums the store (timed from its start to its exit,
as Snakemake times a job; --jobs at a time, as the run's cores run the passes' jobs).
Per-model stages run one job per model; their wall time is the sum over jobs (their jobs take
one thread each and run two at a time on 2 cores, so a stage's elapsed time is about half the sum).
The extraction jobs of the models of config extraction.copy_floor_models are compared with
rule copy_floor's jobs on the same checkpoints (x_copy_floor; per model in
results/benchmarks/scale_copy_floor.tsv).
Writes results/benchmarks/scale.tsv and prints it with the run's elapsed time (tools/scale_run
records start and end in logs/scale/) and its disk use (logs/scale/disk.tsv).
"""

from __future__ import annotations

import argparse
import glob
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd  # imported in the functions that use it: the read-only job must not pay for it

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

# Per-model stages in workflow order, with the outputs whose disk use they account for
# (random_init's are temporary: logs/scale/disk.tsv has their peak).
STAGES = {
    "random_init": None,
    "extract": "results/filters",
    "summarize": "results/summaries/*/layers.tsv results/summaries/*/moments.npz",
    "coefficient_range": "results/summaries/*/coefficient_range.tsv",
    "coefficient_histograms": "results/summaries/*/histograms.npz",
}
READ_PASSES = ["summarize", "coefficient_range", "coefficient_histograms"]
# Rule copy_floor's jobs (config extraction.copy_floor_models): the floor of those models'
# extraction jobs, the same checkpoint's 3x3 weights written unprocessed.
COPY_FLOOR = "copy_floor"


def job_table(benchmarks: Path) -> pd.DataFrame:
    """One row per job: stage, wall s, CPU s (user + system; unlike wall time, hardly changed by
    other load on the machine), peak RSS MB (Snakemake's max_rss)."""
    import pandas as pd

    rows = []
    for path in sorted(benchmarks.rglob("*.tsv")):
        stage = path.parent.name if path.parent != benchmarks else path.stem
        b = pd.read_csv(path, sep="\t").iloc[-1]
        rows.append({"stage": stage, "job": path.stem, "wall_s": float(b.s), "cpu_s": float(b.cpu_time),
                     "peak_rss_mb": float(b.max_rss)})
    return pd.DataFrame(rows)


def disk_bytes(patterns: str) -> int:
    total = 0
    for pattern in patterns.split():
        for match in glob.glob(str(REPO / pattern)):
            p = Path(match)
            total += sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
    return total


def read_store(path: str, threads: int, mem_mb: int = 2000) -> int:
    """Decompress and sum the store at ``path`` as the passes read it (rules/summarize.smk's
    threads and mem_mb); returns its filters. A read-only job imports this and the store only,
    as the coefficient jobs import little more (tests/test_layout.py)."""
    from filterlens.extract.store import open_filter_store
    from filterlens.reduce.streaming import rows_per_segment, sum_rows

    store = open_filter_store(path)
    sum_rows(store, threads, rows_per_segment(mem_mb, threads))
    return store.filters.shape[0]


def read_floor(stores: list[str], threads: int, jobs: int = 1) -> pd.DataFrame:
    """Per store (model): seconds to decompress and sum it in this process (floor_s) and as a
    job of its own (job_s), and its filters. The read-only jobs run ``jobs`` at a time, as
    Snakemake runs the passes' jobs on the run's cores. Stores are taken ``jobs`` at a time:
    each is read once untimed, then timed in this process, then the group's read-only jobs run,
    so that both timings read from the page cache even when the stores together exceed memory.
    The modules are imported before any timing."""
    from concurrent.futures import ThreadPoolExecutor

    import pandas as pd

    import filterlens.extract.store  # noqa: F401  (imported once, outside the in-process timings)
    import filterlens.reduce.streaming  # noqa: F401

    def read_only_job(path: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--read-one", path, "--threads", str(threads)], check=True)
        return time.perf_counter() - start

    rows = []
    with ThreadPoolExecutor(jobs) as pool:
        for first in range(0, len(stores), jobs):
            group = stores[first:first + jobs]
            for path in group:
                read_store(path, threads)
                start = time.perf_counter()
                n_filters = read_store(path, threads)
                rows.append({"job": Path(path).stem, "floor_s": time.perf_counter() - start, "n_filters": n_filters})
            for row, seconds in zip(rows[first:], pool.map(read_only_job, group)):
                row["job_s"] = seconds
    return pd.DataFrame(rows)


def stage_table(jobs: pd.DataFrame, floor: pd.DataFrame, large: int, copies: pd.DataFrame) -> pd.DataFrame:
    """Per stage: jobs, wall and CPU s, longest job, peak RSS, disk, throughput, x read floor
    (all jobs, each with its process start; and jobs of stores of >= ``large`` filters only), and
    extraction against the copy-floor jobs of :func:`copy_floor_table` (``copies``)."""
    import pandas as pd

    per_model = jobs[jobs.stage.isin(STAGES)]
    merges = jobs[~jobs.stage.isin([*STAGES, COPY_FLOOR])].assign(stage="merges, statistics, figures, tables")
    table = pd.concat([per_model, merges]).groupby("stage", sort=False).agg(
        jobs=("job", "size"), wall_s=("wall_s", "sum"), cpu_s=("cpu_s", "sum"), longest_job_s=("wall_s", "max"),
        peak_rss_mb=("peak_rss_mb", "max"))
    order = [s for s in STAGES if s in table.index] + [s for s in table.index if s not in STAGES]
    table = table.loc[order].reset_index()
    table["disk_gb"] = [disk_bytes(STAGES[s]) / 1e9 if STAGES.get(s) else float("nan") for s in table.stage]
    n_filters = floor.n_filters.sum()
    table["million_filters_per_s"] = [n_filters / w / 1e6 if s in STAGES else float("nan")
                                      for s, w in zip(table.stage, table.wall_s)]
    big = floor[floor.n_filters >= large]

    def ratio(stage: str, stores: pd.DataFrame, floor_column: str) -> float:
        if stage not in READ_PASSES:
            return float("nan")
        timed = stores.merge(per_model[per_model.stage == stage], on="job")
        return timed.wall_s.sum() / timed[floor_column].sum()

    large_column = f"x_read_floor_{large // 10**6}M"
    table["x_read_floor"] = [ratio(s, floor, "floor_s") for s in table.stage]
    table[large_column] = [ratio(s, big, "floor_s") for s in table.stage]
    table["x_job_floor"] = [ratio(s, floor, "job_s") for s in table.stage]
    table["x_copy_floor"] = [copies.wall_s_extract.sum() / copies.wall_s_floor.sum() if s == "extract" and len(copies)
                             else float("nan") for s in table.stage]
    floor_rows = [
        {"stage": f"copy floor jobs (the extraction of {len(copies)} models)", "jobs": len(copies),
         "wall_s": copies.wall_s_floor.sum(), "cpu_s": copies.cpu_s_floor.sum(),
         "longest_job_s": copies.wall_s_floor.max(), "x_copy_floor": 1.0},
        {"stage": "read floor (decompress + sum)", "jobs": len(floor), "wall_s": floor.floor_s.sum(),
         "million_filters_per_s": n_filters / floor.floor_s.sum() / 1e6, "x_read_floor": 1.0, large_column: 1.0},
        {"stage": "read-only jobs (start, import, decompress + sum)", "jobs": len(floor), "wall_s": floor.job_s.sum(),
         "million_filters_per_s": n_filters / floor.job_s.sum() / 1e6, "x_job_floor": 1.0}]
    return pd.concat([table, pd.DataFrame(floor_rows)], ignore_index=True)


def copy_floor_table(jobs: pd.DataFrame) -> pd.DataFrame:
    """Per model with a copy-floor job: wall and CPU s of its extraction job and of its copy-floor
    job, and their ratio (x_copy_floor)."""
    def stage(name: str) -> pd.DataFrame:
        return jobs[jobs.stage == name][["job", "wall_s", "cpu_s"]]

    table = stage("extract").merge(stage(COPY_FLOOR), on="job", suffixes=("_extract", "_floor"))
    return table.assign(x_copy_floor=table.wall_s_extract / table.wall_s_floor).rename(columns={"job": "model"})


def run_facts(logs: Path) -> list[str]:
    import pandas as pd

    lines = []
    if (logs / "start").exists() and (logs / "end").exists():
        elapsed = int((logs / "end").read_text()) - int((logs / "start").read_text())
        lines.append(f"elapsed (tools/scale_run): {elapsed / 3600:.2f} h ({elapsed} s)")
    if (logs / "disk.tsv").exists():
        disk = pd.read_csv(logs / "disk.tsv", sep="\t")
        lines.append(f"disk: stores {disk.stores_bytes.iloc[-1] / 1e9:.1f} GB at the end; temporary checkpoints "
                     f"at most {disk.checkpoints_bytes.max() / 1e9:.1f} GB at once; all outputs at most "
                     f"{(disk.stores_bytes + disk.results_bytes + disk.checkpoints_bytes).max() / 1e9:.1f} GB")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", default="results/filters/*.zarr")
    parser.add_argument("--benchmarks", type=Path, default=REPO / "benchmarks")
    parser.add_argument("--logs", type=Path, default=REPO / "logs" / "scale")
    parser.add_argument("--threads", type=int, default=1, help="the reduction jobs' threads (rules/summarize.smk)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="read-only jobs at a time: the run's --cores over the jobs' threads")
    parser.add_argument("--large", type=int, default=10**7,
                        help="stores at least this large get their own x read floor column (each job's process "
                             "start-up weighs on the small ones)")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks" / "scale.tsv")
    parser.add_argument("--floor-only", action="store_true",
                        help="only the read floor and the read-only jobs of --stores (any stores, no run needed)")
    parser.add_argument("--read-one", help=argparse.SUPPRESS)  # the read-only job of one store
    args = parser.parse_args()
    if args.read_one:
        read_store(args.read_one, args.threads)
        return
    stores = sorted(glob.glob(str(REPO / args.stores)))
    if not stores:
        sys.exit(f"scale_report: no stores match {args.stores}. Fix: run tools/scale_run (make scale) first.")
    floor = read_floor(stores, args.threads, args.jobs)
    if args.floor_only:
        print(floor.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        print(f"\n{len(stores)} stores, {floor.n_filters.sum():,} filters: read floor {floor.floor_s.sum():.2f} s, "
              f"read-only jobs {floor.job_s.sum():.2f} s ({floor.job_s.sum() / floor.floor_s.sum():.2f}x)")
        return
    jobs = job_table(args.benchmarks)
    copies = copy_floor_table(jobs)
    table = stage_table(jobs, floor, args.large, copies)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, sep="\t", index=False, float_format="%.4g")
    copies.to_csv(args.out.with_name(f"{args.out.stem}_copy_floor.tsv"), sep="\t", index=False, float_format="%.4g")
    print(f"{len(stores)} stores, {floor.n_filters.sum():,} filters, {(floor.n_filters >= args.large).sum()} "
          f"of them with >= {args.large:,}\n")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    if len(copies):
        print("\nextraction jobs against their copy floor:")
        print(copies.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    for line in run_facts(args.logs):
        print(line)


if __name__ == "__main__":
    main()
