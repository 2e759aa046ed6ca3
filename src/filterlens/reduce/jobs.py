"""Which models a job of the three passes reads: one (rules summarize_model, coefficient_range,
coefficient_histograms) or several in sheet order (config analysis.models_per_job; the batch
rules of rules/summarize.smk). Every job starts a Python process and imports numpy, Zarr and
Dask, about 0.3-0.7 s (docs/benchmarks.md, "Imports"); a job of several models pays it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Each job of the passes (rules/summarize.smk): one thread (jobs side by side overlap each other's
# start-up), the memory its segments are sized from, and its wall time per model (SLURM's -t).
# The benchmark tools time the passes with the same values.
PASS_THREADS = 1
PASS_MEM_MB = 2000
PASS_RUNTIME_PER_MODEL = 60


def model_batches(models: Sequence[str], models_per_job: int) -> list[list[str]]:
    """``models`` in order, ``models_per_job`` at a time (the last batch may be smaller);
    no batches when each model has a job of its own (``models_per_job`` 1)."""
    if models_per_job < 1:
        raise ValueError(f"models_per_job must be at least 1, not {models_per_job}")
    if models_per_job == 1:
        return []
    return [list(models[i:i + models_per_job]) for i in range(0, len(models), models_per_job)]


@dataclass(frozen=True)
class ModelFiles:
    """One model of a job: its id, its sheet dataset, and its file of each named input and output."""

    model_id: str
    dataset: str
    inputs: dict[str, str]
    outputs: dict[str, str]


def job_models(snakemake: Any, inputs: Sequence[str] = (), outputs: Sequence[str] = ()) -> list[ModelFiles]:
    """The models of a pass's job, from its ``params.models`` and ``params.datasets`` (lists, one
    entry per model) and its named ``inputs`` and ``outputs`` (one file per model, in the same
    order: a file pattern of a per-model rule, an ``expand`` of a batch rule)."""
    models, datasets = list(snakemake.params.models), list(snakemake.params.datasets)
    files = {("in", name): _paths(getattr(snakemake.input, name)) for name in inputs}
    files |= {("out", name): _paths(getattr(snakemake.output, name)) for name in outputs}
    for (_, name), paths in files.items():
        if len(paths) != len(models):
            raise ValueError(f"rule {snakemake.rule}: {len(paths)} {name} file(s) for {len(models)} model(s)")
    return [ModelFiles(model, dataset,
                       {name: files["in", name][i] for name in inputs},
                       {name: files["out", name][i] for name in outputs})
            for i, (model, dataset) in enumerate(zip(models, datasets, strict=True))]


def _paths(files: Any) -> list[str]:
    return [files] if isinstance(files, str) else [str(f) for f in files]
