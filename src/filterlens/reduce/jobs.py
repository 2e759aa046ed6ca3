"""Which models a job of the three passes reads: one (rules summarize_model, coefficient_range,
coefficient_histograms) or several in sheet order (config analysis.models_per_job; the batch
rules of rules/summarize.smk, which writes each pass once over ``pass_rules``). Every job
starts a Python process and imports numpy, Zarr and Dask (docs/benchmarks.md, "Imports"); a job
of several models pays it once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
class PassRule:
    """One rule of a pass over the filter stores (rules/summarize.smk): the per-model rule, whose
    files are patterns in ``{model}`` and whose wildcard may take ``models`` (all of the pass's
    models, or none when they run in batches), or the rule of batch ``batch``, whose files are
    lists over its ``models`` in sheet order. Logs and benchmarks go under ``step``'s folders."""

    name: str
    step: str
    models: tuple[str, ...]
    batch: int | None = None

    def files(self, pattern: str) -> str | list[str]:
        """``pattern`` (a path with ``{model}``) for the per-model rule; its batch's paths otherwise."""
        if self.batch is None:
            return pattern
        return [pattern.format(model=model) for model in self.models]

    @property
    def log(self) -> str:
        return self._under("logs", "log")

    @property
    def benchmark(self) -> str:
        return self._under("benchmarks", "tsv")

    def _under(self, root: str, suffix: str) -> str:
        if self.batch is None:
            return f"{root}/{self.step}/{{model}}.{suffix}"
        return f"{root}/{self.step}/batches/{self.batch}.{suffix}"

    @property
    def runtime(self) -> int:
        """Minutes for the job (SLURM's -t): a model's, times the batch's models."""
        return PASS_RUNTIME_PER_MODEL * (1 if self.batch is None else len(self.models))

    def of_models(self, value: Callable[[list[str]], Any]) -> Any:
        """A param from the job's models in order: ``value(models)`` for a batch, a function of the
        wildcards giving ``value([model])`` for the per-model rule."""
        if self.batch is None:
            return lambda wildcards: value([wildcards.model])
        return value(list(self.models))


def pass_rules(step: str, per_model_name: str, models: Sequence[str], models_per_job: int) -> list[PassRule]:
    """A pass's rules over ``models``: the per-model rule ``per_model_name`` (always defined, so
    that profiles naming it stay valid; its wildcard takes no model when they run in batches),
    then ``{step}_batch_N`` for each batch of ``models_per_job`` models (none for 1)."""
    batches = model_batches(models, models_per_job)
    per_model = PassRule(per_model_name, step, () if batches else tuple(models))
    return [per_model] + [PassRule(f"{step}_batch_{i}", step, tuple(batch), i) for i, batch in enumerate(batches)]


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
