"""filterlens from Python, without Snakemake: analyse one model, compare two, place one against a
reference bundle, or load a run's results.

    import filterlens
    layers = filterlens.analyze(model)               # a torch.nn.Module, a checkpoint, a state dict file
    layers = filterlens.analyze("weights/r18.pt", architecture="torchvision:resnet18")
    both = filterlens.compare("robust.pt", "normal.pt", architecture="timm:resnet18")
    table = filterlens.place(model, "ref.tar.gz")    # closer to the robust or the normal pool?
    results = filterlens.load_results("my-run")      # a run's directory (or its results/)
    results.layers, results.bases, results.kl_by_depth, results.summaries["m"]["spectra"]

:func:`analyze` takes the workflow's own path: the extraction of rule extract_filters
(filterlens.extract.weights) into a temporary filter store, and pass 1 of rule summarize_model
(filterlens.reduce.passes.summarize) over it, with the config's defaults (BatchNorm folded,
depth by graph level; docs/method.md). Its table is the run's ``results/summaries/<m>/layers.tsv``.
:func:`compare` runs the three passes of the run over two models and the run's own analyses.
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


@lru_cache(maxsize=None)
def _config_defaults() -> dict[str, dict[str, Any]]:
    from filterlens.config.validation import schema_defaults

    return {section: schema_defaults(section) for section in ("extraction", "analysis")}


def analyze(model, *, architecture: str | None = None, arch_kwargs: dict[str, Any] | None = None,
            weights: str | os.PathLike | None = None, random_init: int | None = None,
            num_classes: int | None = None, image_size: int | None = None, model_id: str | None = None,
            fold_batchnorm: bool | None = None, depth_definition: str | None = None,
            sparse_reference: str | None = None, chunk_rows: int | None = None, threads: int = 1) -> pd.DataFrame:
    """The per-layer table of every 3x3 layer of ``model``: the columns of the workflow's
    ``results/summaries/<model>/layers.tsv`` (filters, sparsity, variance entropy scaled and
    unscaled, orthogonality, L1/L2 ratio, high-frequency share, depth and depth group).

    ``model`` is one of (filterlens.acquire.model_specs):

    - a ``torch.nn.Module`` (any device; its weights are read, not changed);
    - the path of a filterlens checkpoint (``data/models/<model>.pt``), whose model_id and
      dataset's image size are then the defaults;
    - the path of a plain state dict (``torch.save(model.state_dict(), path)`` or
      ``.safetensors``) with its ``architecture``: a short form (``"torchvision:resnet18"``,
      ``"timm:resnet50"``, ``"robustbench:cifar10/Linf/Standard"``, ``"python:my_nets.py:build"``)
      or a sheet's architecture name with ``arch_kwargs``; ``num_classes`` defaults to the
      rows of the weights' classifier;
    - a model name in short form with ``weights`` (its state dict file) or ``random_init`` (a
      seed for random weights); nothing is downloaded.

    ``image_size`` (default 32) matters only for a model that torch.fx cannot trace (its
    forward runs on the ``meta`` device to find the convs). The options default to the
    config's (extraction.fold_batchnorm, extraction.chunk_rows, analysis.depth_definition,
    analysis.sparse_reference).
    """
    from filterlens.acquire.model_specs import ModelSpec

    spec = ModelSpec(model, architecture, arch_kwargs, weights, random_init, num_classes)
    options = _Options.of(image_size, fold_batchnorm, depth_definition, chunk_rows, threads, sparse_reference)
    with _extracted(spec, options, model_id) as store:
        table, _ = _summary(store, options)
    return table


@dataclass(frozen=True)
class _Options:
    """How a model is extracted and summarised: the config's defaults unless given."""

    image_size: int | None
    fold_batchnorm: bool
    depth_definition: str
    chunk_rows: int
    threads: int
    bins: int
    sparse_reference: str

    @classmethod
    def of(cls, image_size, fold_batchnorm, depth_definition, chunk_rows, threads,
           sparse_reference=None) -> "_Options":
        defaults = _config_defaults()
        fold = defaults["extraction"]["fold_batchnorm"] if fold_batchnorm is None else fold_batchnorm
        return cls(image_size, fold, depth_definition or defaults["analysis"]["depth_definition"],
                   chunk_rows or defaults["extraction"]["chunk_rows"], threads, defaults["analysis"]["bins"],
                   sparse_reference or defaults["analysis"]["sparse_reference"])

    @property
    def max_rows(self) -> int:
        from filterlens.reduce.jobs import PASS_MEM_MB
        from filterlens.reduce.streaming import rows_per_segment

        # The rows a task reads at once, as in rule summarize_model's jobs; the table does not
        # depend on it (docs/design.md).
        return rows_per_segment(PASS_MEM_MB, self.threads)


