"""Training and evaluation of the mini zoo: normal, or L-inf PGD adversarial training.

Deterministic on CPU: one seeded generator orders batches and draws PGD starts, torch uses
deterministic algorithms, and the caller fixes the thread count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from filterlens.train.attacks import pgd_linf


@dataclass(frozen=True)
class PGDSettings:
    eps: float
    step_size: float
    steps: int
    random_start: bool = True
    # Adversarial training only: eps (and the step size with it) grows linearly from 0 over
    # this many epochs; small models on little data do not learn under the full eps at once.
    warmup_epochs: int = 0

    def scaled(self, fraction: float) -> "PGDSettings":
        return PGDSettings(self.eps * fraction, self.step_size * fraction, self.steps, self.random_start,
                           self.warmup_epochs)


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    seed: int
    adversarial: PGDSettings | None = None  # None: normal training


def seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    return torch.Generator().manual_seed(seed)


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """RandomCrop(32, padding=4) as in the paper's recipe (no flips: digits are not symmetric)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4))
    dx = torch.randint(0, 9, (n,), generator=generator)
    dy = torch.randint(0, 9, (n,), generator=generator)
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, settings: TrainSettings,
          log: Callable[[str], None] = print) -> list[dict]:
    """Train ``model`` in place on [0, 1] images; return one history row per epoch."""
    generator = seed_everything(settings.seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum,
                                weight_decay=settings.weight_decay, nesterov=True)
    steps_per_epoch = -(-len(x) // settings.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=settings.lr, epochs=settings.epochs, steps_per_epoch=steps_per_epoch)
    history = []
    for epoch in range(settings.epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        total_loss, correct = 0.0, 0
        for start in range(0, len(x), settings.batch_size):
            index = order[start:start + settings.batch_size]
            xb, yb = _augment(x[index], generator), y[index]
            if settings.adversarial is not None:
                a = settings.adversarial
                if a.warmup_epochs:
                    done = epoch + start / len(x)
                    a = a.scaled(min(1.0, done / a.warmup_epochs))
                model.eval()  # PGD against fixed BatchNorm statistics, as is common practice
                xb = pgd_linf(model, xb, yb, a.eps, a.step_size, a.steps, a.random_start, generator)
                model.train()
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(index)
            correct += (logits.argmax(1) == yb).sum().item()
        row = {"epoch": epoch + 1, "loss": total_loss / len(x), "train_acc": 100.0 * correct / len(x)}
        history.append(row)
        log(f"epoch {row['epoch']}/{settings.epochs}: loss {row['loss']:.4f}, train accuracy {row['train_acc']:.2f}%")
    model.eval()
    return history


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: PGDSettings | None = None,
             seed: int = 0, batch_size: int = 256) -> float:
    """Accuracy in percent on clean inputs, or under ``attack``."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    correct = 0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        if attack is not None:
            xb = pgd_linf(model, xb, yb, attack.eps, attack.step_size, attack.steps, attack.random_start, generator)
        with torch.no_grad():
            correct += (model(xb).argmax(1) == yb).sum().item()
    return 100.0 * correct / len(x)
