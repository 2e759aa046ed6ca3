"""Facts about the datasets the zoo is trained on: classes, input size, normalisation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    image_size: int
    # Input normalisation that a model of this dataset expects when its architecture does not
    # normalise internally; None means inputs in [0, 1] go in as they are.
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None


CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2471, 0.2435, 0.2616)

DATASETS: dict[str, DatasetInfo] = {
    "coloured_digits": DatasetInfo("coloured_digits", 10, 32),
    "cifar10": DatasetInfo("cifar10", 10, 32, CIFAR_MEAN, CIFAR_STD),
    "cifar100": DatasetInfo("cifar100", 100, 32, CIFAR_MEAN, CIFAR_STD),
    "imagenet": DatasetInfo("imagenet", 1000, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


def dataset_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None
