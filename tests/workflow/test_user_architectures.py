"""Architectures a researcher is likely to bring beside the zoo: torchvision's classification
models as the sheet architecture ``torchvision`` (checked on the meta device when the sheet is
read), a timm ResNet, a constructor of one's own with BatchNorm after global pooling, and
grouped and depthwise 3x3 convs; and every rule of the workflow run on them."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import torch
import torchvision
import yaml
from conftest import REPO, run_snakemake
from torch import nn

from filterlens.acquire.checkpoint import build_model
from filterlens.acquire.errors import AcquisitionError
from filterlens.acquire.local import local_checkpoint
from filterlens.models.architectures import build_architecture
from filterlens.models.sheet_checks import row_build_problems

HEADER = "model_id\tdataset\tarchitecture\tarch_kwargs\trobust\tsource\tsource_key\tcounterpart\tclean_acc\trobust_acc"
# BatchNorm on the 1x1 map after global pooling and on the flattened features (both refuse one
# value per channel in training mode); a 3x3 conv of 4 groups and a depthwise one.
NETS = '''\
from torch import nn


def pooled_bn(num_classes, width=8):
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, groups=4, bias=False), nn.BatchNorm2d(2 * width),
        nn.ReLU(),
        nn.Conv2d(2 * width, 2 * width, 3, padding=1, groups=2 * width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.BatchNorm2d(2 * width), nn.Flatten(), nn.BatchNorm1d(2 * width),
        nn.Linear(2 * width, num_classes))
'''


def _row(arch_kwargs, dataset="cifar10", source="random", source_key=""):
    return {"model_id": "tv", "dataset": dataset, "architecture": "torchvision", "arch_kwargs": arch_kwargs,
            "robust": False, "source": source, "source_key": source_key}


# --- architecture torchvision ----------------------------------------------------------------

def test_a_torchvision_row_is_read_and_built_by_its_builders_name():
    problems = row_build_problems(_row({"name": "resnet18", "num_classes": 10}))
    assert problems == [] and row_build_problems(_row({"name": "mobilenet_v2", "width_mult": 0.5})) == []
    model = build_architecture("torchvision", {"name": "resnet18", "num_classes": 10}, 10, seed=3)
    assert isinstance(model, torchvision.models.ResNet) and model.fc.out_features == 10
    again = build_architecture("torchvision", {"name": "resnet18"}, 10, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    meta = build_architecture("torchvision", {"name": "mobilenet_v2"}, 100, device="meta")
    assert all(p.is_meta for p in meta.parameters()) and meta.classifier[-1].out_features == 100


@pytest.mark.parametrize("kwargs, dataset, message", [
    ({"name": "resnet_18"}, "cifar10", "torchvision has no classification model 'resnet_18' (similar: resnet18"),
    ({"name": "fasterrcnn_resnet50_fpn"}, "cifar10", "torchvision has no classification model 'fasterrcnn_resnet50_fpn'"
                                                     ". Fix: set arch_kwargs name to one that torchvision.models."
                                                     "list_models(module=torchvision.models) lists"),
    ({}, "cifar10", "torchvision has no classification model None"),
    ({"name": "resnet18", "weights": "DEFAULT"}, "cifar10", "arch_kwargs 'weights' would download torchvision's "
                                                            "pretrained weights"),
    ({"name": "resnet18", "num_classes": 100}, "cifar10", "arch_kwargs num_classes is 100, but the row's dataset "
                                                          "cifar10 has 10 classes. Fix: set it to 10, or leave it out"),
    ({"name": "resnet18", "depth": 3}, "cifar10", "unexpected keyword argument 'depth'. Fix: give arch_kwargs only "
                                                  "keyword arguments of torchvision.models.resnet18"),
    ({"name": "vit_b_16"}, "cifar10", "cannot take cifar10's 32x32 images (AssertionError: Wrong image height! "
                                      "Expected 224 but got 32!). Fix: name a model"),
    ({"name": "inception_v3"}, "cifar100", "cannot take cifar100's 32x32 images"),
], ids=["typo", "detection model", "no name", "pretrained weights", "num_classes", "unknown argument", "vit",
        "inception"])
def test_a_torchvision_row_that_cannot_become_the_model_is_refused_with_the_fix(kwargs, dataset, message):
    (problem,) = row_build_problems(_row(kwargs, dataset=dataset))
    assert message in problem, problem


def test_a_torchvision_model_for_larger_images_passes_on_its_dataset():
    assert row_build_problems(_row({"name": "vit_b_16"}, dataset="imagenet")) == []


def test_a_timm_model_is_run_on_one_image_of_its_dataset_too():
    row = {**_row({"name": "vit_tiny_patch16_224"}), "architecture": "timm"}
    (problem,) = row_build_problems(row)
    assert "timm {\"name\": \"vit_tiny_patch16_224\"} cannot take cifar10's 32x32 images" in problem, problem
    assert row_build_problems({**row, "dataset": "imagenet"}) == []
    assert row_build_problems({**row, "arch_kwargs": {"name": "resnet10t"}}) == []


def test_a_torchvision_state_dict_file_becomes_a_local_checkpoint(tmp_path):
    state = build_architecture("torchvision", {"name": "mobilenet_v2"}, 10, seed=0).state_dict()
    torch.save(state, tmp_path / "mnv2.pt")
    row = {**_row({"name": "mobilenet_v2", "num_classes": 10}, source="local"), "model_id": "mnv2"}
    checkpoint = local_checkpoint(row, tmp_path / "mnv2.pt")
    model = build_model(checkpoint)
    assert not model.training and torch.equal(model.features[0][0].weight, state["features.0.0.weight"])
    torch.save(build_architecture("torchvision", {"name": "resnet18"}, 10, seed=0).state_dict(), tmp_path / "r18.pt")
    with pytest.raises(AcquisitionError, match="mnv2: the acquired weights do not fit architecture torchvision"):
        local_checkpoint(row, tmp_path / "r18.pt")


@pytest.mark.parametrize("architecture, name", [("torchvision", "regnet_x_400mf"), ("timm", "convnext_atto"),
                                                ("timm", "vit_tiny_patch16_224")])
def test_a_constructor_that_reads_values_of_its_own_tensors_builds_on_the_meta_device(architecture, name):
    # RegNet's widths and timm's drop-path rates are computed with tensors whose values the
    # constructor reads: under torch.device("meta") that raises; the weights alone go to meta.
    meta = build_architecture(architecture, {"name": name}, 10, device="meta")
    assert all(t.is_meta for t in (*meta.parameters(), *meta.buffers()))
    real = build_architecture(architecture, {"name": name}, 10, seed=0)
    assert {k: v.shape for k, v in meta.state_dict().items()} == {k: v.shape for k, v in real.state_dict().items()}
    assert nn.Module.register_parameter.__name__ == "register_parameter"  # the registration is restored
    if architecture == "torchvision":
        assert row_build_problems(_row({"name": name})) == []


# --- every rule of the workflow ----------------------------------------------------------------

# (model id, dataset, architecture, arch_kwargs, robust, source, counterpart); source local
# rows get a state dict file of seeded random weights that the test writes.
MODELS = [
    ("tv_resnet18", "coloured_digits", "torchvision", {"name": "resnet18", "num_classes": 10}, True, "random",
     "own_pooled_bn"),
    ("own_pooled_bn", "coloured_digits", "python", {"constructor": "nets.py:pooled_bn"}, False, "local", ""),
    ("timm_resnet10t", "cifar10", "timm", {"name": "resnet10t"}, True, "random", "tv_mobilenet_v2"),
    ("tv_mobilenet_v2", "cifar10", "torchvision", {"name": "mobilenet_v2"}, False, "local", ""),
]


def _user_run_directory(workdir):
    (workdir / "nets.py").write_text(NETS)
    lines = [HEADER]
    for model_id, dataset, architecture, arch_kwargs, robust, source, counterpart in MODELS:
        key = ""
        if source == "local":
            key = f"weights/{model_id}.pt"
            (workdir / "weights").mkdir(exist_ok=True)
            kwargs = arch_kwargs
            if architecture == "python":  # the constructor file as the workflow finds it in workdir
                kwargs = {**kwargs, "constructor": f"{workdir / kwargs['constructor']}"}
            torch.save(build_architecture(architecture, kwargs, 10, seed=1).state_dict(), workdir / key)
        lines.append("\t".join([model_id, dataset, architecture, json.dumps(arch_kwargs), str(robust).lower(), source,
                                key, counterpart, "", ""]))
    (workdir / "sheet.tsv").write_text("\n".join(lines) + "\n")
    config = yaml.safe_load((REPO / "config" / "micro.yaml").read_text())
    (workdir / "config.yaml").write_text(yaml.safe_dump({**config, "sheet": "sheet.tsv"}))
    return ["--configfile", str(workdir / "config.yaml")]


@pytest.mark.workflow
def test_user_architectures_run_through_every_rule(tmp_path):
    """The default targets (rule all: acquisition, extraction, the passes, KL, the statistics with
    every model's spectra and the perturbation ratios of the coloured_digits pair, whose test
    images the workflow makes, Fig. 1-9, the tables, provenance) on the micro config's settings,
    then a plan with nothing to do, then the report."""
    args = _user_run_directory(tmp_path)
    run_snakemake(tmp_path, *args, "--cores", "2")
    results = tmp_path / "results"
    for model_id, dataset, *_ in MODELS:
        layers = pd.read_csv(results / "summaries" / model_id / "layers.tsv", sep="\t")
        spectra = pd.read_csv(results / "summaries" / model_id / "spectra.tsv", sep="\t")
        assert spectra.name.tolist() == layers.name.tolist() and spectra.spectral_norm.notna().all(), model_id
        if dataset == "coloured_digits":
            perturbation = pd.read_csv(results / "summaries" / model_id / "perturbation.tsv", sep="\t")
            assert perturbation.name.tolist() == layers.name.tolist(), model_id
            assert perturbation.perturbation_ratio.notna().all(), model_id
    groups = pd.read_csv(results / "summaries" / "tv_mobilenet_v2" / "layers.tsv", sep="\t").set_index("name").groups
    assert (groups["features.2.conv.1.0"] == 96) and groups["features.0.0"] == 1  # depthwise, and the stem
    own = pd.read_csv(results / "summaries" / "own_pooled_bn" / "layers.tsv", sep="\t")
    assert own.groups.tolist() == [1, 4, 16]
    measures = pd.read_csv(results / "analysis" / "filter_measures_by_depth.tsv", sep="\t")
    assert set(measures.model_id) == {m[0] for m in MODELS}
    figures = ["fig1_kl_by_depth", "fig2_pca_basis", "fig3_coefficient_distributions", "fig4_first_layer_filters",
               "fig5_last_layer_filters", "fig6_activations", "fig7_layer_quality", "fig8_correlations",
               "fig9_filter_measures"]
    assert all((results / "figures" / f"{name}.png").is_file() for name in figures)
    provenance = {m["model_id"]: m for m in json.loads((results / "provenance" / "provenance.json").read_text())["models"]}
    assert sorted(provenance) == ["own_pooled_bn", "tv_mobilenet_v2"]  # seeded random weights are left out
    assert provenance["tv_mobilenet_v2"]["weights_file"] == "weights/tv_mobilenet_v2.pt"
    plan = run_snakemake(tmp_path, *args, "-n", "--cores", "2")
    assert "Nothing to be done" in plan.stdout + plan.stderr, plan.stdout
    run_snakemake(tmp_path, *args, "--report", str(results / "report.html"))
    report = (results / "report.html").read_text()
    assert all(f"{name}.png" in report for name in figures) and "tv_resnet18" in report


@pytest.mark.workflow
@pytest.mark.parametrize("script, rule", [("layer_spectra.py", "layer_spectra"),
                                          ("layer_perturbation.py", "layer_perturbation")])
def test_the_config_a_failed_model_measures_job_names_leaves_its_rule_out(tmp_path, script, rule):
    # The fix in the job's last log line (its FIX), as a config file given last on the micro config.
    fix = re.search(r"`(analysis: \{.*?\})`", (REPO / "workflow_scripts" / script).read_text()).group(1)
    (tmp_path / "fix.yaml").write_text(fix + "\n")
    micro = ["--configfile", str(REPO / "config" / "micro.yaml")]
    planned = run_snakemake(tmp_path, "-n", *micro, "--quiet", "rules")
    assert rule in planned.stdout, planned.stdout
    without = run_snakemake(tmp_path, "-n", *micro, str(tmp_path / "fix.yaml"), "--quiet", "rules")
    assert rule not in without.stdout and "filter_measures" in without.stdout, without.stdout
