"""Training and evaluation of the mini zoo: normal, or L-inf PGD adversarial training.

Deterministic on CPU: one seeded generator orders batches and draws PGD starts, torch uses
deterministic algorithms, and the caller fixes the thread count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from filterlens.train.attacks import pgd_linf
from filterlens.train.batches import batched_accuracy, random_crop, sgd_step


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
            # RandomCrop(32, padding=4) as in the paper's recipe (no flips: digits are not symmetric)
            xb, yb = random_crop(x[index], generator, padding=4, columns_first=True), y[index]
            if settings.adversarial is not None:
                a = settings.adversarial
                if a.warmup_epochs:
                    done = epoch + start / len(x)
                    a = a.scaled(min(1.0, done / a.warmup_epochs))
                model.eval()  # PGD against fixed BatchNorm statistics, as is common practice
                xb = pgd_linf(model, xb, yb, a.eps, a.step_size, a.steps, a.random_start, generator)
                model.train()
            logits, loss = sgd_step(model, optimizer, xb, yb)
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
    if attack is None:
        return batched_accuracy(model, x, y, batch_size)
    generator = torch.Generator().manual_seed(seed)

    def attacked(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return pgd_linf(model, xb, yb, attack.eps, attack.step_size, attack.steps, attack.random_start, generator)

    return batched_accuracy(model, x, y, batch_size, inputs=attacked)