@contextmanager
def _extracted(spec, options: _Options, model_id: str | None = None) -> Iterator[Any]:
    """The model of ``spec`` extracted as rule extract_filters does, into a filter store in a
    temporary folder that lives as long as the context (read with the options' depth definition)."""
    import torch

    from filterlens.acquire.model_specs import model_from
    from filterlens.extract.store import open_filter_store, with_depth_definition
    from filterlens.extract.weights import iter_layer_rows, plan_extraction, write_filter_store

    module, facts = model_from(spec)
    size = options.image_size or facts.get("image_size", 32)
    model_id = model_id or facts.get("model_id", "model")
    plan = plan_extraction(module, torch.empty(1, 3, size, size, device="meta"), fold_batchnorm=options.fold_batchnorm)
    if not plan.layers:
        raise ValueError(f"{model_id}: the model executes no 3x3 convolution; there is nothing to analyse")
    with tempfile.TemporaryDirectory(prefix="filterlens-") as folder:
        path = Path(folder) / "filters.zarr"
        write_filter_store(path, plan, iter_layer_rows(module, plan), options.chunk_rows, model_id=model_id,
                           dataset=facts.get("dataset"))
        del module
        yield with_depth_definition(open_filter_store(path), options.depth_definition)


def _summary(store, options: _Options):
    """Pass 1 of rule summarize_model: the layer table and the per-layer moments."""
    from filterlens.reduce.passes import summarize

    return summarize(store, options.threads, options.max_rows, options.sparse_reference)


# --- one model against a reference bundle ----------------------------------------------------

def place(model, bundle: str | os.PathLike, *, architecture: str | None = None,
          arch_kwargs: dict[str, Any] | None = None, weights: str | os.PathLike | None = None,
          random_init: int | None = None, num_classes: int | None = None, dataset: str | None = None,
          model_id: str | None = None, image_size: int | None = None, threads: int = 1) -> pd.DataFrame:
    """``model`` placed against the reference bundle at ``bundle`` (its ``.sha256`` beside it;
    docs/bundle.md): the placement table of rule placement, one row per depth group ('all'
    first) with the KL to the bundle's robust and normal pools of the model's dataset, the
    bundle's noise level and the pool it is closer to beyond that level ("within noise",
    "no noise level", "no filters" otherwise; docs/method.md §4).

    ``model`` is what :func:`analyze` takes. Its filters are extracted with the bundle's
    definitions (``fold_batchnorm``, ``depth_definition``), projected on the bundle's basis and
    counted over its range and bins, sparse filters by its sparse reference. ``dataset`` defaults to the checkpoint's, else to the
    bundle's one dataset; the model id to the checkpoint's, else "model"."""
    from filterlens.acquire.model_specs import ModelSpec
    from filterlens.analyse.bundle import read_bundle
    from filterlens.analyse.placement import placement_table
    from filterlens.config.datasets import dataset_info
    from filterlens.reduce.passes import coefficient_histograms_with_outside

    reference = read_bundle(bundle)
    datasets = list(dict.fromkeys(reference.pools.dataset))
    definitions = reference.manifest["definitions"]
    size = image_size or (dataset_info(dataset).image_size if dataset else None)
    options = _Options.of(size, definitions["fold_batchnorm"], definitions["depth_definition"], None, threads,
                          reference.sparse_reference)
    spec = ModelSpec(model, architecture, arch_kwargs, weights, random_init, num_classes)
    with _extracted(spec, options, model_id) as store:
        dataset = dataset or store.attrs.get("dataset") or (datasets[0] if len(datasets) == 1 else None)
        if dataset not in datasets:
            given = f"dataset {dataset!r}" if dataset else "no dataset"
            raise ValueError(f"{bundle} holds pools of {', '.join(map(repr, datasets))}; the model has {given}. "
                             f"Fix: pass dataset= one of them (the model's training data)")
        layers, _ = _summary(store, options)
        counts, outside = coefficient_histograms_with_outside(store, reference.basis, reference.low, reference.high,
                                                              reference.bins, threads, options.max_rows,
                                                              options.sparse_reference)
        model_id = store.model_id
    return placement_table(reference, {model_id: dataset}, {model_id: counts}, {model_id: outside},
                           {model_id: layers})


# --- two models side by side -----------------------------------------------------------------

