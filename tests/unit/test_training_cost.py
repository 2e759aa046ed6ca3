"""filterlens.train.cost: training FLOPs counted on the meta device, and hours at a measured speed."""

from __future__ import annotations

import pytest

from filterlens.train.cost import hours, image_flops, read_throughputs, training_flops

TINY = '''
from torch import nn


def tiny(num_classes):
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(4 * 8 * 8, num_classes))
'''


@pytest.fixture
def tiny(tmp_path):
    (tmp_path / "tiny.py").write_text(TINY)
    return "python", {"constructor": f"{tmp_path / 'tiny.py'}:tiny"}


def test_the_flops_of_an_image_are_counted_by_hand(tiny):
    flops = image_flops(*tiny, num_classes=10, image_size=8)
    conv = 2 * 3 * 4 * 9 * 8 * 8  # 2 per multiply-add: 3 -> 4 channels, 3x3, at 8 x 8 outputs
    linear = 2 * 256 * 10
    assert flops.forward == conv + linear
    # Backward: the conv's weight gradient (its input needs none), the linear layer's input and weight gradients.
    assert flops.training == (conv + linear) + conv + 2 * linear


def test_training_flops_are_images_times_epochs(tiny):
    per_image = image_flops(*tiny, num_classes=10, image_size=8)
    assert training_flops(*tiny, 10, 8, train_images=500, epochs=3) == 3 * 500 * per_image.training
    assert training_flops(*tiny, 10, 8, 500, 3, validation_images=100) == \
        3 * (500 * per_image.training + 100 * per_image.forward)


def test_a_wide_resnet_counts_on_the_meta_device_in_proportion_to_its_width():
    """WRN-16-k: its 3x3 convolutions, nearly all of its FLOPs, grow with k squared."""
    narrow = image_flops("wide_resnet", {"depth": 16, "widen_factor": 2}, 10).training
    wide = image_flops("wide_resnet", {"depth": 16, "widen_factor": 4}, 10).training
    assert 3.8 < wide / narrow < 4.0


def test_hours_at_a_measured_speed(tiny, tmp_path):
    per_image = image_flops(*tiny, num_classes=10, image_size=8).training
    (tmp_path / "training.tsv").write_text(
        "device\tarchitecture\toptions\tbatch\timages_per_s\tflops_per_image\n"
        f"cpu\ttiny\tfp32\t8\t250.0\t{per_image}\n")
    (row,) = read_throughputs(tmp_path / "training.tsv")
    flops = training_flops(*tiny, 10, 8, train_images=50_000, epochs=18)
    assert hours(flops, row) == pytest.approx(50_000 * 18 / 250.0 / 3600)  # the row's own architecture
    assert hours(2 * flops, row) == pytest.approx(2 * hours(flops, row))


@pytest.mark.parametrize("row, what", [({"images_per_s": "10"}, "flops_per_image"),
                                       ({"images_per_s": "0", "flops_per_image": "5"}, "not a measured speed")])
def test_a_row_without_a_speed_names_the_column_and_the_fix(row, what):
    with pytest.raises(ValueError, match=what) as error:
        hours(1e15, row)
    assert "results/benchmarks/training.tsv" in str(error.value) and "dev/perf/benchmark_training.py" in str(error.value)
