"""Read the dataset file that rule coloured_digits writes."""

from __future__ import annotations

import os

import numpy as np
import torch

from filterlens.digits import to_tensor


def load_split(path: str | os.PathLike, part: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [0, 1] and labels of ``part`` ('train' or 'test')."""
    with np.load(path) as data:
        return to_tensor(data[f"x_{part}"]), torch.from_numpy(data[f"y_{part}"])
