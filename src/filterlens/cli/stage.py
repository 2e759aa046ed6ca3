"""``filterlens stage``: what a run needs before it starts (filterlens.report.staging).

    filterlens stage                                  the default run (config/config.yaml)
    filterlens stage --configfile config/paper.yaml   the paper's zoo

Every file to stage (RobustBench checkpoints, timm's Hugging Face cache entries, the CIFAR data, the
filter database's files), present or missing and where it goes; the bytes to download; the disk the
run needs; the training jobs and their cost; whether the network reaches the servers. The config is
loaded as the workflow loads it: the workflow's ``config/config.yaml``, then each ``--configfile``,
then ``--config``; relative paths resolve from the working directory, else from the workflow's
directory (docs/runs.md). Exit status 1 when something is missing, 2 when the config is bad.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

DEFAULT_CONFIG = Path("config") / "config.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--configfile", nargs="+", action="extend", default=[], metavar="FILE",
                        help="config files merged over config/config.yaml, later ones win (as snakemake's)")
    parser.add_argument("--config", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="single settings over the config files; keys may be dotted (figures.entropy=scaled)")
    parser.add_argument("--workflow-dir", default=None, metavar="DIR",
                        help="the filterlens checkout whose Snakefile runs (default: the working directory, "
                             "else FILTERLENS_WORKFLOW)")
    parser.add_argument("--timeout", type=float, default=1.5, metavar="SECONDS",
                        help="how long the network check waits for each server (default 1.5)")
    parser.add_argument("--throughput", default=None, metavar="FILE.tsv",
                        help="measured training speed that turns the training FLOPs into hours (default: "
                             "results/benchmarks/training.tsv, which dev/perf/benchmark_training.py writes in the "
                             "checkout, if present)")


def _workflow_dir(given: str | None) -> Path | None:
    for candidate in (given, ".", os.environ.get("FILTERLENS_WORKFLOW")):
        if candidate and (Path(candidate) / DEFAULT_CONFIG).is_file():
            return Path(candidate)
    return None


def _overrides(entries: list[str]) -> dict:
    import yaml

    overrides = {}
    for entry in entries:
        key, separator, value = entry.partition("=")
        if not separator or not key:
            raise ValueError(f"--config {entry}: expected KEY=VALUE (e.g. figures.entropy=scaled)")
        overrides[key] = yaml.safe_load(value) if value else None
    return overrides


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    workflow_dir = _workflow_dir(args.workflow_dir)
    if workflow_dir is None:
        print(f"filterlens stage: no {DEFAULT_CONFIG} in {args.workflow_dir or 'the working directory'}. Fix: pass "
              "--workflow-dir /path/to/filterlens (the checkout with the Snakefile), or set FILTERLENS_WORKFLOW.",
              file=sys.stderr)
        return 2

    from filterlens.config.sheet import SheetError, read_sheet
    from filterlens.config.validation import ConfigError, load_run_config
    from filterlens.report.staging import plan_run

    def resolve(path: str) -> str:  # the workflow's rule (rules/common.smk, workflow_path)
        in_workflow = workflow_dir / path
        return path if os.path.isabs(path) or os.path.exists(path) or not in_workflow.exists() else str(in_workflow)

    try:
        config = load_run_config(workflow_dir, args.configfile, _overrides(args.config))
        sheet_path = resolve(config["sheet"])
        sheet = read_sheet(sheet_path)
    except (ConfigError, SheetError, ValueError) as error:
        print(f"filterlens stage: {error}", file=sys.stderr)
        return 2
    throughput = Path(args.throughput or "results/benchmarks/training.tsv")
    if args.throughput and not throughput.is_file():
        print(f"filterlens stage: --throughput {throughput} does not exist. Fix: run dev/perf/benchmark_training.py on "
              "the training device, or leave --throughput out", file=sys.stderr)
        return 2
    from filterlens.train.cost import read_throughputs

    rows = read_throughputs(throughput) if throughput.is_file() else []
    for number, row in enumerate(rows, start=2):
        try:
            float(row["images_per_s"]) * float(row["flops_per_image"]) * len(row["device"] + row["options"])
        except (KeyError, TypeError, ValueError):
            print(f"filterlens stage: {throughput}, line {number}: not a row of dev/perf/benchmark_training.py "
                  "(device, options, images_per_s, flops_per_image). Fix: run dev/perf/benchmark_training.py again, "
                  "or pass another --throughput", file=sys.stderr)
            return 2
    plan = plan_run(config, sheet, resolve, timeout_s=args.timeout, throughputs=rows)
    print(f"run of {sheet_path} ({len(sheet)} models), working directory {os.getcwd()}, workflow {workflow_dir}")
    print("\n".join(plan.lines()))
    print(f"({time.monotonic() - started:.1f} s)")
    return 1 if plan.missing else 0
