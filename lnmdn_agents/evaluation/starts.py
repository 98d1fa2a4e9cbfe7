"""Closed-loop start states: ``random`` (the task's own reset) or ``dataset`` (held-out windows).

* ``random``: each episode resets with its seed (100000, 100001, ...); on Push-T these are
  Diffusion Policy's legacy test starts. The task's own step limit applies.
* ``dataset``: each episode starts at the simulator state a held-out demonstration window's
  current step was recorded in (the Minari datasets store ``infos["state"]`` before every step),
  with a step limit to set. This is the liquid-MDN paper's closed-loop protocol
  (``04_pusht_closedloop.ipynb``: the env is reset to the last observation of a validation
  window's history, and the episode gets 200 steps): states from the middle of demonstrations,
  often a few pushes from the goal. The windows come from the test split of the run's own
  protocol (:mod:`lnmdn_agents.protocols`): held-out episodes under ``standard``, held-out windows
  of episodes that also gave training windows under ``reference``.

Every task with ``reset(options={"reset_to_state": s})`` supports dataset starts: Push-T (the
5-number state), Can (the flattened MuJoCo state; the controllers start afresh, see
``lnmdn_envs.can``) and the mazes (position, velocity, goal). The env's reset after the state
gives a history that repeats the start observation, as any reset does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["START_MODES", "ResetToState", "check_starts", "dataset_starts", "describe_starts"]

logger = logging.getLogger(__name__)

START_MODES = ("random", "dataset")
"""The closed-loop start-state options."""


class ResetToState(gym.Wrapper[Any, Any, Any, Any]):
    """Resets with a seed listed in ``states`` start from that state (others reset as usual).

    The rollout names its episodes by seeds; this wrapper maps each seed of a dataset start to
    its simulator state, so the rollout loop stays the same for both start options.

    Args:
        env: a chunked env whose task accepts ``options={"reset_to_state": s}``.
        states: ``{seed: state}`` (states as lists or arrays, so the wrapper pickles into
            worker processes).
    """

    def __init__(self, env: gym.Env[Any, Any], states: dict[int, Any]):
        super().__init__(env)
        self.states = {int(k): np.asarray(v, dtype=np.float64) for k, v in states.items()}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset; a listed seed starts from its state."""
        if seed is not None and int(seed) in self.states:
            options = {**(options or {}), "reset_to_state": self.states[int(seed)].copy()}
        return self.env.reset(seed=seed, options=options)


def dataset_starts(
    dataset_id: str,
    config: Any,
    n: int,
    *,
    protocol: str = "standard",
    split: str = "test",
    split_seed: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Start states of ``n`` held-out windows of ``dataset_id``, cut with the policy's window.

    Args:
        dataset_id: a Minari id whose episodes store ``infos["state"]``.
        config: the policy config (windows).
        n: how many starts (a seeded subset of the split's windows, without repetition).
        protocol: the run's protocol (which split: by episode or by window).
        split: ``"test"`` (default) or ``"val"``.
        split_seed: the run's split seed.
        seed: picks the subset.

    Returns:
        ``{"states": [state, ...], "episodes": [dataset episode, ...], "steps": [t, ...],
        "steps_left": [demonstration steps after t, ...]}``.

    Raises:
        ValueError: the split has fewer than ``n`` windows, or the dataset stores no states.
    """
    import minari

    from lnmdn_agents.data import load_episodes, make_splits
    from lnmdn_agents.evaluation.offline import window_index
    from lnmdn_agents.protocols import get_protocol

    episodes = load_episodes(dataset_id)
    splits = make_splits(
        episodes, config, seed=split_seed, split_unit=get_protocol(protocol).split_unit
    )
    windows = getattr(splits, split)
    if n > len(windows):
        raise ValueError(
            f"{n} dataset starts asked for, but the {split!r} split of {dataset_id!r} has "
            f"{len(windows)} windows; ask for fewer episodes"
        )
    index = window_index(len(windows), n, seed)
    # spread the starts over the split in a seeded order (the rollout takes them in turn)
    index = np.random.default_rng(seed).permutation(index)
    ep_ids, steps = windows.current_steps(index)
    dataset = minari.load_dataset(dataset_id)
    wanted = sorted(set(int(e) for e in ep_ids))
    states_of: dict[int, np.ndarray] = {}
    for ep_id, ep in zip(wanted, dataset.iterate_episodes(episode_indices=wanted), strict=True):
        state = ep.infos.get("state") if isinstance(ep.infos, dict) else None
        if state is None:
            raise ValueError(
                f"{dataset_id!r} stores no infos['state'] per step, so its windows give no start "
                "states; use the random starts (--starts random) or a dataset built by lnmdn"
            )
        states_of[ep_id] = np.asarray(state, dtype=np.float64)
    states = [states_of[int(e)][int(t)] for e, t in zip(ep_ids, steps, strict=True)]
    left = [len(episodes[int(e)]) - int(t) for e, t in zip(ep_ids, steps, strict=True)]
    return {
        "states": states,
        "episodes": [int(e) for e in ep_ids],
        "steps": [int(t) for t in steps],
        "steps_left": left,
    }


def describe_starts(starts: dict[str, Any], max_steps: int | None) -> dict[str, Any]:
    """What a closed-loop result records about its dataset starts (JSON-ready)."""
    left = np.asarray(starts["steps_left"], dtype=float)
    return {
        "mode": "dataset",
        "max_steps": max_steps,
        "episodes": starts["episodes"],
        "steps": starts["steps"],
        "median_demo_steps_left": float(np.median(left)) if len(left) else None,
    }


def check_starts(starts: str | Sequence[str]) -> tuple[str, ...]:
    """The start options, checked (a single name or several)."""
    names = (starts,) if isinstance(starts, str) else tuple(starts)
    bad = [s for s in names if s not in START_MODES]
    if bad or not names:
        raise ValueError(f"starts must be among {START_MODES}, got {list(names)}")
    return names
