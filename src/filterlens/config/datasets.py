"""Facts about the datasets the zoo is trained on: classes, input size, normalisation, and
where this run finds their test images."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


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


# Test images this workflow can read: the mini zoo's dataset (built by the workflow) and the
# CIFAR test files of torchvision's folders under cifar_training.data_dir (the folder the
# CIFAR training reads), when they are there. ImageNet's test set is never read here.
LOCAL_TEST_DATA = {"coloured_digits": "data/datasets/coloured_digits.npz"}
CIFAR_TEST_FILES = {"cifar10": ("cifar-10-batches-py", "test_batch"), "cifar100": ("cifar-100-python", "test")}


def cifar_test_path(cifar_dir: str | os.PathLike, dataset: str) -> Path:
    """The file of torchvision's CIFAR folder under ``cifar_dir`` that holds the test split."""
    folder, name = CIFAR_TEST_FILES[dataset]
    return Path(cifar_dir) / folder / name


def test_images(dataset: str, cifar_dir: str | os.PathLike) -> str | None:
    """The path of ``dataset``'s test images that this run can read, or None (see
    :func:`missing_test_images` for why)."""
    if dataset in LOCAL_TEST_DATA:
        return LOCAL_TEST_DATA[dataset]
    if dataset in CIFAR_TEST_FILES and cifar_test_path(cifar_dir, dataset).is_file():
        return str(cifar_test_path(cifar_dir, dataset))
    return None


def missing_test_images(dataset: str, cifar_dir: str | os.PathLike) -> str:
    """Why :func:`test_images` is None for ``dataset``, with the fix."""
    if dataset in CIFAR_TEST_FILES:
        return (f"the {dataset} test set is not at hand: {cifar_test_path(cifar_dir, dataset)} is missing (unpack "
                f"torchvision's {CIFAR_TEST_FILES[dataset][0]}/ into cifar_training.data_dir = {cifar_dir})")
    known = ", ".join([*LOCAL_TEST_DATA, *CIFAR_TEST_FILES])
    return f"this workflow holds no test images of {dataset!r} (only of {known})"
