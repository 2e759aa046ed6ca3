"""What a run needs before it starts: the files to stage, the disk, the training jobs, the network.

Used by ``filterlens stage`` (filterlens.cli.stage) and by the workflow (rules/common.smk): the
process that plans a run, a dry run too, says in a few lines what is missing (:func:`planning_lines`),
and a run that must download what this machine cannot reach stops before any job with the list
(:func:`offline_stop`).

A model needs something staged while its checkpoint ``data/models/<model>.pt`` is not there:

- source ``robustbench``: RobustBench's weight files in ``acquisition.model_dir`` (downloaded from
  Google Drive when missing);
- source ``timm``: the pretrained weights in the Hugging Face cache (downloaded from huggingface.co
  unless ``HF_HUB_OFFLINE`` is set);
- source ``train_cifar``: torchvision's CIFAR folder in ``cifar_training.data_dir`` (downloaded from
  www.cs.toronto.edu only with ``cifar_training.download: true``), and a GPU;

and the models whose filters come from the authors' database need its files (``filterdb.local_dir``,
else downloaded from Zenodo). Sizes are the lock file's where it records them, else estimated as 4
bytes per parameter (float32), counted on the ``meta`` device like the filters and the training FLOPs.
"""

from __future__ import annotations

import functools
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from filterlens.extract.filterdb import database_files, uses_filterdb
from filterlens.io.network import DEFAULT_TIMEOUT_S, unreachable_hosts

# Disk of a filter store per 3x3 filter, and of one model's summaries and analyses (the paper-scale
# run: 31.5 GB of stores for 995M filters, 25 MB of summaries for 114 models; docs/benchmarks.md).
STORE_BYTES_PER_FILTER = 32.1
SUMMARY_BYTES_PER_MODEL = 25e6 / 114
# The CIFAR archives torchvision reads (https://www.cs.toronto.edu/~kriz/cifar.html).
CIFAR_ARCHIVE_BYTES = {"cifar10": 170_498_071, "cifar100": 169_001_437}
CIFAR_TRAIN_IMAGES, CIFAR_TEST_IMAGES = 50_000, 10_000

HOSTS = {"robustbench": "drive.google.com", "timm": "huggingface.co", "train_cifar": "www.cs.toronto.edu",
         "filterdb": "zenodo.org"}
TRAINED_SOURCES = ("robustbench", "timm", "train_cifar")


@dataclass
class Item:
    """One thing to stage: a file or folder, where it goes, and whether it is there."""

    what: str
    models: list[str]
    where: str
    present: bool
    download_bytes: float | None = None
    bytes_recorded: bool = False  # download_bytes from the lock file (else estimated)
    host: str | None = None  # the server a run fetches it from when missing; None: the run cannot
    fix: str = ""


@dataclass
class TrainingJob:
    model_id: str
    dataset: str
    epochs: int
    flops_per_epoch: float


@dataclass
class Plan:
    """Everything :func:`plan_run` found; ``lines`` is the report of ``filterlens stage``."""

    items: list[Item]
    training: list[TrainingJob] = field(default_factory=list)
    disk: dict[str, float] = field(default_factory=dict)  # what -> bytes
    unreachable: dict[str, str] | None = None  # host -> why; None: not checked
    seconds: float = 0.0
    # measured training speed (dev/perf/benchmark_training.py's rows), which turns FLOPs into hours
    throughputs: list[dict[str, str]] = field(default_factory=list)

    @property
    def missing(self) -> list[Item]:
        return [item for item in self.items if not item.present]

    def lines(self) -> list[str]:
        out = [f"{len(self.items)} item(s) to stage, {len(self.missing)} missing:"]
        for item in self.items:
            size = _size(item.download_bytes, item.bytes_recorded) if not item.present else ""
            models = item.models[0] if len(item.models) == 1 else f"{len(item.models)} models"
            out.append(f"  {'present' if item.present else 'MISSING'}  {item.what} ({models}) -> {item.where}"
                       + (f"  [{size}; from {item.host or 'nowhere: stage it by hand'}]" if not item.present else ""))
        if missing := self.missing:
            known = [i.download_bytes for i in missing if i.download_bytes]
            out.append(f"to stage: {_bytes(sum(known))} for {len(known)} of {len(missing)} missing item(s)"
                       " (recorded in the lock file, else 4 bytes per parameter)")
        out.append("disk this run needs:")
        out += [f"  {what}: {_bytes(size)}" for what, size in self.disk.items()]
        if self.training:
            total = sum(j.flops_per_epoch * j.epochs for j in self.training)
            epochs = sorted({j.epochs for j in self.training})
            out.append(f"training: {len(self.training)} train_cifar job(s), each on a GPU (resources gpu=1), "
                       f"{'/'.join(map(str, epochs))} epoch(s) of the recipe (cifar_training.epochs), "
                       f"{total:.3g} FLOPs in all (forward and backward, counted on the meta device); "
                       f"hours: {_hours(total, self.throughputs)}")
            for job in self.training:
                out.append(f"  {job.model_id} ({job.dataset}): {job.flops_per_epoch:.3g} FLOPs per epoch x "
                           f"{job.epochs} = {job.flops_per_epoch * job.epochs:.3g}")
        out += network_lines(self.unreachable, self.missing)
        return out


def _bytes(size: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size:.0f} bytes"


def _size(size: float | None, recorded: bool) -> str:
    if size is None:
        return "size unknown"
    return _bytes(size) if recorded else f"about {_bytes(size)}"


def _hours(flops: float, throughputs: list[dict[str, str]]) -> str:
    """Hours of ``flops`` at each measured device and option set's speed: the mean FLOP/s its
    architectures achieved (filterlens.train.cost.hours; a rough figure across architectures)."""
    from filterlens.train.cost import hours

    rates: dict[tuple[str, str], list[float]] = {}
    for row in throughputs:
        rates.setdefault((row["device"], row["options"]), []).append(hours(flops, row))
    if not rates:
        return ("not measured (dev/perf/benchmark_training.py on the training device writes "
                "results/benchmarks/training.tsv; --throughput reads it)")
    return ", ".join(f"{sum(h) / len(h):,.0f} on {device} ({options})" for (device, options), h in rates.items())


def network_lines(unreachable: dict[str, str] | None, missing: list[Item]) -> list[str]:
    if unreachable is None:
        return ["network: not checked"]
    hosts = sorted({i.host for i in missing if i.host} | set(unreachable))
    if not hosts:
        return ["network: nothing to download"]
    states = {host: f"UNREACHABLE ({unreachable[host]})" if host in unreachable else "reachable" for host in hosts}
    return ["network:"] + [f"  {host}: {state}" for host, state in states.items()]


# --- what the sheet's models need ------------------------------------------------------------


def checkpoint_path(model: str) -> Path:
    return Path("data") / "models" / f"{model}.pt"


def models_to_acquire(config: dict[str, Any], sheet: pd.DataFrame) -> dict[str, list[str]]:
    """Source -> models of a downloaded or trained source whose checkpoint is not there yet (cheap:
    no imports, no network)."""
    from_database = set(uses_filterdb(sheet, config["filterdb"]["models"]))
    wanted: dict[str, list[str]] = {}
    for row in sheet.to_dict("records"):
        model, source = row["model_id"], row["source"]
        if source in TRAINED_SOURCES and model not in from_database and not checkpoint_path(model).is_file():
            wanted.setdefault(source, []).append(model)
    return wanted


def _once(function):
    """``function(row)`` computed once per architecture, arguments and dataset."""
    results: dict[str, Any] = {}

    def cached(row: dict[str, Any]):
        key = json.dumps([row["architecture"], row["arch_kwargs"], row["dataset"]], sort_keys=True)
        if key not in results:
            results[key] = function(row)
        return results[key]

    return functools.wraps(function)(cached)


