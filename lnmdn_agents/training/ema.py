"""The exponential moving average (EMA) of the weights, kept beside the trained policy.

When the policy asks for one (``policy.ema_decay(step)`` is not None), the trainer keeps a copy of
the policy whose parameters follow ``avg = decay * avg + (1 - decay) * weights`` after every
optimiser step; the copy is what validation measures and what the run folder saves.
"""

from __future__ import annotations

import copy

import torch

from lnmdn_agents.policies import PolicyBase, TrainingHooks

__all__ = ["EMA"]


class EMA:
    """A moving average of a policy's weights, updated after each optimiser step.

    Attributes:
        model: the averaged copy of the policy (eval mode, no gradients). Its buffers (the
            normaliser's statistics, running counts) are copied from the policy, not averaged.
    """

    def __init__(self, policy: PolicyBase):
        self.model = copy.deepcopy(policy).eval()
        self.model.requires_grad_(False)

    @classmethod
    def for_policy(cls, policy: PolicyBase) -> EMA | None:
        """An average starting at ``policy``'s weights, or None when the policy asks for none."""
        return cls(policy) if policy.ema_decay(0) is not None else None

    @torch.no_grad()
    def update(self, policy: PolicyBase, step: int) -> None:
        """Move the average towards ``policy``'s weights after ``step`` optimiser steps."""
        decay = policy.ema_decay(step)
        assert decay is not None
        for pe, p in zip(self.model.parameters(), policy.parameters(), strict=True):
            pe.mul_(decay).add_(p.detach(), alpha=1.0 - decay)
        for be, b in zip(self.model.buffers(), policy.buffers(), strict=True):
            be.copy_(b)

    def on_epoch_start(self, epoch: int, n_epochs: int) -> None:
        """Call the copy's :class:`~lnmdn_agents.policies.TrainingHooks` hook, if it has one."""
        if isinstance(self.model, TrainingHooks):
            self.model.on_epoch_start(epoch, n_epochs)
