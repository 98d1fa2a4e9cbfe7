"""Windows, splits, fractions and statistics of lnmdn_agents.data, on synthetic episodes."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest
import torch

from lnmdn_agents.data import (
    TRAINING_FRACTIONS,
    Episode,
    WindowDataset,
    compute_stats,
    fraction_subset,
    load_episodes,
    make_splits,
    split_episodes,
)
from lnmdn_agents.policies.base import PolicyConfig


def ramp_episode(length: int, offset: float = 0.0, do: int = 3, da: int = 2) -> Episode:
    """Observation o(t) = offset + t in every dim; action a(t) = offset + t + 0.5."""
    t_obs = np.arange(length + 1, dtype=np.float32)[:, None] + offset
    t_act = np.arange(length, dtype=np.float32)[:, None] + offset + 0.5
    return Episode(np.repeat(t_obs, do, axis=1), np.repeat(t_act, da, axis=1))


def dp_sequence_sampler(ep_len: int, seq_len: int, pad_before: int, pad_after: int):
    """Diffusion Policy's create_indices + sample_sequence for one episode, as index lists.

    A transcription of diffusion_policy/common/sampler.py (the oracle): each window is the list
    of in-episode step indices, with padding repeating the first/last sampled step.
    """
    windows = []
    for idx in range(-pad_before, ep_len - seq_len + pad_after + 1):
        buffer_start = max(idx, 0)
        buffer_end = min(idx + seq_len, ep_len)
        start_offset = buffer_start - idx
        end_offset = (idx + seq_len) - buffer_end
        sample = list(range(buffer_start, buffer_end))
        data = [sample[0]] * start_offset + sample + [sample[-1]] * end_offset
        assert len(data) == seq_len
        windows.append(data)
    return windows


def test_padding_against_hand_made_episode():
    cfg = PolicyConfig(obs_dim=3, action_dim=2, n_obs_steps=2, horizon=4, n_action_steps=2)
    ds = WindowDataset([ramp_episode(5)], cfg)
    assert len(ds) == 5 - 4 + 2 + 2 - 1 == 4
    first, last = ds[0], ds[len(ds) - 1]
    # First window: t = 0; o(-1) repeats o(0); actions a(-1..2) -> a(0), a(0), a(1), a(2).
    assert first["obs"][:, 0].tolist() == [0.0, 0.0]
    assert first["action"][:, 0].tolist() == [0.5, 0.5, 1.5, 2.5]
    # Last window: t = 3; actions a(2..5) -> a(2), a(3), a(4), a(4) (repeat the last action).
    assert last["obs"][:, 0].tolist() == [2.0, 3.0]
    assert last["action"][:, 0].tolist() == [2.5, 3.5, 4.5, 4.5]
    assert first["obs"].dtype == torch.float32 and first["obs"].shape == (2, 3)
    assert first["action"].dtype == torch.float32 and first["action"].shape == (4, 2)


@pytest.mark.parametrize(
    ("length", "to", "horizon", "ta"),
    [(30, 2, 16, 8), (9, 2, 16, 8), (12, 1, 5, 3), (20, 3, 10, 2), (7, 4, 4, 1)],
)
def test_windows_match_diffusion_policy_sampler(length, to, horizon, ta):
    cfg = PolicyConfig(obs_dim=3, action_dim=2, n_obs_steps=to, horizon=horizon, n_action_steps=ta)
    ds = WindowDataset([ramp_episode(length)], cfg)
    oracle = dp_sequence_sampler(length, horizon, pad_before=to - 1, pad_after=ta - 1)
    assert len(ds) == len(oracle) == length - horizon + to + ta - 1
    for i, steps in enumerate(oracle):
        item = ds[i]
        assert item["action"][:, 0].tolist() == [s + 0.5 for s in steps]
        # obs = the first To of the window, read from the observations.
        assert item["obs"][:, 0].tolist() == [float(s) for s in steps[:to]]
    obs, act = ds.window_arrays()
    assert obs.shape == (len(ds), to, 3) and act.shape == (len(ds), horizon, 2)
    np.testing.assert_array_equal(act[-1], ds[len(ds) - 1]["action"].numpy())


def test_pusht_window_count_formula():
    # Push-T (T=16, To=2, Ta=8): L - 7 windows per episode, as in the reference's 24,208.
    cfg = PolicyConfig(obs_dim=3, action_dim=2)
    lengths = [100, 57, 8, 300]
    ds = WindowDataset([ramp_episode(n) for n in lengths], cfg)
    assert len(ds) == sum(n - 7 for n in lengths)
    assert ds.windows_per_episode.tolist() == [n - 7 for n in lengths]


def test_no_window_crosses_episodes():
    cfg = PolicyConfig(obs_dim=3, action_dim=2, n_obs_steps=2, horizon=16, n_action_steps=8)
    eps = [ramp_episode(n, offset=1000.0 * k) for k, n in enumerate([20, 9, 35, 16])]
    ds = WindowDataset(eps, cfg)
    obs, act = ds.window_arrays()
    ep_of_obs = np.floor(obs[..., 0] / 1000.0)
    ep_of_act = np.floor(act[..., 0] / 1000.0)
    assert (ep_of_obs == ep_of_obs[:, :1]).all()
    assert (ep_of_act == ep_of_obs[:, :1]).all()
    # every episode contributes its own count, in order
    assert np.bincount(ep_of_obs[:, 0].astype(int)).tolist() == [13, 2, 28, 9]


def test_short_episodes_are_skipped_and_all_short_is_an_error(caplog):
    cfg = PolicyConfig(obs_dim=3, action_dim=2, n_obs_steps=2, horizon=16, n_action_steps=8)
    ds = WindowDataset([ramp_episode(7), ramp_episode(10)], cfg)  # needs L >= 8
    assert ds.windows_per_episode.tolist() == [0, 3]
    assert "shorter than the window" in caplog.text
    with pytest.raises(ValueError, match=r"at least 8 actions.*longest episode has 7"):
        WindowDataset([ramp_episode(7), ramp_episode(3)], cfg)


def test_window_index_errors():
    cfg = PolicyConfig(obs_dim=3, action_dim=2, n_obs_steps=2, horizon=4, n_action_steps=2)
    ds = WindowDataset([ramp_episode(5)], cfg)
    with pytest.raises(IndexError, match="out of range for 4 windows"):
        ds[4]
    assert ds[-1]["obs"][:, 0].tolist() == [2.0, 3.0]


def test_episode_validation():
    with pytest.raises(ValueError, match="L \\+ 1 observations"):
        Episode(np.zeros((5, 3)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="shapes"):
        Episode(np.zeros(6), np.zeros((5, 2)))
    bad = np.zeros((6, 3))
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Episode(bad, np.zeros((5, 2)))
    with pytest.raises(ValueError, match="mix"):
        WindowDataset([ramp_episode(20, do=3), ramp_episode(20, do=4)], PolicyConfig(obs_dim=3))


def test_splits_disjoint_covering_and_seeded():
    for n in (3, 7, 20, 201):
        s = split_episodes(n, seed=3)
        allidx = np.concatenate([s["train"], s["val"], s["test"]])
        assert sorted(allidx.tolist()) == list(range(n))
        assert len(s["train"]) >= 1 and len(s["val"]) >= 1 and len(s["test"]) >= 1
    s = split_episodes(200, seed=0)
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == (140, 30, 30)
    again = split_episodes(200, seed=0)
    other = split_episodes(200, seed=1)
    assert all(np.array_equal(s[k], again[k]) for k in s)
    assert not np.array_equal(s["test"], other["test"])
    no_val = split_episodes(10, val_fraction=0.0, test_fraction=0.2)
    assert len(no_val["val"]) == 0 and len(no_val["test"]) == 2


def test_split_errors():
    with pytest.raises(ValueError, match="leave none for training"):
        split_episodes(2)
    with pytest.raises(ValueError, match="val_fraction must be in"):
        split_episodes(10, val_fraction=1.2)
    with pytest.raises(ValueError, match="must be < 1"):
        split_episodes(10, val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match="n_episodes"):
        split_episodes(0)


def test_training_fractions():
    assert len(TRAINING_FRACTIONS) == 7
    expected = [0.01, 0.0215443, 0.0464159, 0.1, 0.2154435, 0.4641589, 1.0]
    np.testing.assert_allclose(TRAINING_FRACTIONS, expected, rtol=1e-5)


def test_fractions_nested_seeded_and_non_empty():
    train = split_episodes(300, seed=0)["train"]
    for seed in (0, 1):
        subsets = [set(fraction_subset(train, f, seed).tolist()) for f in TRAINING_FRACTIONS]
        for small, large in itertools.pairwise(subsets):
            assert small <= large
        assert subsets[-1] == set(train.tolist())
        assert len(subsets[0]) == max(1, round(0.01 * len(train)))
        assert all(s <= set(train.tolist()) for s in subsets)
    a = fraction_subset(train, 0.1, seed=0)
    assert np.array_equal(a, fraction_subset(train, 0.1, seed=0))
    assert not np.array_equal(a, fraction_subset(train, 0.1, seed=1))
    assert len(fraction_subset([4, 9], 0.01, seed=0)) == 1


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.01, float("nan"), "0.5"])
def test_fraction_out_of_range(bad):
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]"):
        fraction_subset(np.arange(10), bad)
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]"):
        make_splits([ramp_episode(20)] * 10, PolicyConfig(obs_dim=3), fraction=bad)


def test_stats_from_train_only():
    cfg = PolicyConfig(obs_dim=3, action_dim=2, n_obs_steps=2, horizon=16, n_action_steps=8)
    # Episode k has values around 100 * k: the stats tell which episodes they came from.
    eps = [ramp_episode(20, offset=100.0 * k) for k in range(20)]
    splits = make_splits(eps, cfg, seed=0)
    train = splits.episodes["train"]
    assert splits.stats["obs"]["min"][0] == pytest.approx(100.0 * train.min())
    assert splits.stats["obs"]["max"][0] == pytest.approx(100.0 * train.max() + 20)
    assert splits.stats["action"]["max"][1] == pytest.approx(100.0 * train.max() + 19.5)
    direct = compute_stats([eps[i] for i in train])
    np.testing.assert_array_equal(direct["obs"]["min"], splits.stats["obs"]["min"])
    assert splits.stats["obs"]["min"].shape == (3,) and splits.stats["action"]["min"].shape == (2,)
    # windows per split come from the right episodes
    assert len(splits.train) == 13 * len(train)
    assert len(splits.val) == 13 * len(splits.episodes["val"])
    # a fraction changes train (and its stats), never val/test
    small = make_splits(eps, cfg, seed=0, fraction=0.1)
    assert set(small.episodes["train"]) < set(train.tolist())
    assert np.array_equal(small.episodes["val"], splits.episodes["val"])
    assert np.array_equal(small.episodes["test"], splits.episodes["test"])
    assert small.stats["obs"]["min"][0] == pytest.approx(100.0 * small.episodes["train"].min())
    with pytest.raises(ValueError, match="at least one episode"):
        compute_stats([])


def test_config_dims_must_match():
    with pytest.raises(ValueError, match=r"Do=3, Da=2 .* obs_dim=5"):
        make_splits([ramp_episode(20)] * 10, PolicyConfig(obs_dim=5, action_dim=2))


def test_config_larger_than_every_episode():
    with pytest.raises(ValueError, match="need episodes of at least"):
        make_splits([ramp_episode(5)] * 10, PolicyConfig(obs_dim=3, action_dim=2, horizon=32))


def _write_minari(dataset_id: str, episodes: list[Episode]) -> None:
    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer

    do, da = episodes[0].obs_dim, episodes[0].action_dim
    buffers = []
    for i, e in enumerate(episodes):
        n = len(e)
        buffers.append(
            EpisodeBuffer(
                id=i,
                observations=e.observations,
                actions=e.actions,
                rewards=np.zeros(n),
                terminations=np.zeros(n, bool),
                truncations=np.zeros(n, bool),
                infos={},
            )
        )
    with pytest.warns(UserWarning):
        minari.create_dataset_from_buffers(
            dataset_id,
            buffers,
            observation_space=gym.spaces.Box(-np.inf, np.inf, (do,), np.float32),
            action_space=gym.spaces.Box(-np.inf, np.inf, (da,), np.float32),
        )


def test_load_episodes_round_trip_through_minari():
    eps = [ramp_episode(n, offset=10.0 * k) for k, n in enumerate([12, 20, 15, 30])]
    _write_minari("test/ramps/synthetic-v0", eps)
    loaded = load_episodes("test/ramps/synthetic-v0")
    assert len(loaded) == 4
    for a, b in zip(eps, loaded, strict=True):
        np.testing.assert_array_equal(a.observations, b.observations)
        np.testing.assert_array_equal(a.actions, b.actions)
        assert b.observations.dtype == np.float32
    splits = make_splits(
        "test/ramps/synthetic-v0", PolicyConfig(obs_dim=3, horizon=8, n_action_steps=4), seed=0
    )
    assert (
        len(splits.episodes["train"]) + len(splits.episodes["val"]) + len(splits.episodes["test"])
        == 4
    )


def test_unknown_dataset_lists_local_ones():
    _write_minari("test/ramps/synthetic-v0", [ramp_episode(12)])
    with pytest.raises(FileNotFoundError, match=r"'test/nothing-v0'.*test/ramps/synthetic-v0"):
        load_episodes("test/nothing-v0")


def test_d4rl_pointmaze_layout_maps_to_our_observation():
    """A dataset in Minari's D4RL/pointmaze layout (dict observations from gymnasium-robotics'
    own PointMaze_UMaze-v3) loads as [x, y, vx, vy, goal_x, goal_y]."""
    gymnasium_robotics = pytest.importorskip("gymnasium_robotics")
    from lnmdn_datasets.episodes import EpisodeRecord
    from lnmdn_datasets.minari_io import write_dataset

    gym.register_envs(gymnasium_robotics)
    env = gym.make("PointMaze_UMaze-v3", continuing_task=True)
    records, raw = [], []
    for seed in range(4):
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        steps = [obs]
        actions = rng.uniform(-1, 1, (15, 2)).astype(np.float32)
        for a in actions:
            obs, *_ = env.step(a)
            steps.append(obs)
        stacked = {k: np.stack([s[k] for s in steps]) for k in steps[0]}
        raw.append(stacked)
        records.append(
            EpisodeRecord(stacked, actions, np.zeros(15), np.zeros(15), np.eye(1, 15, 14)[0])
        )
    env.close()
    write_dataset(
        "D4RL/pointmaze/umaze-v2",
        records,
        env_spec=gym.spec("PointMaze_UMaze-v3"),
        description="D4RL layout (test)",
        algorithm_name="random",
    )
    episodes = load_episodes("D4RL/pointmaze/umaze-v2")
    assert len(episodes) == 4
    for ep, src in zip(episodes, raw, strict=True):
        assert ep.observations.shape == (16, 6) and ep.actions.shape == (15, 2)
        np.testing.assert_allclose(ep.observations[:, :4], src["observation"], rtol=1e-6)
        np.testing.assert_allclose(ep.observations[:, 4:], src["desired_goal"], rtol=1e-6)
    splits = make_splits(
        "D4RL/pointmaze/umaze-v2", PolicyConfig(obs_dim=6, horizon=8, n_action_steps=4)
    )
    assert splits.stats["obs"]["min"].shape == (6,)


def test_training_targets_prefer_the_expert_labels():
    from lnmdn_agents.data import training_targets

    actions = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.testing.assert_array_equal(training_targets(actions, None), actions)
    np.testing.assert_array_equal(training_targets(actions, {}), actions)
    labels = np.vstack([actions + 0.5, np.full((1, 2), np.nan)])
    targets = training_targets(actions, {"expert_action": labels})
    np.testing.assert_array_equal(targets, actions + 0.5)
    with pytest.raises(ValueError, match="expert_action"):
        training_targets(actions, {"expert_action": labels[:2]})
