"""The mini zoo's dataset: scikit-learn's 8x8 digits as coloured 32x32 RGB images.

Each digit is painted in a random light colour on a random dark background colour (seeded;
every channel lighter in the digit than in the background by a margin), upsampled bilinearly
to the 32x32 input of CIFAR-style architectures. Colour carries no label information, so a model
must learn colour-invariant shape detectors: its first-layer filters then mix colour
channels as CIFAR models' do. The train/test split is fixed by the seed and stratified.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from filterlens.train.batches import to_float


# Per channel, the digit's colour lies in [FOREGROUND_MIN, 1] and the background's in
# [0, BACKGROUND_MAX], so every channel has a contrast of at least 0.4. A Euclidean minimum
# distance alone is not enough for adversarial training: it leaves ~30 % of images with a
# channel whose contrast is below 0.2 or even inverted, which an L-inf perturbation of
# eps 0.1 per channel erases, and robust models then failed to learn at all.
FOREGROUND_MIN = 0.7
BACKGROUND_MAX = 0.3


@dataclass
class ImageSplit:
    x_train: np.ndarray  # (n, 3, size, size) uint8
    y_train: np.ndarray  # (n,) int64
    x_test: np.ndarray
    y_test: np.ndarray


def _colour_pairs(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # Light digits on dark backgrounds: random hues, but a consistent polarity in every
    # channel, so that a small model learns the shapes (robustly) in a few CPU minutes.
    foreground = FOREGROUND_MIN + (1 - FOREGROUND_MIN) * rng.random((n, 3))
    background = BACKGROUND_MAX * rng.random((n, 3))
    return foreground, background


def coloured_digits(seed: int = 0, image_size: int = 32, test_fraction: float = 0.25,
                    limit: int | None = None) -> ImageSplit:
    digits = load_digits()
    intensity = digits.images.astype(np.float32) / 16.0  # (n, 8, 8) in [0, 1]
    labels = digits.target.astype(np.int64)
    if limit is not None:
        intensity, labels = intensity[:limit], labels[:limit]
    rng = np.random.default_rng(seed)
    mask = F.interpolate(torch.from_numpy(intensity)[:, None], size=(image_size, image_size),
                         mode="bilinear", align_corners=False).clamp(0, 1).numpy()  # (n, 1, s, s)
    foreground, background = _colour_pairs(len(labels), rng)
    images = background[:, :, None, None] * (1 - mask) + foreground[:, :, None, None] * mask
    images = np.round(images * 255).astype(np.uint8)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    return ImageSplit(x_train, y_train, x_test, y_test)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 images (numpy) to float32 in [0, 1]."""
    return to_float(torch.from_numpy(images))


def load_split(path: str | os.PathLike, part: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [0, 1] and labels of ``part`` ('train' or 'test')."""
    with np.load(path) as data:
        return to_tensor(data[f"x_{part}"]), torch.from_numpy(data[f"y_{part}"])
