"""Scripted experts with privileged state, one module per task.

Every expert follows the :class:`Expert` protocol: it acts on the single-step task env
(``lnmdn_envs.make_task_env``) and may read privileged simulator state through ``env.unwrapped``.
"""

from __future__ import annotations

from typing import Any, Protocol

import gymnasium as gym
import numpy as np

__all__ = ["Expert"]


class Expert(Protocol):
    """A scripted demonstrator."""

    def reset(self, env: gym.Env[Any, Any], rng: np.random.Generator) -> None:
        """Start an episode; called right after ``env.reset(seed=...)``.

        ``rng`` draws this episode's variation (speeds, offsets, noise, route choice).
        """

    def act(self, env: gym.Env[Any, Any], obs: np.ndarray) -> np.ndarray:
        """Return the single-step action ``(Da,)`` for the current state."""
        ...