@_once
def _meta_model(row: dict[str, Any]):
    """The row's architecture built on the meta device."""
    from filterlens.config.datasets import dataset_info
    from filterlens.models.architectures import build_architecture

    return build_architecture(row["architecture"], row["arch_kwargs"], dataset_info(row["dataset"]).num_classes,
                              device="meta")


def _example(row: dict[str, Any], batch: int):
    import torch

    from filterlens.config.datasets import dataset_info

    size = dataset_info(row["dataset"]).image_size
    return torch.empty(batch, 3, size, size, device="meta")


@_once
def _filters(row: dict[str, Any]) -> int:
    from filterlens.extract.weights import plan_extraction

    return plan_extraction(_meta_model(row), _example(row, 1)).n_filters


def _flops(row: dict[str, Any]) -> tuple[float, float]:
    """FLOPs per image of a training step (forward and backward) and of a forward pass
    (filterlens.train.cost); counted once per distinct module structure (many RobustBench keys
    build the same WideResNet)."""
    from filterlens.config.datasets import dataset_info
    from filterlens.train.cost import model_image_flops

    model = _meta_model(row)
    key = (repr(model), row["dataset"])
    if key not in _FLOPS:
        flops = model_image_flops(model, dataset_info(row["dataset"]).image_size)
        _FLOPS[key] = (flops.training, flops.forward)
    return _FLOPS[key]


_FLOPS: dict[tuple[str, str], tuple[float, float]] = {}


def _parameters(row: dict[str, Any]) -> int:
    return sum(p.numel() for p in _meta_model(row).parameters())


def _lock_bytes(config: dict[str, Any], resolve) -> dict[str, int]:
    from filterlens.acquire.lock_file import read_lock

    lock = config["acquisition"]["lock_file"]
    return {name: entry["bytes"] for name, entry in read_lock(resolve(lock)).items()} if lock else {}


def staging_items(config: dict[str, Any], sheet: pd.DataFrame, resolve=lambda path: path,
                  sizes: bool = True) -> list[Item]:
    """Every file or folder the sheet's models need and whether it is there. ``resolve``: how a
    relative config path is found (the workflow's rule: the working directory, then the workflow's);
    ``sizes``: estimate the sizes the lock file does not record (builds each model on the meta device)."""
    rows = {row["model_id"]: row for row in sheet.to_dict("records")}
    wanted = models_to_acquire(config, sheet)
    items = []
    if wanted.get("robustbench"):
        items += _robustbench_items(config, [rows[m] for m in wanted["robustbench"]], resolve, sizes)
    if wanted.get("timm"):
        items += _timm_items([rows[m] for m in wanted["timm"]], sizes)
    if wanted.get("train_cifar"):
        items += _cifar_items(config, [rows[m] for m in wanted["train_cifar"]])
    items += _filterdb_items(config, sheet)
    return items


def _robustbench_items(config: dict[str, Any], rows: list[dict[str, Any]], resolve, sizes: bool) -> list[Item]:
    from filterlens.acquire.robustbench_weights import RobustBenchEntry

    model_dir = config["acquisition"]["model_dir"]
    recorded = _lock_bytes(config, resolve)
    items = []
    for row in rows:
        kwargs = row["arch_kwargs"]
        entry = RobustBenchEntry(kwargs["dataset"], row["source_key"] or kwargs["key"],
                                 kwargs.get("threat_model", "Linf"))
        files = entry.files(model_dir)
        names = [path.resolve().relative_to(Path(model_dir).resolve()).as_posix() for path, _ in files]
        known = all(name in recorded for name in names)
        size = sum(recorded[n] for n in names) if known else 4.0 * _parameters(row) if sizes else None
        for path, gdrive in files:
            items.append(Item("RobustBench checkpoint", [row["model_id"]], str(path), path.is_file(),
                              size / len(files) if size else None, known, HOSTS["robustbench"],
                              f"download https://drive.google.com/uc?id={gdrive} and save it as {path}"))
    return items


