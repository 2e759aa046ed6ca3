"""filterlens from Python, without Snakemake: analyse one model in memory, place it against a
reference bundle, or load a run's results.

    import filterlens
    layers = filterlens.analyze(model)               # a torch.nn.Module (or a checkpoint path)
    table = filterlens.place(model, "ref.tar.gz")    # closer to the robust or the normal pool?
    results = filterlens.load_results("my-run")      # a run's directory (or its results/)
    results.layers, results.bases, results.kl_by_depth, results.summaries["m"]["spectra"]

:func:`analyze` takes the workflow's own path: the extraction of rule extract_filters
(filterlens.extract.weights) into a temporary filter store, and pass 1 of rule summarize_model
(filterlens.reduce.passes.summarize) over it, with the config's defaults (BatchNorm folded,
depth by graph level; docs/method.md). Its table is the run's ``results/summaries/<m>/layers.tsv``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

# The memory of rule summarize_model's jobs (rules/summarize.smk): it bounds the rows a task
# reads at once; the table does not depend on it (docs/design.md).
SUMMARY_MEM_MB = 2000


@lru_cache(maxsize=None)
def _config_defaults() -> dict[str, dict[str, Any]]:
    from filterlens.config.validation import schema_defaults

    return {section: schema_defaults(section) for section in ("extraction", "analysis")}


def analyze(model, *, image_size: int | None = None, model_id: str | None = None,
            fold_batchnorm: bool | None = None, depth_definition: str | None = None,
            chunk_rows: int | None = None, threads: int = 1) -> pd.DataFrame:
    """The per-layer table of every 3x3 layer of ``model``: the columns of the workflow's
    ``results/summaries/<model>/layers.tsv`` (filters, sparsity, variance entropy scaled and
    unscaled, orthogonality, L1/L2 ratio, high-frequency share, depth and depth group).

    ``model`` is a ``torch.nn.Module`` (any device; its weights are read, not changed) or the
    path of a filterlens checkpoint (``data/models/<model>.pt``), whose model_id and dataset's
    image size are then the defaults. ``image_size`` (default 32) matters only for a model that
    torch.fx cannot trace (its forward runs on the ``meta`` device to find the convs). The
    options default to the config's (extraction.fold_batchnorm, extraction.chunk_rows,
    analysis.depth_definition).
    """
    from filterlens.reduce.passes import summarize
    from filterlens.reduce.streaming import rows_per_segment

    model, facts = _as_module(model)
    with _filter_store(model, facts, image_size, model_id, fold_batchnorm, depth_definition, chunk_rows) as store:
        table, _ = summarize(store, threads, rows_per_segment(SUMMARY_MEM_MB, threads))
    return table


@contextmanager
def _filter_store(model, facts: dict[str, Any], image_size: int | None, model_id: str | None,
                  fold_batchnorm: bool | None, depth_definition: str | None, chunk_rows: int | None) -> Iterator[Any]:
    """The filter store of rule extract_filters for ``model``, in a temporary folder while the
    context lasts, with its depths by ``depth_definition`` (options: the config's defaults)."""
    import torch

    from filterlens.extract.store import FilterStoreWriter, open_filter_store, with_depth_definition
    from filterlens.extract.weights import iter_layer_rows, plan_extraction

    defaults = _config_defaults()
    fold = defaults["extraction"]["fold_batchnorm"] if fold_batchnorm is None else fold_batchnorm
    definition = depth_definition or defaults["analysis"]["depth_definition"]
    size = image_size or facts.get("image_size", 32)
    model_id = model_id or facts.get("model_id", "model")
    plan = plan_extraction(model, torch.empty(1, 3, size, size, device="meta"), fold_batchnorm=fold)
    if not plan.layers:
        raise ValueError(f"{model_id}: the model executes no 3x3 convolution; there is nothing to analyse")
    attrs = {"model_id": model_id, "dataset": facts.get("dataset"), "depth_method": plan.depth_method,
             "depth_definition": plan.depth_definition, "max_conv_depth": plan.max_conv_depth,
             "max_conv_depths": plan.max_conv_depths, "fold_batchnorm": fold}
    with tempfile.TemporaryDirectory(prefix="filterlens-") as folder:
        path = Path(folder) / "filters.zarr"
        with FilterStoreWriter(path, plan.n_filters, chunk_rows or defaults["extraction"]["chunk_rows"],
                               attrs) as writer:
            for layer, rows in iter_layer_rows(model, plan):
                writer.write_layer(layer, rows)
        yield with_depth_definition(open_filter_store(path), definition)


def place(model, bundle: str | os.PathLike, *, dataset: str | None = None, model_id: str | None = None,
          image_size: int | None = None, threads: int = 1) -> pd.DataFrame:
    """``model`` placed against the reference bundle at ``bundle`` (its ``.sha256`` beside it;
    docs/bundle.md): the placement table of rule placement, one row per depth group ('all'
    first) with the KL to the bundle's robust and normal pools of the model's dataset, the
    bundle's noise level and the pool it is closer to beyond that level ("within noise",
    "no noise level", "no filters" otherwise; docs/method.md §4).

    ``model`` is what :func:`analyze` takes. Its filters are extracted with the bundle's
    definitions (``fold_batchnorm``, ``depth_definition``), projected on the bundle's basis and
    counted over its range and bins. ``dataset`` defaults to the checkpoint's, else to the
    bundle's one dataset; the model id to the checkpoint's, else "model"."""
    from filterlens.analyse.bundle import read_bundle
    from filterlens.analyse.placement import placement_table
    from filterlens.config.datasets import dataset_info
    from filterlens.reduce.passes import coefficient_histograms_with_outside, summarize
    from filterlens.reduce.streaming import rows_per_segment

    reference = read_bundle(bundle)
    module, facts = _as_module(model)
    datasets = list(dict.fromkeys(reference.pools.dataset))
    dataset = dataset or facts.get("dataset") or (datasets[0] if len(datasets) == 1 else None)
    if dataset not in datasets:
        given = f"dataset {dataset!r}" if dataset else "no dataset"
        raise ValueError(f"{bundle} holds pools of {', '.join(map(repr, datasets))}; the model has {given}. "
                         f"Fix: pass dataset= one of them (the model's training data)")
    model_id = model_id or facts.get("model_id", "model")
    definitions = reference.manifest["definitions"]
    size = image_size or facts.get("image_size") or dataset_info(dataset).image_size
    max_rows = rows_per_segment(SUMMARY_MEM_MB, threads)
    with _filter_store(module, facts, size, model_id, definitions["fold_batchnorm"],
                       definitions["depth_definition"], None) as store:
        layers, _ = summarize(store, threads, max_rows)
        counts, outside = coefficient_histograms_with_outside(store, reference.basis, reference.low, reference.high,
                                                              reference.bins, threads, max_rows)
    return placement_table(reference, {model_id: dataset}, {model_id: counts}, {model_id: outside},
                           {model_id: layers})


def _as_module(model) -> tuple[Any, dict[str, Any]]:
    """``model`` as a module, and what its checkpoint says of it (nothing for a module)."""
    if isinstance(model, (str, os.PathLike)):
        from filterlens.acquire.checkpoint import build_model, load_checkpoint
        from filterlens.config.datasets import dataset_info

        checkpoint = load_checkpoint(model)
        return build_model(checkpoint), {"model_id": checkpoint.model_id, "dataset": checkpoint.dataset,
                                         "image_size": dataset_info(checkpoint.dataset).image_size}
    from torch import nn

    if not isinstance(model, nn.Module):
        raise TypeError(f"analyze takes a torch.nn.Module or a checkpoint path, not a {type(model).__name__}")
    return model, {}


# --- a run's results -------------------------------------------------------------------------

@dataclass
class Results:
    """The tables of a results directory (docs/outputs.md), read as DataFrames.

    ``analysis`` and ``tables``: every ``results/analysis/*.tsv`` and ``results/tables/*.tsv``
    by file name (``bases``, ``kl_by_depth``, ``quality_by_depth``, ``stats_quality``,
    ``correlations``, ...; ``models``, ``findings``, ``table_pairs``, ...); ``summaries``: per
    model, its ``results/summaries/<model>/*.tsv`` (``layers``, ``spectra``, ``perturbation``,
    ``coefficient_range``); ``metrics``: per model, ``results/metrics/<model>.tsv``;
    ``provenance``: ``results/provenance/provenance.json`` (None if absent). A name of
    ``analysis`` or ``tables`` is also an attribute: ``results.kl_by_depth``.

    ``missing``: the tables the run made that are gone, by path under the run's directory, with
    the rule that made each (from Snakemake's records, ``.snakemake/metadata``); asking for
    one raises an error that names the file, the rule and the command that makes it again.
    """

    path: Path
    analysis: dict[str, pd.DataFrame] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    summaries: dict[str, dict[str, pd.DataFrame]] = field(default_factory=dict)
    metrics: dict[str, pd.DataFrame] = field(default_factory=dict)
    provenance: dict[str, Any] | None = None
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        return sorted(self.summaries)

    @property
    def layers(self) -> pd.DataFrame:
        """Every model's layer table (results/analysis/layers.tsv, or the summaries' together)."""
        if "layers" in self.analysis:
            return self.analysis["layers"]
        parts = [s["layers"] for s in self.summaries.values() if "layers" in s]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def __getattr__(self, name: str) -> pd.DataFrame:
        for group in ("analysis", "tables"):
            tables = self.__dict__.get(group) or {}
            if name in tables:
                return tables[name]
        for group in ("analysis", "tables"):
            if f"results/{group}/{name}.tsv" in (self.__dict__.get("missing") or {}):
                raise AttributeError(self.missing_message(f"results/{group}/{name}.tsv"))
        raise AttributeError(f"{type(self).__name__} has no table {name!r}; analysis: "
                             f"{', '.join(sorted(self.__dict__.get('analysis') or {}))}; tables: "
                             f"{', '.join(sorted(self.__dict__.get('tables') or {}))}")

    def missing_message(self, path: str) -> str:
        """What to say of the run's table ``path`` (relative to the run's directory) that is gone."""
        run = self.path.parent
        return (f"{run / path} is missing: rule {self.missing[path]} made it in this run, and it was deleted since. "
                f"Fix: make it again, in {run}: snakemake {path} (with the run's --configfile)")

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self.analysis) | set(self.tables))

    def __repr__(self) -> str:
        return (f"Results({str(self.path)!r}: {len(self.summaries)} models, analysis {sorted(self.analysis)}, "
                f"tables {sorted(self.tables)})")