@dataclass
class Comparison:
    """Two models compared as the workflow compares robust and normal models (docs/method.md
    §4-§5), model ``a`` in the place of the robust ones and ``b`` in that of the normal ones.

    ``kl_by_depth``: the weighted symmetric KL between their coefficient distributions on the
    basis of both, for every layer ('all') and by depth group (as results/analysis/kl_by_depth.tsv);
    ``bases``: the PCA bases of both ('full'), of a and of b (as results/analysis/bases.tsv, set
    ``model:<id>``); ``quality_by_depth``: sparsity, variance entropy and orthogonality by depth
    group (as results/analysis/quality_by_depth.tsv); ``layers``: both layer tables.
    """

    a: str
    b: str
    kl_by_depth: pd.DataFrame
    bases: pd.DataFrame
    quality_by_depth: pd.DataFrame
    layers: pd.DataFrame

    @property
    def first_component_shares(self) -> pd.DataFrame:
        """Per basis, the share of variance of its first component (the paper's Fig. 2 finding:
        robust models' filters spread their variance over more components)."""
        first = self.bases[self.bases.component == 1]
        return first[["set", "n_filters", "ratio"]].rename(columns={"ratio": "first_component_share"})


def compare(a, b, *, architecture: str | None = None, arch_kwargs: dict[str, Any] | None = None,
            image_size: int | None = None, fold_batchnorm: bool | None = None,
            depth_definition: str | None = None, sparse_reference: str | None = None, bins: int | None = None,
            threads: int = 1) -> Comparison:
    """Compare two models (each in any form :func:`analyze` takes) the way the workflow
    compares a robust model (``a``) with a normal one (``b``): the three passes of the run over
    both (summaries and moments, coefficient range, histograms on their common basis), then
    the run's own analyses (filterlens.analyse.kl, bases, quality). ``architecture`` and
    ``arch_kwargs`` apply to both; for models of two architectures, pass ``ModelSpec``s of
    filterlens.acquire.model_specs or modules. ``bins`` defaults to the config's analysis.bins,
    the other options as for :func:`analyze`.
    """
    from filterlens.acquire.model_specs import ModelSpec

    options = _Options.of(image_size, fold_batchnorm, depth_definition, None, threads, sparse_reference)
    specs = [m if isinstance(m, ModelSpec) else ModelSpec(m, architecture, arch_kwargs) for m in (a, b)]
    with _extracted(specs[0], options) as store_a, _extracted(specs[1], options) as store_b:
        stores = _distinct_ids(store_a, store_b)
        return _comparison(stores, options, bins or options.bins)


def _distinct_ids(store_a, store_b) -> dict[str, Any]:
    """The two stores by model id, made distinct (a_ and b_ before them) where they are equal."""
    if store_a.model_id != store_b.model_id:
        return {store_a.model_id: store_a, store_b.model_id: store_b}
    return {f"a_{store_a.model_id}": store_a, f"b_{store_b.model_id}": store_b}


def _comparison(stores: dict[str, Any], options: _Options, bins: int) -> Comparison:
    import numpy as np

    from filterlens.analyse.bases import bases_table, set_moments
    from filterlens.analyse.kl import kl_tables
    from filterlens.analyse.quality import quality_by_depth
    from filterlens.method.distributions import histogram_edges
    from filterlens.method.pca import pca
    from filterlens.reduce.passes import coefficient_histograms, coefficient_range

    (a, b), layers, moments = list(stores), {}, {}
    for model, store in stores.items():
        table, layer_moments = _summary(store, options)
        layers[model], moments[model] = table.assign(model_id=model), layer_moments.scaled
    full = pca(set_moments([a, b], moments))
    bases = {"full": full, f"model:{a}": pca(set_moments([a], moments)), f"model:{b}": pca(set_moments([b], moments))}
    ranges = [coefficient_range(store, full, options.threads, options.max_rows) for store in stores.values()]
    low = float(np.nanmin([r[0] for r in ranges]))
    high = float(np.nanmax([r[1] for r in ranges]))
    histograms = {model: coefficient_histograms(store, full, low, high, bins, options.threads, options.max_rows,
                                                options.sparse_reference) for model, store in stores.items()}
    pairs = pd.DataFrame({"dataset": ["-"], "robust": [a], "normal": [b]})
    by_dataset, by_depth, _ = kl_tables(pairs, histograms, layers, full.ratio, histogram_edges(low, high, bins))
    whole = by_dataset[by_dataset.pooling == "paired"]
    kl = pd.concat([whole.drop(columns="default"), by_depth], ignore_index=True).drop(columns=["dataset", "pooling"])
    sheet = pd.DataFrame({"model_id": [a, b], "dataset": "-", "robust": [True, False]}).set_index("model_id",
                                                                                                    drop=False)
    everything = pd.concat(layers.values(), ignore_index=True)
    quality = quality_by_depth(everything, sheet).drop(columns=["dataset", "robust"])
    return Comparison(a, b, kl.rename(columns={"n_robust_filters": "n_filters_a", "n_normal_filters": "n_filters_b"}),
                      bases_table(bases), quality, everything)


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
