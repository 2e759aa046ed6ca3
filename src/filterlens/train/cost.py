"""What training a model costs before it runs: FLOPs counted on the meta device, and hours on a
device whose throughput was measured (``dev/perf/benchmark_training.py`` writes
``results/benchmarks/training.tsv``; docs/benchmarks.md, "Training the counterparts").

FLOPs are those torch's :class:`torch.utils.flop_counter.FlopCounterMode` counts: convolutions
and matrix products, two per multiply-add, of the forward pass and of the backward pass
(gradients of inputs and weights); element-wise operations (batch norm, activations, the
optimizer's update) are not counted. The model is built on the meta device, so counting
allocates nothing and takes the time of building the module (seconds for a WRN-106-16).

Everything here is pure: the same arguments give the same numbers, and nothing is written.
"""

from __future__ import annotations

import csv
import functools
import json
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from filterlens.models.architectures import build_architecture

# The columns of results/benchmarks/training.tsv that :func:`hours` reads.
THROUGHPUT_COLUMNS = ("images_per_s", "flops_per_image")


@dataclass(frozen=True)
class ImageFlops:
    """FLOPs of one image: its forward pass alone (a validation image), and forward plus
    backward (a training image)."""

    forward: float
    training: float


def model_image_flops(model: torch.nn.Module, image_size: int) -> ImageFlops:
    """The FLOPs of one image through ``model`` (on the meta device). Counted in eval mode: the
    counted operations (convolutions, matrix products) are the same in both modes, and BatchNorm's
    training-mode decomposition on the meta device takes ten times as long to trace."""
    model.eval()
    batch = 2
    x = torch.empty(batch, 3, image_size, image_size, device="meta")
    y = torch.zeros(batch, dtype=torch.int64, device="meta")
    with FlopCounterMode(display=False) as forward:
        loss = F.cross_entropy(model(x), y)
    with FlopCounterMode(display=False) as backward:
        loss.backward()
    fwd, bwd = forward.get_total_flops() / batch, backward.get_total_flops() / batch
    return ImageFlops(forward=float(fwd), training=float(fwd + bwd))


@functools.lru_cache(maxsize=None)
def _image_flops(architecture: str, arch_kwargs_json: str, num_classes: int, image_size: int) -> ImageFlops:
    model = build_architecture(architecture, json.loads(arch_kwargs_json), num_classes, device="meta")
    return model_image_flops(model, image_size)


def image_flops(architecture: str, arch_kwargs: dict[str, Any], num_classes: int, image_size: int = 32) -> ImageFlops:
    """The FLOPs of one ``image_size`` x ``image_size`` RGB image through the sheet's architecture
    (``architecture``, ``arch_kwargs`` as in a sheet row), counted on the meta device."""
    return _image_flops(architecture, json.dumps(arch_kwargs, sort_keys=True), num_classes, image_size)


def training_flops(architecture: str, arch_kwargs: dict[str, Any], num_classes: int, image_size: int,
                   train_images: int, epochs: int, validation_images: int = 0) -> float:
    """FLOPs of training: forward and backward of ``train_images`` images per epoch for ``epochs``
    epochs, plus the forward pass of ``validation_images`` per epoch (the recipe validates after
    every epoch; 0 leaves it out). The paper's recipe on CIFAR: 50000 training images, 125 epochs,
    10000 validation images (the test set)."""
    per_image = image_flops(architecture, arch_kwargs, num_classes, image_size)
    return float(epochs * (train_images * per_image.training + validation_images * per_image.forward))


def hours(flops: float, throughput_row: dict[str, Any]) -> float:
    """Hours that ``flops`` of training take at the speed of a measured row of
    results/benchmarks/training.tsv (its images per second times its FLOPs per image, the FLOP/s
    achieved). For the row's own architecture this is images / (images per second); for another
    architecture it assumes the same achieved FLOP/s, which holds only roughly (small models reach
    fewer FLOP/s than wide ones on a GPU), so measure the architecture itself where it matters."""
    missing = [c for c in THROUGHPUT_COLUMNS if throughput_row.get(c) in (None, "")]
    if missing:
        raise ValueError(f"a throughput row of results/benchmarks/training.tsv needs {', '.join(missing)}: "
                         f"rerun dev/perf/benchmark_training.py to write them")
    rate = float(throughput_row["images_per_s"]) * float(throughput_row["flops_per_image"])
    if rate <= 0:
        raise ValueError(f"a throughput row of results/benchmarks/training.tsv has images_per_s "
                         f"{throughput_row['images_per_s']} and flops_per_image {throughput_row['flops_per_image']}: "
                         f"not a measured speed; rerun dev/perf/benchmark_training.py")
    return flops / rate / 3600.0


def read_throughputs(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a throughput table (dev/perf/benchmark_training.py's TSV) as dicts of strings."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))
