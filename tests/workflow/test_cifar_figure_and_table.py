"""Fig. 6 and Table 1 for a CIFAR zoo like the paper's: with the CIFAR-10 test set at hand
(cifar_training.data_dir, the folder the CIFAR training reads) Fig. 6 attacks one of its images
and Table 1 measures the normal models' clean accuracy; without it Fig. 6 is skipped with its
reason and Table 1 takes the sheet's values, and each caption says which.

Offline: the tests write a tiny CIFAR-10 test file in torchvision's format (a pickled dict
with data (n, 3072) uint8, channel-major, and labels) and a tiny sheet of two seeded random
WRN-10-1 models (source random, as the scale runs build them)."""

from __future__ import annotations

import pickle
import zlib

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import run_snakemake

from filterlens.acquire.checkpoint import Normalize
from filterlens.config.datasets import CIFAR_MEAN, CIFAR_STD
from filterlens.models.architectures import build_architecture

N_TEST = 20
SHEET = (
    "model_id\tdataset\tarchitecture\tarch_kwargs\trobust\tsource\tsource_key\tcounterpart\tclean_acc\trobust_acc\n"
    'c10_normal\tcifar10\twide_resnet\t{"depth": 10, "widen_factor": 1}\tfalse\trandom\t\t\t99.5\t\n'
    'c10_robust\tcifar10\twide_resnet\t{"depth": 10, "widen_factor": 1}\ttrue\trandom\t\tc10_normal\t88.25\t55.5\n'
)
TARGETS = ["results/tables/table1_zoo_summary.tsv", "results/tables/table1_zoo_summary.tex"]


def _cifar10_test_set(root, seed=0):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, N_TEST)
    data = rng.integers(0, 256, (N_TEST, 3072)).astype(np.uint8)
    with open(folder / "test_batch", "wb") as handle:
        pickle.dump({"batch_label": "testing batch 1 of 1", "labels": labels.tolist(), "data": data,
                     "filenames": [f"{i}.png" for i in range(N_TEST)]}, handle, protocol=2)
    return data.reshape(N_TEST, 3, 32, 32), labels


def _workdir(tmp_path, data_dir):
    (tmp_path / "sheet.tsv").write_text(SHEET)
    config = {"sheet": str(tmp_path / "sheet.tsv"), "figures": {"pair": "c10_robust"},
              "cifar_training": {"data_dir": str(data_dir), "verify_checksums": False}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return ["--configfile", str(tmp_path / "config.yaml"), "--cores", "2"]


def _random_model_accuracy(model_id, images, labels):
    """The clean accuracy of rule random_init's model (seed crc32(id) + training.seed 0)."""
    network = build_architecture("wide_resnet", {"depth": 10, "widen_factor": 1}, 10,
                                 seed=zlib.crc32(model_id.encode()))
    model = torch.nn.Sequential(Normalize(list(CIFAR_MEAN), list(CIFAR_STD)), network).eval()
    with torch.no_grad():
        predicted = model(torch.from_numpy(images).float() / 255).argmax(1).numpy()
    return 100.0 * (predicted == labels).mean()


@pytest.mark.workflow
def test_with_the_cifar_test_set_fig6_attacks_it_and_table1_measures_the_normal_models(tmp_path):
    images, labels = _cifar10_test_set(tmp_path / "cifar")
    args = _workdir(tmp_path, tmp_path / "cifar")
    run_snakemake(tmp_path, *TARGETS, "results/figures/fig6_activations.png", *args)

    metrics = pd.read_csv(tmp_path / "results/metrics/c10_normal.tsv", sep="\t")
    assert metrics.n_test[0] == N_TEST and metrics.attack[0] == "none"
    assert metrics.clean_acc[0] == pytest.approx(_random_model_accuracy("c10_normal", images, labels), abs=1e-9)
    assert not (tmp_path / "results/metrics/c10_robust.tsv").exists()  # robust values: the sheet's

    table = pd.read_csv(tmp_path / "results/tables/table1_zoo_summary.tsv", sep="\t").iloc[0]
    assert table.normal_clean_acc_mean == pytest.approx(metrics.clean_acc[0]) != 99.5
    assert table.normal_clean_acc_source == "measured"
    assert (table.robust_clean_acc_mean, table.robust_robust_acc_mean) == (88.25, 55.5)
    assert table.robust_clean_acc_source == table.robust_robust_acc_source == "reference"
    caption = (tmp_path / "results/tables/table1_zoo_summary.tex").read_text()
    assert "normal models: CIFAR-10: measured by this run on the dataset" in caption
    assert "robust accuracy of the robust models: CIFAR-10: the sheet" in caption.replace("Robust", "robust")

    with np.load(tmp_path / "results/analysis/activations.npz") as data:
        np.testing.assert_allclose(data["image_clean"], images[0] / 255, rtol=1e-6)
        assert int(data["label"]) == labels[0] and data["act_clean"].shape == (16, 32, 32)
        assert 0 < np.abs(data["image_adv"] - data["image_clean"]).max() <= 8 / 255 + 1e-6
    assert (tmp_path / "results/figures/fig6_activations.png").stat().st_size > 5_000


@pytest.mark.workflow
def test_without_the_cifar_test_set_fig6_is_skipped_with_its_reason_and_table1_uses_the_sheet(tmp_path):
    args = _workdir(tmp_path, tmp_path / "absent")
    dry = run_snakemake(tmp_path, "-n", *args)
    output = dry.stdout + dry.stderr
    assert "Fig. 6 is skipped" in output and str(tmp_path / "absent" / "cifar-10-batches-py" / "test_batch") in output
    assert "fig6_activations" not in output and "evaluate_clean_cifar" not in output
    run_snakemake(tmp_path, *TARGETS, *args)
    table = pd.read_csv(tmp_path / "results/tables/table1_zoo_summary.tsv", sep="\t").iloc[0]
    assert (table.normal_clean_acc_mean, table.normal_clean_acc_source) == (99.5, "reference")
    caption = (tmp_path / "results/tables/table1_zoo_summary.tex").read_text()
    assert "normal models: CIFAR-10: the sheet's values" in caption
