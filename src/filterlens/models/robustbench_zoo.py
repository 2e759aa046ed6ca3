"""RobustBench's registry of leaderboard entries (``robustbench.model_zoo.model_dicts``), looked up
here for every module that builds, checks or acquires a RobustBench model. robustbench is imported
on the first look-up, through :func:`filterlens.models.compat.import_robustbench_module`."""

from __future__ import annotations

from typing import Any


class UnknownRobustBenchEntry(ValueError):
    """A key that RobustBench's registry lacks for the dataset and threat model."""


def zoo(dataset: str, threat_model: str = "Linf") -> dict[str, dict[str, Any]]:
    """RobustBench's entries of ``dataset`` (a BenchmarkDataset value: cifar10, cifar100, imagenet)
    and ``threat_model`` (a ThreatModel name: Linf, L2, corruptions), by key."""
    from filterlens.models.compat import import_robustbench_module

    model_dicts = import_robustbench_module("robustbench.model_zoo.models").model_dicts
    enums = import_robustbench_module("robustbench.model_zoo.enums")
    BenchmarkDataset, ThreatModel = enums.BenchmarkDataset, enums.ThreatModel

    return model_dicts[BenchmarkDataset(dataset)][ThreatModel[threat_model]]


def zoo_entry(dataset: str, key: str, threat_model: str = "Linf") -> dict[str, Any]:
    """The registry's entry ``key`` (its ``model`` constructor, ``gdrive_id``, ...), or
    :class:`UnknownRobustBenchEntry`."""
    entries = zoo(dataset, threat_model)
    if key not in entries:
        raise UnknownRobustBenchEntry(f"RobustBench has no {dataset}/{threat_model} model {key!r}")
    return entries[key]
