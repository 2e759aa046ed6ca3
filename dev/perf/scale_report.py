"""The scale run's table: per stage the wall time, peak RSS per job, disk and throughput
against the read floor, from Snakemake's benchmark files (benchmarks/<stage>/...).

The table is rule scale_report of dev/perf/Snakefile (dev/perf/Snakefile), the
last job of the run, which gives it the workflow's own plan: the stores and the models each
batch job read. By hand, on any stores, only the read floor and the read-only jobs:

    python dev/perf/scale_report.py --floor-only [--stores 'results/filters/*.zarr']
                                    [--models-per-job N] [--threads 1] [--jobs 2]

The read floor is measured here, on the run's own stores: decompress and sum each store as
the passes read it (dev/perf/floors.py sum_rows, the reduction jobs' threads),
in this one process. Each reduction job also starts a Python process and imports numpy, Zarr
and Dask's scheduler (docs/benchmarks.md, "Imports"), once for the stores it reads (one, or a
batch of the config's analysis.models_per_job): x_read_floor is over all jobs,
x_read_floor_10M over the jobs whose stores hold at least 10M filters on average (a job of
one store: that store), and x_job_floor compares every job with a job that only reads the
same stores: a fresh process that imports what the reduction jobs import, then decompresses
and sums the stores (timed from its start to its exit, as Snakemake times a job; --jobs at a
time, as the run's cores run the passes' jobs).
The read-only jobs run once alone (their x_read_floor: what a job's start-up adds to the read)
and once --jobs at a time, as the passes ran; reads side by side also slow each other on the
machine's cores, which the read floor side by side (the same reads in this process, a thread
per job) measures without any start-up.
Per-model stages run one job per model or batch; their wall time is the sum over jobs (their
jobs take one thread each and run two at a time on 2 cores, so a stage's elapsed time is about
half the sum).
The extraction jobs of the models of config perf.copy_floor_models are compared with
rule copy_floor's jobs on the same checkpoints (x_copy_floor; per model in
results/benchmarks/scale_copy_floor.tsv).
The rule writes results/benchmarks/scale.tsv and logs it with the run's elapsed time (from
logs/scale/start, which dev/perf/scale_run records, to the report's start) and its disk use
(logs/scale/disk.tsv). Paths are relative to the working directory, the run's.
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

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "dev" / "perf"))  # floors

from filterlens.reduce.jobs import PASS_MEM_MB, PASS_THREADS, model_batches  # noqa: E402  (plain Python: a read-only job loads nothing more)

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
# Rule copy_floor's jobs (config perf.copy_floor_models): the floor of those models'
# extraction jobs, the same checkpoint's 3x3 weights written unprocessed.
COPY_FLOOR = "copy_floor"


def job_table(benchmarks: Path) -> pd.DataFrame:
    """One row per job: stage, job (a model id, or batches/N for a batch rule's job), wall s, CPU
    s (user + system; unlike wall time, hardly changed by other load on the machine), peak RSS MB
    (Snakemake's max_rss)."""
    import pandas as pd

    rows = []
    for path in sorted(benchmarks.rglob("*.tsv")):
        relative = path.relative_to(benchmarks).with_suffix("")
        stage = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        b = pd.read_csv(path, sep="\t").iloc[-1]
        rows.append({"stage": stage, "job": "/".join(relative.parts[1:]) or relative.stem, "wall_s": float(b.s),
                     "cpu_s": float(b.cpu_time), "peak_rss_mb": float(b.max_rss)})
    return pd.DataFrame(rows)


def of_this_layout(jobs: pd.DataFrame, batches: dict[str, list[list[str]]]) -> pd.DataFrame:
    """``jobs`` without the reading passes' benchmark files that a run with another
    analysis.models_per_job left (per-model files where the config makes batches, or the
    other way round)."""
    def fits(stage: str, job: str) -> bool:
        if stage not in READ_PASSES:
            return True
        if job.startswith("batches/"):
            return int(job.split("/")[1]) < len(batches[stage])
        return not batches[stage]

    return jobs[[fits(stage, job) for stage, job in zip(jobs.stage, jobs.job)]]


def job_stores(jobs: pd.DataFrame, batches: dict[str, list[list[str]]]) -> pd.DataFrame:
    """The reading passes' jobs (of :func:`of_this_layout`) with the models each one reads
    (column models, a tuple)."""
    def models(stage: str, job: str) -> tuple[str, ...]:
        if job.startswith("batches/"):
            return tuple(batches[stage][int(job.split("/")[1])])
        return (job,)

    reading = jobs[jobs.stage.isin(READ_PASSES)].copy()
    reading["models"] = [models(stage, job) for stage, job in zip(reading.stage, reading.job)]
    return reading


def disk_bytes(patterns: str) -> int:
    total = 0
    for pattern in patterns.split():
        for match in glob.glob(pattern):
            p = Path(match)
            total += sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
    return total


def read_stores(paths: list[str], threads: int, mem_mb: int = PASS_MEM_MB) -> list[int]:
    """Decompress and sum the stores at ``paths`` one after another, as the passes read them
    (with their jobs' mem_mb, filterlens.reduce.jobs); returns their filters. A read-only job imports
    this and the store only, as the coefficient jobs import little more (tests/meta/test_layout.py)."""
    from filterlens.extract.store import open_filter_store
    from filterlens.reduce.streaming import rows_per_segment
    from floors import sum_rows

    counts = []
    for path in paths:
        store = open_filter_store(path)
        sum_rows(store, threads, rows_per_segment(mem_mb, threads))
        counts.append(store.filters.shape[0])
    return counts


def read_floor(groups: list[list[str]], threads: int, jobs: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The read floor per store: seconds to decompress and sum it in this process (floor_s), and
    its filters; and per group of stores (the stores a job reads) the seconds of a read-only job
    of its own, ``jobs`` at a time as Snakemake runs the passes' jobs on the run's cores (job_s),
    and alone (job_s_alone: only its start-up beyond the read), and of the same reads in this
    process, ``jobs`` groups at a time in as many threads (floor_side_s: what reads side by side
    cost each other on the machine's cores, without any start-up). Groups are taken ``jobs`` at a
    time: each of their stores is read once untimed, then (the first time it is met) timed in
    this process, then the groups are read side by side in this process, then as read-only jobs
    together and one by one, so that every timing reads from the page cache even when the
    stores together exceed memory. The modules are imported before any timing."""
    from concurrent.futures import ThreadPoolExecutor

    import pandas as pd

    import filterlens.extract.store  # noqa: F401  (imported once, outside the in-process timings)
    import filterlens.reduce.streaming  # noqa: F401

    def read_in_process(paths: list[str]) -> float:
        start = time.perf_counter()
        read_stores(paths, threads)
        return time.perf_counter() - start

    def read_only_job(paths: list[str]) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--threads", str(threads), "--read", *paths], check=True)
        return time.perf_counter() - start

    stores: dict[str, dict] = {}
    read_jobs = []
    with ThreadPoolExecutor(jobs) as pool:
        for first in range(0, len(groups), jobs):
            chunk = groups[first:first + jobs]
            for path in dict.fromkeys(p for group in chunk for p in group):
                read_stores([path], threads)
                if path not in stores:
                    start = time.perf_counter()
                    n_filters = read_stores([path], threads)[0]
                    stores[path] = {"job": Path(path).stem, "floor_s": time.perf_counter() - start,
                                    "n_filters": n_filters}
            side_by_side = list(pool.map(read_in_process, chunk))
            together = list(pool.map(read_only_job, chunk))
            for group, floor_side, seconds in zip(chunk, side_by_side, together):
                read_jobs.append({"models": tuple(Path(p).stem for p in group), "job_s": seconds,
                                  "job_s_alone": read_only_job(group), "floor_side_s": floor_side})
    return pd.DataFrame(list(stores.values())), pd.DataFrame(read_jobs)


def stage_table(jobs: pd.DataFrame, floor: pd.DataFrame, read_jobs: pd.DataFrame, reading: pd.DataFrame,
                large: int, copies: pd.DataFrame) -> pd.DataFrame:
    """Per stage: jobs, wall and CPU s, longest job, peak RSS, disk, throughput, x read floor
    (all jobs, each with its process start; and jobs whose stores hold >= ``large`` filters on
    average: a batch mixes sizes, so hardly any batch has only large stores),
    x the read-only jobs of the same stores (``read_jobs``; ``reading``: the reading passes' jobs
    with their models, :func:`job_stores`), and extraction against the copy-floor jobs of
    :func:`copy_floor_table` (``copies``)."""
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
    floor_s = dict(zip(floor.job, floor.floor_s))
    filters = dict(zip(floor.job, floor.n_filters))
    job_s = dict(zip(read_jobs.models, read_jobs.job_s))

    def ratio(stage: str, over, only_large: bool = False) -> float:
        timed = reading[(reading.stage == stage) & reading.models.map(lambda ms: all(m in floor_s for m in ms))]
        if only_large:
            timed = timed[timed.models.map(lambda ms: sum(filters[m] for m in ms) >= large * len(ms))]
        if stage not in READ_PASSES or timed.empty:
            return float("nan")
        return timed.wall_s.sum() / sum(over(models) for models in timed.models)

    def read_floor_of(models) -> float:
        return sum(floor_s[m] for m in models)

    large_column = f"x_read_floor_{large // 10**6}M"
    table["x_read_floor"] = [ratio(s, read_floor_of) for s in table.stage]
    table[large_column] = [ratio(s, read_floor_of, only_large=True) for s in table.stage]
    table["x_job_floor"] = [ratio(s, lambda models: job_s[models]) for s in table.stage]
    table["x_copy_floor"] = [copies.wall_s_extract.sum() / copies.wall_s_floor.sum() if s == "extract" and len(copies)
                             else float("nan") for s in table.stage]
    # The read-only jobs of the first pass's stores: what its job start-up adds to the read.
    wanted = set(reading[reading.stage == READ_PASSES[0]].models)
    first = read_jobs[read_jobs.models.map(lambda models: models in wanted)]
    first = first if len(first) else read_jobs
    floor_rows = [
        {"stage": f"copy floor jobs (the extraction of {len(copies)} models)", "jobs": len(copies),
         "wall_s": copies.wall_s_floor.sum(), "cpu_s": copies.cpu_s_floor.sum(),
         "longest_job_s": copies.wall_s_floor.max(), "x_copy_floor": 1.0},
        {"stage": "read floor (decompress + sum)", "jobs": len(floor), "wall_s": floor.floor_s.sum(),
         "million_filters_per_s": n_filters / floor.floor_s.sum() / 1e6, "x_read_floor": 1.0, large_column: 1.0},
        {"stage": "read floor side by side (this process, a thread per job)", "jobs": len(first),
         "wall_s": first.floor_side_s.sum(), "million_filters_per_s": n_filters / first.floor_side_s.sum() / 1e6,
         "x_read_floor": first.floor_side_s.sum() / sum(read_floor_of(models) for models in first.models)},
        {"stage": "read-only jobs alone (start, import, decompress + sum)", "jobs": len(first),
         "wall_s": first.job_s_alone.sum(), "million_filters_per_s": n_filters / first.job_s_alone.sum() / 1e6,
         "x_read_floor": first.job_s_alone.sum() / sum(read_floor_of(models) for models in first.models)},
        {"stage": "read-only jobs side by side, as the passes ran", "jobs": len(first), "wall_s": first.job_s.sum(),
         "million_filters_per_s": n_filters / first.job_s.sum() / 1e6,
         "x_read_floor": first.job_s.sum() / sum(read_floor_of(models) for models in first.models),
         "x_job_floor": 1.0}]
    return pd.concat([table, pd.DataFrame(floor_rows)], ignore_index=True)


def copy_floor_table(jobs: pd.DataFrame) -> pd.DataFrame:
    """Per model with a copy-floor job: wall and CPU s of its extraction job and of its copy-floor
    job, and their ratio (x_copy_floor)."""
    def stage(name: str) -> pd.DataFrame:
        return jobs[jobs.stage == name][["job", "wall_s", "cpu_s"]]

    table = stage("extract").merge(stage(COPY_FLOOR), on="job", suffixes=("_extract", "_floor"))
    return table.assign(x_copy_floor=table.wall_s_extract / table.wall_s_floor).rename(columns={"job": "model"})


def run_facts(logs: Path, end: float) -> list[str]:
    """The run's elapsed time from ``logs``/start to ``end`` (seconds since the epoch), and its disk use."""
    import pandas as pd

    lines = []
    if (logs / "start").exists():
        elapsed = int(end) - int((logs / "start").read_text())
        lines.append(f"elapsed (dev/perf/scale_run, to the report): {elapsed / 3600:.2f} h ({elapsed} s)")
    if (logs / "disk.tsv").exists():
        disk = pd.read_csv(logs / "disk.tsv", sep="\t")
        lines.append(f"disk: stores {disk.stores_bytes.iloc[-1] / 1e9:.1f} GB at the end; temporary checkpoints "
                     f"at most {disk.checkpoints_bytes.max() / 1e9:.1f} GB at once; all outputs at most "
                     f"{(disk.stores_bytes + disk.results_bytes + disk.checkpoints_bytes).max() / 1e9:.1f} GB")
    return lines


def report(stores: list[str], batches: dict[str, list[list[str]]], out: Path, copies_out: Path,
           benchmarks: Path = Path("benchmarks"), logs: Path = Path("logs") / "scale", threads: int = PASS_THREADS,
           jobs: int = 2, large: int = 10**7, end: float | None = None) -> str:
    """Write the scale table (``out``) and the extraction jobs against their copy floor
    (``copies_out``) of a run whose reading passes' batch jobs read ``batches`` (per pass, the
    models of each batches/N job; none where each model has a job of its own); returns the
    text to show. ``end``: the run's end (default now)."""
    end = time.time() if end is None else end
    job_rows = of_this_layout(job_table(benchmarks), batches)
    reading = job_stores(job_rows, batches)
    by_model = {Path(p).stem: p for p in stores}
    groups = [[by_model[m] for m in models] for models in dict.fromkeys(reading.models)
              if all(m in by_model for m in models)]
    grouped = {p for group in groups for p in group}
    groups += [[p] for p in stores if p not in grouped]  # every store has its read floor
    floor, read_jobs = read_floor(groups, threads, jobs)
    copies = copy_floor_table(job_rows)
    table = stage_table(job_rows, floor, read_jobs, reading, large, copies)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, sep="\t", index=False, float_format="%.4g")
    copies.to_csv(copies_out, sep="\t", index=False, float_format="%.4g")
    lines = [f"{len(floor)} stores, {floor.n_filters.sum():,} filters, {(floor.n_filters >= large).sum()} "
             f"of them with >= {large:,}; {len(read_jobs)} read-only jobs\n",
             table.to_string(index=False, float_format=lambda v: f"{v:.3g}")]
    if len(copies):
        lines += ["\nextraction jobs against their copy floor:",
                  copies.to_string(index=False, float_format=lambda v: f"{v:.3g}")]
    return "\n".join(lines + run_facts(logs, end))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--floor-only", action="store_true",
                        help="only the read floor and the read-only jobs of --stores (any stores, no run needed); "
                             "the whole table is rule scale_report of dev/perf/Snakefile")
    parser.add_argument("--stores", default="results/filters/*.zarr")
    parser.add_argument("--threads", type=int, default=PASS_THREADS,
                        help="the reduction jobs' threads (filterlens.reduce.jobs)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="read-only jobs at a time: the run's --cores over the jobs' threads")
    parser.add_argument("--models-per-job", type=int, default=1,
                        help="stores per read-only job (config analysis.models_per_job)")
    parser.add_argument("--read", nargs="+", help=argparse.SUPPRESS)  # the read-only job of these stores
    args = parser.parse_args()
    if args.read:
        read_stores(args.read, args.threads)
        return
    if not args.floor_only:
        sys.exit("scale_report: the scale table is rule scale_report of the run (it reads the workflow's own plan). "
                 "Fix: run make scale, or .venv/bin/snakemake -s dev/perf/Snakefile --configfile "
                 "dev/perf/config/scale.yaml --forcerun scale_report; or pass --floor-only for the read floor of "
                 "--stores alone.")
    stores = sorted(glob.glob(args.stores))
    if not stores:
        sys.exit(f"scale_report: no stores match {args.stores}. Fix: run make scale first, or name stores with "
                 "--stores.")
    floor, read_jobs = read_floor(model_batches(stores, args.models_per_job) or [[p] for p in stores],
                                  args.threads, args.jobs)
    print(floor.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"\n{len(stores)} stores, {floor.n_filters.sum():,} filters: read floor {floor.floor_s.sum():.2f} s, "
          f"{len(read_jobs)} read-only jobs {read_jobs.job_s_alone.sum():.2f} s one at a time "
          f"({read_jobs.job_s_alone.sum() / floor.floor_s.sum():.2f}x), {read_jobs.job_s.sum():.2f} s "
          f"{args.jobs} at a time ({read_jobs.job_s.sum() / floor.floor_s.sum():.2f}x; the same reads "
          f"{args.jobs} at a time in this process {read_jobs.floor_side_s.sum():.2f} s)")


if __name__ == "__main__":
    main()
