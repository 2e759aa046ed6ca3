"""What every training and evaluation loop of the package does to a batch: uint8 images to
floats, the paper's augmentation (a zero-padded random crop and a horizontal flip), one SGD
step, and accuracy over batches."""

from __future__ import annotations

import contextlib
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images to float32 in [0, 1] (torchvision's ToTensor; no normalisation)."""
    return x.float().div_(255)


def random_crop(x: torch.Tensor, generator: torch.Generator, padding: int = 4,
                columns_first: bool = False) -> torch.Tensor:
    """RandomCrop(size, padding) with zero fill: per image a window at a uniform row and column
    offset in [0, 2 padding] of the padded image. The offsets are drawn on the CPU from
    ``generator`` (the same draws on any device), the rows' first, or with ``columns_first``
    the columns' (the order the mini zoo is trained with)."""
    n, c, h, w = x.shape
    first = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
    second = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
    dy, dx = (second, first) if columns_first else (first, second)
    padded = F.pad(x, (padding,) * 4)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    return padded[torch.arange(n, device=x.device)[:, None, None, None],
                  torch.arange(c, device=x.device)[None, :, None, None], rows, cols]


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image flipped horizontally with probability 1/2 (drawn on the CPU from ``generator``)."""
    flips = (torch.rand(len(x), generator=generator) < 0.5).to(x.device)
    return torch.where(flips[:, None, None, None], x.flip(3), x)


def sgd_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
             y: torch.Tensor, autocast: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of ``optimizer`` on the cross-entropy of the batch; returns its logits and loss.
    With ``autocast`` (torch.bfloat16) the forward pass and the loss run under ``torch.autocast``
    on the batch's device; the backward pass and the step see the float32 weights as always."""
    with torch.autocast(x.device.type, dtype=autocast) if autocast is not None else contextlib.nullcontext():
        logits = model(x)
        loss = F.cross_entropy(logits, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return logits, loss


def batched_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                     inputs: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> float:
    """Accuracy in percent, in eval mode, over batches of ``batch_size``; ``inputs(xb, yb)`` is
    what the model sees of a batch (an attack, a conversion; by default the batch itself)."""
    model.eval()
    correct = 0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        if inputs is not None:
            xb = inputs(xb, yb)
        with torch.no_grad():
            correct += (model(xb).argmax(1) == yb).sum().item()
    return 100.0 * correct / len(x)
