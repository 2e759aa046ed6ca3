"""dev/perf/benchmark_training.py on a tiny sheet: the throughput table it writes, and the counterparts' cost."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO, load_tool

from filterlens.train.cost import image_flops, read_throughputs, training_flops

SHEET = (
    "model_id\tdataset\tarchitecture\tarch_kwargs\trobust\tsource\tsource_key\tcounterpart\tclean_acc\trobust_acc\n"
    'c10_normal\tcifar10\twide_resnet\t{"depth": 10, "widen_factor": 1}\tfalse\ttrain_cifar\t\t\t\t\n'
    'c10_robust\tcifar10\twide_resnet\t{"depth": 10, "widen_factor": 1}\ttrue\trandom\t\tc10_normal\t\t\n'
)
TINY = ("wide_resnet", {"depth": 10, "widen_factor": 1})


def _tool(*args):
    return subprocess.run([sys.executable, str(REPO / "dev" / "perf" / "benchmark_training.py"), *args],
                          capture_output=True, text=True, check=True).stdout


def test_the_throughput_table_and_the_cost_of_the_counterparts(tmp_path):
    (tmp_path / "sheet.tsv").write_text(SHEET)
    output = tmp_path / "training.tsv"
    printed = _tool("--sheet", str(tmp_path / "sheet.tsv"), "--models", "WRN-10-1=c10_normal", "--options", "fp32",
                    "bf16+channels_last", "--batch", "4", "--steps", "2", "--warmup", "1", "--output", str(output))
    rows = read_throughputs(output)
    assert [(r["architecture"], r["options"], r["batch"], r["steps"]) for r in rows] == \
        [("WRN-10-1", "fp32", "4", "2"), ("WRN-10-1", "bf16+channels_last", "4", "2")]
    flops = image_flops(*TINY, num_classes=10).training
    for row in rows:
        assert float(row["flops_per_image"]) == pytest.approx(flops, rel=1e-5)
        assert float(row["images_per_s"]) == pytest.approx(8 / float(row["seconds"]), rel=1e-2)
        assert float(row["achieved_tflops"]) == pytest.approx(float(row["images_per_s"]) * flops / 1e12, rel=1e-2)
    assert "| WRN-10-1 | bf16+channels_last | 4 |" in printed

    # The counterparts' cost: the recipe's FLOPs, and hours at the measured speed of the same model.
    cost = _tool("--counterparts", "--sheet", str(tmp_path / "sheet.tsv"), "--throughput", str(output))
    total = training_flops(*TINY, 10, 32, 50_000, 125, validation_images=10_000)
    hours = total / (float(rows[0]["images_per_s"]) * float(rows[0]["flops_per_image"])) / 3600  # the fp32 row's
    (line,) = [line for line in cost.splitlines() if line.startswith("| c10_normal |")]
    assert line.split(" | ")[4:6] == [f"{total / 1e15:.1f}", f"{hours:.1f}"]
    assert "c10_robust" not in cost  # only train_cifar rows


def test_an_option_set_it_cannot_read_names_the_form():
    with pytest.raises(SystemExit, match=r"--options 'fp16': a precision \(fp32, bf16\)"):
        load_tool("benchmark_training").recipe_of("fp16")
