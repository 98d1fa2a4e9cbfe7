"""MultiStep against a tiny fake env whose dynamics are known (no simulator)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from lnmdn_envs import MultiStep


class CounterEnv(gym.Env[np.ndarray, np.ndarray]):
    """obs = [t, sum of actions so far]; reward = t; terminates at ``end`` steps."""

    def __init__(self, end: int = 100):
        self.observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.end = end
        self.t = 0
        self.total = 0.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.t, self.total = 0, 0.0
        return self._obs(), {"t": 0}

    def step(self, action):
        self.t += 1
        self.total += float(action[0])
        return self._obs(), float(self.t), self.t >= self.end, False, {"t": self.t}

    def _obs(self) -> np.ndarray:
        return np.array([self.t, self.total], dtype=np.float64)


def test_spaces_are_stacked():
    env = MultiStep(CounterEnv(), n_obs_steps=3, n_action_steps=4)
    assert env.observation_space.shape == (3, 2)
    assert env.action_space.shape == (4, 1)
    assert env.action_space.dtype == np.float32


def test_reset_pads_history_with_first_observation():
    env = MultiStep(CounterEnv(), n_obs_steps=3, n_action_steps=2)
    obs, info = env.reset(seed=0)
    np.testing.assert_array_equal(obs, np.zeros((3, 2)))
    assert info == {"t": 0}


def test_chunk_runs_step_by_step_and_keeps_per_step_rewards():
    env = MultiStep(CounterEnv(), n_obs_steps=2, n_action_steps=3)
    env.reset()
    obs, reward, terminated, truncated, info = env.step(np.array([[0.5], [0.25], [-1.0]]))
    np.testing.assert_array_equal(obs, [[2.0, 0.75], [3.0, -0.25]])
    assert reward == 1 + 2 + 3
    np.testing.assert_array_equal(info["step_rewards"], [1.0, 2.0, 3.0])
    assert info["n_steps"] == 3 and info["t"] == 3
    assert not terminated and not truncated


def test_chunk_stops_at_termination():
    env = MultiStep(CounterEnv(end=2), n_obs_steps=2, n_action_steps=4)
    env.reset()
    obs, reward, terminated, _, info = env.step(np.ones((4, 1)))
    assert terminated
    assert info["n_steps"] == 2 and reward == 3.0
    np.testing.assert_array_equal(info["step_rewards"], [1.0, 2.0, 0.0, 0.0])  # padded to Ta
    np.testing.assert_array_equal(obs[-1], [2.0, 2.0])


def test_time_limit_inside_counts_single_steps():
    env = MultiStep(gym.wrappers.TimeLimit(CounterEnv(), max_episode_steps=5), 2, 4)
    env.reset()
    assert env.step(np.zeros((4, 1)))[3] is False
    _, _, _, truncated, info = env.step(np.zeros((4, 1)))
    assert truncated and info["n_steps"] == 1


@pytest.mark.parametrize("bad", [np.zeros((3, 1)), np.zeros(4), np.zeros((4, 2))])
def test_wrong_chunk_shape_names_the_expected_shape(bad):
    env = MultiStep(CounterEnv(), n_obs_steps=2, n_action_steps=4)
    env.reset()
    with pytest.raises(ValueError, match=r"\(Ta, Da\) = \(4, 1\)"):
        env.step(bad)


@pytest.mark.parametrize(
    "kwargs", [{"n_obs_steps": 0}, {"n_action_steps": -1}, {"n_obs_steps": 1.5}]
)
def test_invalid_window_sizes_are_rejected(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        MultiStep(CounterEnv(), **kwargs)


def test_dict_observations_are_stacked_per_key():
    class DictEnv(CounterEnv):
        def __init__(self):
            super().__init__()
            self.observation_space = spaces.Dict(
                {"a": spaces.Box(-np.inf, np.inf, (2,)), "b": spaces.Box(0, 1, (3, 3))}
            )

        def _obs(self):
            return {"a": np.array([self.t, self.total]), "b": np.full((3, 3), 0.5)}

    env = MultiStep(DictEnv(), n_obs_steps=2, n_action_steps=1)
    obs, _ = env.reset()
    assert obs["a"].shape == (2, 2) and obs["b"].shape == (2, 3, 3)
    assert env.observation_space["b"].shape == (2, 3, 3)


def test_bad_row_rejects_the_whole_chunk_before_any_step():
    env = MultiStep(CounterEnv(), n_obs_steps=2, n_action_steps=3)
    env.reset()
    chunk = np.array([[0.1], [0.2], [np.nan]])
    with pytest.raises(ValueError, match="finite"):
        env.step(chunk)
    assert env.unwrapped.t == 0


def test_vector_env_stacks_chunks_that_end_early():
    """Padded step_rewards let Gymnasium's vector envs stack infos of chunks of unequal length."""
    envs = gym.vector.SyncVectorEnv(
        [lambda: MultiStep(CounterEnv(end=2), 2, 3), lambda: MultiStep(CounterEnv(end=50), 2, 3)]
    )
    envs.reset(seed=0)
    _, _, terminated, _, info = envs.step(np.ones((2, 3, 1)))
    np.testing.assert_array_equal(terminated, [True, False])
    np.testing.assert_array_equal(info["n_steps"], [2, 3])
    np.testing.assert_array_equal(info["step_rewards"], [[1, 2, 0], [1, 2, 3]])