def _tsv_tables(folder: Path) -> dict[str, pd.DataFrame]:
    from filterlens.io.files import read_tsv

    return {p.stem: read_tsv(p) for p in sorted(folder.glob("*.tsv"))} if folder.is_dir() else {}


def _made_by_rules(run: Path) -> dict[str, str]:
    """Every output of the run in ``run`` that Snakemake has a record of (relative path, from the
    name of its file in ``.snakemake/metadata``: the path in URL-safe base64), with its rule."""
    folder = run / ".snakemake" / "metadata"
    made = {}
    for record in sorted(folder.iterdir()) if folder.is_dir() else []:
        try:
            made[base64.urlsafe_b64decode(record.name).decode()] = json.loads(record.read_text())["rule"]
        except (binascii.Error, ValueError, KeyError, TypeError, OSError):
            continue  # not a record of one output (a long path's folder, another version's file)
    return made


def _missing_tables(run: Path) -> dict[str, str]:
    """The tables (.tsv under results/) that a rule of the run made and that are gone, with the rule."""
    return {path: rule for path, rule in _made_by_rules(run).items()
            if path.startswith("results/") and path.endswith(".tsv") and not (run / path).exists()}


def load_results(path: str | os.PathLike) -> Results:
    """The analyses of a run: ``path`` is its working directory or the ``results/`` in it."""
    path = Path(path)
    results = path / "results" if (path / "results").is_dir() else path
    if not any((results / name).is_dir() for name in ("analysis", "summaries", "tables")):
        raise FileNotFoundError(f"{path} holds no results (no analysis/, summaries/ or tables/ under {results}). "
                                "Fix: give the run's working directory or its results/ folder.")
    summaries = {p.name: _tsv_tables(p) for p in sorted((results / "summaries").glob("*")) if p.is_dir()}
    provenance_file = results / "provenance" / "provenance.json"
    provenance = json.loads(provenance_file.read_text()) if provenance_file.is_file() else None
    loaded = Results(path=results, analysis=_tsv_tables(results / "analysis"), tables=_tsv_tables(results / "tables"),
                     summaries=summaries, metrics=_tsv_tables(results / "metrics"), provenance=provenance,
                     missing=_missing_tables(results.parent))
    for path in loaded.missing:
        warnings.warn(loaded.missing_message(path), stacklevel=2)
    return loaded
