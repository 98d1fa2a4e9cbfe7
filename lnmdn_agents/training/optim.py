"""The optimiser: AdamW without weight decay on biases and norms, and its learning-rate schedule.

::

    lr   ^    .--.._
         |   /      ``--.._
         |  /              ``--.._
         | /                      ``--.__ min_lr
         +-----------------------------------> step
          warm-up     cosine decay       total

The warm-up is linear and at most a tenth of the run; the decay ends at ``min_lr`` on the last
step.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["lr_at", "make_optimizer", "set_lr", "warmup_steps"]


def make_optimizer(policy: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; matrices decay, biases and norm scales do not."""
    decay_params = [p for p in policy.parameters() if p.requires_grad and p.ndim >= 2]
    other_params = [p for p in policy.parameters() if p.requires_grad and p.ndim < 2]
    return torch.optim.AdamW(
        [
            {"params": decay_params, "weight_decay": weight_decay},
            {"params": other_params, "weight_decay": 0.0},
        ],
        lr=lr,
    )


def warmup_steps(warmup_epochs: float, steps_per_epoch: int, total_steps: int) -> int:
    """Warm-up length in steps, at most a tenth of the run (a short run still peaks and decays)."""
    return min(round(warmup_epochs * steps_per_epoch), total_steps // 10)


def lr_at(step: int, total_steps: int, warmup_steps: int, lr: float, min_lr: float) -> float:
    """Learning rate at optimiser step ``step``: linear warm-up, then cosine decay to ``min_lr``."""
    if warmup_steps > 0 and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr
