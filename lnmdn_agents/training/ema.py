"""The exponential moving average (EMA) of the weights: its schedule, the averaged copy, the update.

A policy asks for an EMA in its config, with three fields (:class:`EMAFields`; the ``diffusion``
policy has them, with Diffusion Policy's values)::

    use_ema        True      keep an average; validate and save it instead of the raw weights
    ema_power      0.75      how fast the decay warms up
    ema_max_decay  0.9999    the decay's upper bound

The trainer reads them here (:meth:`EMASchedule.from_policy_config`), keeps a copy of the policy
beside it, and after each optimiser step ``step`` (1, 2, ...) moves the copy::

    decay = min(max_decay, max(0, 1 - (1 + step) ** -power))     0.41 at step 1, 0.97 at 100
    avg   = decay * avg + (1 - decay) * weights                    buffers: copied, not averaged

The copy is what validation measures, what ``best/`` and the run folder's ``model.safetensors``
hold, and what a training checkpoint stores as ``ema.*``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from lnmdn_agents.policies import PolicyBase, PolicyConfig, TrainingHooks

__all__ = ["EMA", "EMAFields", "EMASchedule"]


@runtime_checkable
class EMAFields(Protocol):
    """The policy config fields that ask the trainer for an EMA of the weights.

    Attributes:
        use_ema: keep an average; validation, ``best/`` and the run folder get its weights.
        ema_power: warm-up power of :class:`EMASchedule`.
        ema_max_decay: upper bound of the decay, in (0, 1).
    """

    use_ema: bool
    ema_power: float
    ema_max_decay: float


@dataclass(frozen=True)
class EMASchedule:
    """The EMA decay after ``step`` optimiser steps: Diffusion Policy's warm-up.

    ``decay(step) = min(max_decay, max(0, 1 - (1 + step) ** -power))``: the average follows the
    weights closely early in training and ever more slowly later, up to ``max_decay``.

    Attributes:
        power: warm-up power (Diffusion Policy: 0.75).
        max_decay: upper bound of the decay (Diffusion Policy: 0.9999).
    """

    power: float = 0.75
    max_decay: float = 0.9999

    def decay(self, step: int) -> float:
        """The decay to apply after optimiser step ``step``."""
        return min(self.max_decay, max(0.0, 1.0 - (1.0 + step) ** -self.power))

    @classmethod
    def from_policy_config(cls, config: PolicyConfig) -> EMASchedule | None:
        """The schedule a policy config asks for, or None (no :class:`EMAFields`, or no EMA)."""
        if not isinstance(config, EMAFields) or not config.use_ema:
            return None
        return cls(power=config.ema_power, max_decay=config.ema_max_decay)


class EMA:
    """A moving average of a policy's weights, updated after each optimiser step.

    Args:
        policy: the policy being trained; the average starts at its weights.
        schedule: the decay per step.

    Attributes:
        model: the averaged copy of the policy (eval mode, no gradients).
        schedule: the decay per step.
    """

    def __init__(self, policy: PolicyBase, schedule: EMASchedule):
        self.model = copy.deepcopy(policy).eval()
        self.model.requires_grad_(False)
        self.schedule = schedule

    @classmethod
    def for_policy(cls, policy: PolicyBase) -> EMA | None:
        """The average ``policy``'s config asks for, or None when it asks for none."""
        schedule = EMASchedule.from_policy_config(policy.config)
        return None if schedule is None else cls(policy, schedule)

    @torch.no_grad()
    def update(self, policy: PolicyBase, step: int) -> None:
        """Move the average towards ``policy``'s weights after optimiser step ``step``."""
        decay = self.schedule.decay(step)
        for pe, p in zip(self.model.parameters(), policy.parameters(), strict=True):
            pe.mul_(decay).add_(p.detach(), alpha=1.0 - decay)
        for be, b in zip(self.model.buffers(), policy.buffers(), strict=True):
            be.copy_(b)

    def on_epoch_start(self, epoch: int, n_epochs: int) -> None:
        """Call the copy's :class:`~lnmdn_agents.policies.TrainingHooks` hook, if it has one."""
        if isinstance(self.model, TrainingHooks):
            self.model.on_epoch_start(epoch, n_epochs)