def _timm_items(rows: list[dict[str, Any]], sizes: bool) -> list[Item]:
    import timm
    from huggingface_hub import constants, try_to_load_from_cache

    items = []
    for row in rows:
        name = row["source_key"] or row["arch_kwargs"]["name"]
        config = timm.models.get_pretrained_cfg(name)
        repo = config.hf_hub_id if config else name
        cached = any(isinstance(try_to_load_from_cache(repo, filename), str)
                     for filename in ("model.safetensors", "pytorch_model.bin"))
        where = os.path.join(constants.HF_HUB_CACHE, "models--" + repo.replace("/", "--"))
        items.append(Item("timm weights (Hugging Face cache)", [row["model_id"]], where, cached,
                          4.0 * _parameters(row) if sizes else None, False,
                          None if constants.HF_HUB_OFFLINE else HOSTS["timm"],
                          f"fill the Hugging Face cache with {repo} (README.md, \"The paper's zoo\")"))
    return items


def _cifar_items(config: dict[str, Any], rows: list[dict[str, Any]]) -> list[Item]:
    from filterlens.train.cifar import CIFAR_FILES, missing_files

    settings = config["cifar_training"]
    items = []
    for dataset in sorted({row["dataset"] for row in rows}):
        folder, _, url = CIFAR_FILES[dataset]
        models = [row["model_id"] for row in rows if row["dataset"] == dataset]
        items.append(Item(f"{dataset} data (torchvision's folder)", models,
                          os.path.join(settings["data_dir"], folder), not missing_files(settings["data_dir"], dataset),
                          CIFAR_ARCHIVE_BYTES[dataset], True,
                          HOSTS["train_cifar"] if settings["download"] else None,
                          f"unpack {url} into {settings['data_dir']} (or set cifar_training.download: true)"))
    return items


def _filterdb_items(config: dict[str, Any], sheet: pd.DataFrame) -> list[Item]:
    settings = config["filterdb"]
    models = uses_filterdb(sheet, settings["models"])
    if not models:
        return []
    items = []
    for role, (location, is_query) in database_files(settings).items():
        present = not is_query and os.path.isfile(location)
        items.append(Item(f"filter database ({role})", models, location, present, None, False,
                          HOSTS["filterdb"] if is_query else None,
                          "Snakemake's storage plugin downloads it" if is_query else
                          f"copy the database file to {location} (filterdb.local_dir)"))
    return items


# --- disk and training ------------------------------------------------------------------------


def _cifar_split_sizes(settings: dict[str, Any]) -> tuple[int, int]:
    train, test = CIFAR_TRAIN_IMAGES, CIFAR_TEST_IMAGES
    if settings.get("limit"):
        train, test = min(train, settings["limit"]), min(test, settings["limit"])
    if settings["validation"]["split"] == "holdout":
        return train - settings["validation"]["size"], settings["validation"]["size"]
    return train, test


def plan_run(config: dict[str, Any], sheet: pd.DataFrame, resolve=lambda path: path,
             check_network: bool = True, timeout_s: float = DEFAULT_TIMEOUT_S,
             throughputs: list[dict[str, str]] | None = None) -> Plan:
    """The full report: items, disk (stores, summaries, checkpoints), training jobs, network."""
    started = time.monotonic()
    items = staging_items(config, sheet, resolve)
    wanted = models_to_acquire(config, sheet)
    from_database = set(uses_filterdb(sheet, config["filterdb"]["models"]))
    training, stores, checkpoints = [], 0.0, 0.0
    epochs = config["cifar_training"]["epochs"]
    train_images, val_images = _cifar_split_sizes(config["cifar_training"])
    for row in sheet.to_dict("records"):
        model = row["model_id"]
        if not Path("results", "filters", f"{model}.zarr").is_dir():
            stores += _filters(row) * STORE_BYTES_PER_FILTER
        if model not in from_database and row["source"] != "random" and not checkpoint_path(model).is_file():
            checkpoints += 4.0 * _parameters(row)
        if model in wanted.get("train_cifar", []):
            train_step, forward = _flops(row)
            per_epoch = train_step * train_images + forward * val_images
            training.append(TrainingJob(model, row["dataset"], epochs, per_epoch))
    disk = {"filter stores still to write (results/filters/, 32.1 bytes per filter)": stores,
            "checkpoints still to write (data/models/, 4 bytes per parameter)": checkpoints,
            "summaries, analyses, figures and tables (results/)": SUMMARY_BYTES_PER_MODEL * len(sheet),
            "downloads (where they go)": sum(i.download_bytes or 0 for i in items if not i.present and i.host)}
    hosts = sorted({i.host for i in items if not i.present and i.host})
    unreachable = unreachable_hosts(hosts, timeout_s) if check_network else None
    return Plan(items, training, disk, unreachable, time.monotonic() - started, throughputs or [])


