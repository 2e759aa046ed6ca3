"""L-inf PGD (Madry et al. 2018) on [0, 1] images, used by training, evaluation and Fig. 6."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def pgd_linf(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, step_size: float, steps: int,
             random_start: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
    """Adversarial examples within the L-inf ball of radius ``eps`` around ``x``, clipped to [0, 1]."""
    x = x.detach()
    x_adv = x.clone()
    if random_start:
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x_adv = (x_adv + (2 * noise - 1) * eps).clamp(0, 1)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y)
        (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = x_adv.detach() + step_size * grad.sign()
        x_adv = torch.max(torch.min(x_adv, x + eps), x - eps).clamp(0, 1)
    return x_adv.detach()
