"""Closed-loop dataset starts: held-out windows' recorded states, restored exactly."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from lnmdn_agents.data import load_episodes, make_splits
from lnmdn_agents.evaluation.starts import ResetToState, dataset_starts
from lnmdn_agents.policies import make_policy

pytestmark = pytest.mark.usefixtures("one_thread")

UMAZE = "lnmdn/pointmaze-umaze/expert-v0"
TINY = {"d_model": 16, "n_layers": 1, "n_heads": 2, "rnn_layers": 1, "rnn_hidden": 16,
        "cfc_backbone_units": 16, "decoder_hidden": 16}  # fmt: skip


@pytest.fixture(scope="module")
def umaze_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-episode U-maze dataset made by the suite's expert, built once for this module."""
    from lnmdn_datasets.recipes import build

    root = tmp_path_factory.mktemp("minari_umaze")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(root))
        build(UMAZE, n_episodes=6, progress=False)
    return root


@pytest.fixture
def umaze(_isolated_minari_root, umaze_root, monkeypatch) -> str:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(umaze_root))
    return UMAZE


@pytest.mark.parametrize("protocol", ["standard", "reference"])
def test_dataset_starts_are_held_out_states_that_the_env_restores(umaze, protocol):
    import lnmdn_envs  # noqa: F401

    window = "history" if protocol == "standard" else "horizon"
    cfg = make_policy("liquid_mdn", obs_dim=6, obs_window=window, **TINY).config
    starts = dataset_starts(umaze, cfg, 4, protocol=protocol)
    episodes = load_episodes(umaze)
    unit = "episode" if protocol == "standard" else "window"
    test = make_splits(episodes, cfg, split_unit=unit).test
    held_out = set(zip(*test.current_steps(), strict=True))
    assert {(e, t) for e, t in zip(starts["episodes"], starts["steps"], strict=True)} <= held_out
    assert starts["steps_left"] == [
        len(episodes[e]) - t for e, t in zip(starts["episodes"], starts["steps"], strict=True)
    ]
    seeds = [100000 + i for i in range(4)]
    table = dict(zip(seeds, starts["states"], strict=True))
    env = ResetToState(gym.make("lnmdn/PointMaze-UMaze-v0"), table)
    for seed, e, t in zip(seeds, starts["episodes"], starts["steps"], strict=True):
        obs, _ = env.reset(seed=seed)
        np.testing.assert_array_equal(obs[-1], episodes[e].observations[t])
    other, _ = env.reset(seed=7)  # a seed without a state resets as the task does
    fresh, _ = gym.make("lnmdn/PointMaze-UMaze-v0").reset(seed=7)
    np.testing.assert_array_equal(other, fresh)


def test_closed_loop_from_dataset_starts_keeps_the_step_limit(umaze):
    from lnmdn_agents.evaluation.rollout import evaluate

    policy = make_policy("liquid_mdn", obs_dim=6, **TINY)
    starts = dataset_starts(umaze, policy.config, 3)
    result = evaluate(
        policy,
        "lnmdn/PointMaze-UMaze-v0",
        3,
        n_envs=2,
        env_kwargs={"max_episode_steps": 12},
        start_states=starts["states"],
        progress=False,
    )
    assert all(e["length"] <= 12 for e in result["episodes"])
    assert result["seeds_checked_against"] is None
    with pytest.raises(ValueError, match="need one start state per episode"):
        evaluate(policy, "lnmdn/PointMaze-UMaze-v0", 2, start_states=starts["states"])
    with pytest.raises(ValueError, match=r"the 'test' split of .* has \d+ windows"):
        dataset_starts(umaze, policy.config, 10**6)