# --- the workflow's checks ----------------------------------------------------------------------


def planning_lines(config: dict[str, Any], sheet: pd.DataFrame) -> list[str]:
    """A few lines for the process that plans the run (dry or not): how many checkpoints must be
    downloaded or trained, and what that needs (no imports, no network); empty when nothing is."""
    wanted = models_to_acquire(config, sheet)
    lines = []
    if downloaded := len(wanted.get("robustbench", [])) + len(wanted.get("timm", [])):
        lines.append(f"{downloaded} pretrained checkpoint(s) are not in data/models/: RobustBench's files in "
                     f"{config['acquisition']['model_dir']} and timm's in the Hugging Face cache are read from "
                     "there, anything missing is downloaded (a run with no network stops before any job).")
    if trained := wanted.get("train_cifar"):
        datasets = sorted(sheet.set_index("model_id").loc[trained, "dataset"].unique())
        lines.append(f"{len(trained)} CIFAR counterpart(s) are trained here (rule train_cifar): each needs a GPU "
                     f"and the {', '.join(datasets)} data in {config['cifar_training']['data_dir']}.")
    if lines:
        lines.append("`filterlens stage` lists every file, where it goes, the disk and the training this run needs "
                     "(docs/runs.md).")
    return lines


def offline_stop(config: dict[str, Any], sheet: pd.DataFrame, resolve=lambda path: path,
                 timeout_s: float = DEFAULT_TIMEOUT_S, models: list[str] | None = None) -> str | None:
    """Why this run cannot start, or None: its acquisition jobs would download checkpoints or CIFAR data
    from servers this machine does not reach. The message lists every missing file. Quick when no
    checkpoint is missing: no import, no network. (The filter database's files come through Snakemake's
    storage plugin, which fails on its own when it cannot download them.) ``models``: only these
    (the run's acquisition and training jobs), else every model of the sheet."""
    if models is not None:
        sheet = sheet[sheet.model_id.isin(models)]
    if not models_to_acquire(config, sheet):
        return None
    missing = [i for i in staging_items(config, sheet, resolve, sizes=False)
               if not i.present and i.host != HOSTS["filterdb"]]
    hosts = sorted({i.host for i in missing if i.host})
    unreachable = unreachable_hosts(hosts, timeout_s) if hosts else {}
    if not unreachable:
        return None
    lines = [f"{i.where} ({i.what}, {', '.join(i.models[:3])}{' ...' if len(i.models) > 3 else ''}): {i.fix}"
             for i in missing]
    return (f"this run would download from {', '.join(unreachable)}, which this machine does not reach "
            f"({'; '.join(f'{host}: {why}' for host, why in unreachable.items())}). "
            f"{len(missing)} file(s) are not staged:\n  - " + "\n  - ".join(lines)
            + "\nFix: stage them where each line says (`filterlens stage` lists them with their sizes; docs/runs.md), "
            "or run where the network reaches those servers. A dry run (-n) still plans the run.")
