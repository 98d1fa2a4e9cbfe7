"""The scripted Can expert: success, variation between demonstrations, and replay from state."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

if importlib.util.find_spec("robosuite") is None:
    pytest.skip("lnmdn/Can-v0 needs the 'mujoco' extra", allow_module_level=True)

import lnmdn_envs
from lnmdn_datasets.experts import Expert, replay_episode, rollout_expert
from lnmdn_datasets.experts.can import (
    CanExpert,
    measure_can_expert,
)


@pytest.fixture(scope="module")
def env():
    env = lnmdn_envs.make_task_env("lnmdn/Can-v0")
    yield env
    env.close()


@pytest.fixture(scope="module")
def episodes(env):
    """Two demonstrations from the same initial state, with different per-episode variation."""
    expert: Expert = CanExpert()  # the protocol the dataset recipes use
    return [rollout_expert(env, expert, 0, np.random.default_rng([0, k])) for k in (0, 1)]


def test_expert_follows_protocol_and_succeeds(episodes):
    for ep in episodes:
        assert ep.success
        assert ep.actions.dtype == np.float32 and ep.actions.shape[1] == 7
        assert np.all(np.abs(ep.actions) <= 1.0)
        assert ep.observations.shape == (len(ep.actions) + 1, 23)
        assert ep.infos["state"].shape == (len(ep.actions) + 1, 71)
        assert len(ep.actions) < 400  # terminated on success, before the time limit


def test_demonstrations_vary(episodes):
    a, b = episodes
    np.testing.assert_array_equal(a.observations[0], b.observations[0])  # same initial state
    n = min(len(a.actions), len(b.actions))
    assert len(a.actions) != len(b.actions) or not np.allclose(a.actions[:n], b.actions[:n])
    # the can ends in a different place inside its compartment
    assert np.linalg.norm(a.observations[-1, :2] - b.observations[-1, :2]) > 1e-3


def test_expert_is_reproducible(env, episodes):
    again = rollout_expert(env, CanExpert(), 0, np.random.default_rng([0, 0]))
    np.testing.assert_array_equal(again.actions, episodes[0].actions)


def test_replay_from_first_state_reproduces_success(env, episodes):
    """robomimic #230: replaying a demo's actions from its first state must succeed too."""
    ep = episodes[0]
    env.reset(seed=123)  # the env was elsewhere before the replay
    observations, is_success = replay_episode(env, ep.infos["state"][0], ep.actions)
    assert is_success.any()
    assert len(observations) == len(ep.observations)
    np.testing.assert_array_equal(observations, ep.observations)  # bit for bit


def test_bad_noise_scale():
    with pytest.raises(ValueError, match="noise_scale"):
        CanExpert(noise_scale=-1.0)


@pytest.mark.slow
def test_expert_success_over_200_seeded_episodes(env):
    result = measure_can_expert(200, seed=0, env=env)
    assert result["success_rate"] >= 0.95, result
