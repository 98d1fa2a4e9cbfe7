"""Scripted experts with privileged state, one module per task, and the one loop that runs them.

Every expert follows the :class:`Expert` protocol: it acts on the single-step task env
(``lnmdn_envs.make_task_env``) and may read privileged simulator state through ``env.unwrapped``.
:func:`rollout_expert` runs one episode; the dataset recipes and each expert's success
measurement use it, so what is measured is what a dataset records: it returns the datasets' one
episode type, :class:`lnmdn_datasets.episodes.EpisodeRecord`. :func:`replay_episode` is the
replay self-test: a recorded episode's actions from its first recorded state.

:class:`ActionNoise` is DART's noise injection (Laskey et al., CoRL 2017): the env executes the
expert's action plus noise, so the demonstrations visit states off the expert's own path, and the
expert's clean action there is recorded as the label (``infos["expert_action"]``) that a policy
learns; ``actions`` stay what was executed, so the replay self-test still holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from lnmdn_datasets.episodes import EpisodeRecord

__all__ = ["ActionNoise", "Expert", "replay_episode", "rollout_expert"]


class Expert(Protocol):
    """A scripted demonstrator."""

    def reset(self, env: gym.Env[Any, Any], rng: np.random.Generator) -> None:
        """Start an episode; called right after ``env.reset(seed=...)``.

        ``rng`` draws this episode's variation (speeds, offsets, noise, route choice).
        """

    def act(self, env: gym.Env[Any, Any], obs: np.ndarray) -> np.ndarray:
        """Return the single-step action ``(Da,)`` for the current state."""
        ...


@dataclass(frozen=True)
class ActionNoise:
    """Noise added to the expert's actions before the env executes them (DART).

    ``n_t = corr * n_{t-1} + sqrt(1 - corr^2) * std * e_t`` with ``e_t`` standard normal per
    action dimension and ``n_0 = std * e_0``: stationary with standard deviation ``std`` in
    action units; ``corr`` 0 gives independent noise per step, values near 1 a slow drift that
    the expert has to correct over several steps, as a policy's own errors do.

    Attributes:
        std: standard deviation per action dimension, in action units (Push-T: px).
        corr: correlation of consecutive steps' noise, in [0, 1).
        dims: the action dimensions that get noise (Can: the three position deltas, not the
            orientation or the gripper); None: all of them.
    """

    std: float
    corr: float = 0.0
    dims: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not (np.isfinite(self.std) and self.std > 0):
            raise ValueError(f"ActionNoise needs std > 0 (action units), got std={self.std!r}")
        if not 0.0 <= self.corr < 1.0:
            raise ValueError(f"ActionNoise needs corr in [0, 1), got corr={self.corr!r}")
        if self.dims is not None and (
            not self.dims or any(not isinstance(d, int) or d < 0 for d in self.dims)
        ):
            raise ValueError(
                f"ActionNoise dims must be a non-empty tuple of action indices >= 0 or None "
                f"(every dimension), got dims={self.dims!r}"
            )

    def sample(self, previous: np.ndarray | None, rng: np.random.Generator, dim: int) -> np.ndarray:
        """The next step's noise ``(dim,)`` given the previous step's (None at the first step).

        Dimensions outside ``dims`` are 0; ``dims`` must index into ``dim``.
        """
        e = rng.standard_normal(dim) * self.std
        if self.dims is not None:
            if max(self.dims) >= dim:
                raise ValueError(
                    f"ActionNoise dims={self.dims!r} index past the action's {dim} dimensions"
                )
            e[[d for d in range(dim) if d not in self.dims]] = 0.0
        if previous is None:
            return e
        return self.corr * previous + np.sqrt(1.0 - self.corr**2) * e


def _state_of(env: gym.Env[Any, Any]) -> np.ndarray:
    return np.asarray(env.unwrapped.get_state(), dtype=np.float64).copy()  # type: ignore[attr-defined]


def rollout_expert(
    env: gym.Env[Any, Any],
    expert: Expert,
    seed: int,
    rng: np.random.Generator,
    noise: ActionNoise | None = None,
) -> EpisodeRecord:
    """Run ``expert`` for one episode on the single-step ``env`` from reset seed ``seed``.

    Args:
        env: the single-step task env (``lnmdn_envs.make_task_env(id)``), time limit included.
        expert: the demonstrator.
        seed: the reset seed.
        rng: the expert's randomness for this episode (and the noise's, with ``noise``).
        noise: DART noise injection: the env executes the expert's action plus this noise.

    Returns:
        The episode, ended by termination or truncation, with ``seed`` and the ``infos``
        ``"state"`` (``(L+1, S)`` float64, ``env.unwrapped.get_state()`` before each action and
        after the last), ``"is_success"`` (``(L+1,)`` bool) and ``"score"`` (``(L+1,)`` float),
        the env's values after the reset and each step. ``actions`` are as executed: checked,
        clipped and cast to the action space's dtype. With ``noise``, ``infos`` also has
        ``"expert_action"`` (``(L+1, Da)``, float32): at index t the expert's own action in the
        state before ``actions[t]`` (the label), NaN after the last step, as ``"state"`` is
        indexed.
    """
    from lnmdn_envs.validation import check_action

    obs, info = env.reset(seed=seed)
    expert.reset(env, rng)
    space = env.action_space
    observations, actions, rewards, terms, truncs = [obs], [], [], [], []
    states = [_state_of(env)]
    success, score = [bool(info.get("is_success", False))], [float(info.get("score", 0.0))]
    labels: list[np.ndarray] = []
    drawn: np.ndarray | None = None
    while True:
        action = check_action(expert.act(env, obs), space).astype(space.dtype)  # type: ignore[arg-type]
        if noise is not None:
            labels.append(action)
            drawn = noise.sample(drawn, rng, action.shape[-1])
            noisy = np.clip(action + drawn, space.low, space.high)  # type: ignore[attr-defined]
            action = noisy.astype(space.dtype)
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        actions.append(action)
        rewards.append(float(reward))
        terms.append(bool(terminated))
        truncs.append(bool(truncated))
        states.append(_state_of(env))
        success.append(bool(info.get("is_success", False)))
        score.append(float(info.get("score", 0.0)))
        if terminated or truncated:
            break
    infos = {
        "state": np.asarray(states),
        "is_success": np.asarray(success),
        "score": np.asarray(score),
    }
    if noise is not None:
        last = np.full_like(labels[0], np.nan, dtype=np.float32)
        infos["expert_action"] = np.asarray([*labels, last], dtype=np.float32)
    return EpisodeRecord(
        observations=np.asarray(observations),
        actions=np.asarray(actions),
        rewards=np.asarray(rewards),
        terminations=np.asarray(terms),
        truncations=np.asarray(truncs),
        infos=infos,
        seed=int(seed),
    )


def replay_episode(
    env: gym.Env[Any, Any], first_state: np.ndarray, actions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Replay recorded actions open loop from a recorded first state (the replay self-test).

    Resets ``env`` with ``options={"reset_to_state": first_state}`` and executes ``actions``,
    stopping at termination or truncation, as robomimic's ``playback_dataset.py`` does with
    ``reset_to`` (robomimic #230 is what a replay that does not reproduce its demo looks like).

    Args:
        env: the single-step task env the episode was recorded on.
        first_state: ``env.unwrapped.get_state()`` before the episode's first action.
        actions: ``(L, Da)`` recorded actions.

    Returns:
        ``observations (L'+1, Do)`` and ``is_success (L'+1,)`` after the reset and each step,
        ``L' <= L`` the steps executed.
    """
    obs, info = env.reset(options={"reset_to_state": first_state})
    observations, success = [obs], [bool(info.get("is_success", False))]
    for action in actions:
        obs, _, terminated, truncated, info = env.step(action)
        observations.append(obs)
        success.append(bool(info.get("is_success", False)))
        if terminated or truncated:
            break
    return np.asarray(observations), np.asarray(success)
