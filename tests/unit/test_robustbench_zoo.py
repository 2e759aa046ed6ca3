"""RobustBench entries built from the registry's source (models/robustbench_zoo.py) are the
registry's own models, and cost neither timm nor torch._dynamo."""

import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO

from filterlens.config.sheet import read_sheet
from filterlens.models import robustbench_zoo
from filterlens.models.architectures import build_architecture
from filterlens.models.robustbench_zoo import UnknownRobustBenchEntry, entry_constructor, zoo_entry


def sheet_entries():
    entries = set()
    for sheet in ("paper.tsv", "scale.tsv"):
        rows = read_sheet(REPO / "config" / "models" / sheet)
        for kwargs in rows.loc[rows.architecture == "robustbench", "arch_kwargs"]:
            entries.add((kwargs["dataset"], kwargs["key"], kwargs.get("threat_model", "Linf")))
    return sorted(entries)


def describe(module: torch.nn.Module) -> tuple:
    return type(module).__name__, repr(module), {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_every_sheet_entry_resolves_from_source_to_the_registrys_module():
    entries = sheet_entries()
    assert len(entries) >= 71
    for dataset, key, threat in entries:
        from_source = robustbench_zoo._constructor_from_source(dataset, key, threat)  # no fallback
        with torch.device("meta"):
            assert describe(from_source()) == describe(zoo_entry(dataset, key, threat)["model"]()), key


def test_seeded_weights_equal_the_registrys_constructor():
    torch.manual_seed(3)
    ours = entry_constructor("cifar10", "Andriushchenko2020Understanding")()
    torch.manual_seed(3)
    theirs = zoo_entry("cifar10", "Andriushchenko2020Understanding")["model"]()
    assert type(ours).__module__ == type(theirs).__module__
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert torch.equal(a, b), name


def test_an_unknown_key_falls_back_to_the_registry_and_is_named():
    with pytest.raises(UnknownRobustBenchEntry, match="no cifar10/Linf model 'Nobody2099'"):
        entry_constructor("cifar10", "Nobody2099")
    with pytest.raises(UnknownRobustBenchEntry):
        build_architecture("robustbench", {"dataset": "cifar10", "key": "Nobody2099"}, 10, device="meta")


def test_a_wide_resnet_entry_on_meta_imports_neither_timm_nor_dynamo():
    code = (
        "import sys\n"
        "from filterlens.models.architectures import build_architecture\n"
        "build_architecture('robustbench', {'dataset': 'cifar10', 'key': 'Gowal2020Uncovering_70_16'}, 10,"
        " device='meta')\n"
        "print(sorted(m for m in ('timm', 'torchvision', 'torch._dynamo', 'robustbench.model_zoo.models')"
        " if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert result.stdout.strip() == "[]"
