"""The mini zoo's dataset: scikit-learn's 8x8 digits as coloured 32x32 RGB images.

Each digit is painted in a random light colour on a random dark background colour (seeded,
with a minimum colour distance so the digit stays visible), upsampled bilinearly to the
32x32 input of CIFAR-style architectures. Colour carries no label information, so a model
must learn colour-invariant shape detectors: its first-layer filters then mix colour
channels as CIFAR models' do. The train/test split is fixed by the seed and stratified.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

MIN_COLOUR_DISTANCE = 0.6  # Euclidean distance in RGB [0, 1]^3 between digit and background


@dataclass
class ImageSplit:
    x_train: np.ndarray  # (n, 3, size, size) uint8
    y_train: np.ndarray  # (n,) int64
    x_test: np.ndarray
    y_test: np.ndarray


def _colour_pairs(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # Light digits on dark backgrounds: random hues, but a consistent polarity, so that a
    # small model learns the shapes in a few CPU minutes.
    foreground = 0.45 + 0.55 * rng.random((n, 3))
    background = 0.55 * rng.random((n, 3))
    close = np.linalg.norm(foreground - background, axis=1) < MIN_COLOUR_DISTANCE
    while close.any():  # redraw only the pairs that are too alike
        foreground[close] = 0.45 + 0.55 * rng.random((close.sum(), 3))
        background[close] = 0.55 * rng.random((close.sum(), 3))
        close = np.linalg.norm(foreground - background, axis=1) < MIN_COLOUR_DISTANCE
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
    """uint8 images to float32 in [0, 1]."""
    return torch.from_numpy(images).float().div_(255.0)
