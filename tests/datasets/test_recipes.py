"""Recipes: seeded builds, kept-successes accounting, metadata, recover_environment, replay."""

from __future__ import annotations

import dataclasses
import logging

import minari
import numpy as np
import pytest

from lnmdn_datasets.embedded import export_embedded, install_embedded
from lnmdn_datasets.experts import ActionNoise
from lnmdn_datasets.minari_io import dataset_checksum, read_records, write_dataset
from lnmdn_datasets.provision import dataset_env
from lnmdn_datasets.recipes import (
    EXPERT_SEED_SALT,
    RECIPES,
    Recipe,
    build,
    get_recipe,
)
from lnmdn_datasets.verify import verify
from lnmdn_envs.registration import TASKS

UMAZE = "lnmdn/PointMaze-UMaze-v0"


class GoStraight:
    """A deliberately simple scripted expert: PD straight at the goal (walls make it fail)."""

    def reset(self, env, rng):
        self.gain = rng.uniform(4.0, 6.0)

    def act(self, env, obs):
        return np.clip(self.gain * (obs[4:6] - obs[:2]) - 0.5 * obs[2:4], -1.0, 1.0)


class Idle:
    def reset(self, env, rng):
        pass

    def act(self, env, obs):
        return np.zeros(2)


def straight_recipe(n=6, **kw) -> Recipe:
    return Recipe(
        "test/pointmaze-umaze/straight-v0",
        UMAZE,
        GoStraight,
        n_episodes=n,
        description="straight-line PD (test).",
        **kw,
    )


def test_build_keeps_successes_and_records_the_rate():
    report = build(straight_recipe(6), progress=False)
    assert report.succeeded == 6 and len(report.episodes) == 6
    assert report.attempted == 6 + len(report.failed_seeds)
    assert report.failed_seeds, "this expert fails behind walls; the test needs some failures"
    assert all(bool(ep.infos["is_success"][-1]) for ep in report.episodes)
    ds = minari.load_dataset("test/pointmaze-umaze/straight-v0")
    meta = ds.storage.metadata
    assert meta["expert_success_rate"] == pytest.approx(6 / report.attempted)
    assert meta["expert_episodes_attempted"] == report.attempted
    kept_seeds = [ep.seed for ep in report.episodes]
    assert meta["seeds"] == kept_seeds
    assert sorted(kept_seeds + meta["failed_seeds"]) == list(range(report.attempted))
    assert meta["recipe_version"] == "1" and meta["base_seed"] == 0
    assert meta["algorithm_name"].endswith("GoStraight")
    assert "expert success rate" in meta["description"]
    # stored per step: states for replay, Minari's L+1 convention
    ep = ds[0]
    assert ep.infos["state"].shape == (len(ep) + 1, 6)
    assert ep.observations.shape == (len(ep) + 1, 6) and ep.actions.shape == (len(ep), 2)
    assert [r.seed for r in read_records("test/pointmaze-umaze/straight-v0")] == kept_seeds


def test_recover_environment_is_the_single_step_task_env():
    build(straight_recipe(2), progress=False)
    ds = minari.load_dataset("test/pointmaze-umaze/straight-v0")
    env = ds.recover_environment()
    assert env.observation_space == ds.observation_space
    assert env.action_space == ds.action_space
    assert env.observation_space.shape == (6,)
    assert env.spec.id == "lnmdn/PointMaze-UMaze-Step-v0"
    obs, _ = env.reset(seed=0)
    assert obs.shape == (6,)
    assert ds.recover_environment(eval_env=True).observation_space == ds.observation_space


def test_same_seed_identical_arrays_other_seed_different():
    a = build(straight_recipe(3), write=False, progress=False)
    b = build(straight_recipe(3), write=False, progress=False)
    c = build(straight_recipe(3, base_seed=50), write=False, progress=False)
    for x, y in zip(a.episodes, b.episodes, strict=True):
        np.testing.assert_array_equal(x.observations, y.observations)
        np.testing.assert_array_equal(x.actions, y.actions)
        np.testing.assert_array_equal(x.infos["state"], y.infos["state"])
    assert not np.array_equal(a.episodes[0].observations[0], c.episodes[0].observations[0])
    assert EXPERT_SEED_SALT != 0


def test_replay_self_test_reproduces_and_catches_tampering():
    build(straight_recipe(4), progress=False)
    report = verify("test/pointmaze-umaze/straight-v0", progress=False)
    assert report.ok and report.checked == 4 and report.max_obs_error == 0.0
    # Tamper: actions of episode 1 replaced by zeros -> the replay no longer reaches the goal.
    records = read_records("test/pointmaze-umaze/straight-v0")
    records[1].actions = np.zeros_like(records[1].actions)
    write_dataset(
        "test/pointmaze-umaze/tampered-v0",
        records,
        task_id=UMAZE,
        description="tampered",
        algorithm_name="none",
    )
    bad = verify("test/pointmaze-umaze/tampered-v0", progress=False)
    assert not bad.ok and bad.mismatched == [1]


def test_expert_that_never_succeeds_gives_a_clear_error():
    recipe = Recipe("test/pointmaze-umaze/idle-v0", UMAZE, Idle, n_episodes=2, max_attempts=3)
    with pytest.raises(RuntimeError, match=r"succeeded in 0 of 3 episodes"):
        build(recipe, progress=False)
    assert "test/pointmaze-umaze/idle-v0" not in minari.list_local_datasets()


def test_existing_dataset_needs_force():
    build(straight_recipe(1), progress=False)
    with pytest.raises(FileExistsError, match="--force"):
        build(straight_recipe(1), progress=False)
    build(straight_recipe(2), progress=False, force=True)
    assert minari.load_dataset("test/pointmaze-umaze/straight-v0").total_episodes == 2


def test_recipe_table():
    assert set(RECIPES) == {
        "lnmdn/pusht/expert-v0",
        "lnmdn/pusht/expert-v1",
        "lnmdn/pusht/expert-v2",
        "lnmdn/pusht/expert-v3",
        "lnmdn/pusht/expert-v4",
        "lnmdn/pusht/expert-v5",
        "lnmdn/can/expert-v0",
        "lnmdn/can/expert-v1",
        "lnmdn/can/expert-v2",
        "lnmdn/pointmaze-umaze/expert-v0",
        "lnmdn/pointmaze-medium/expert-v0",
        "lnmdn/pointmaze-large/expert-v0",
        "lnmdn/pointmaze-bimodal/expert-v0",
        "lnmdn/pointmaze-medium/expert-v1",
        "lnmdn/pointmaze-medium/expert-v2",
        "lnmdn/pointmaze-large/expert-v1",
        "lnmdn/pointmaze-large/expert-v2",
        "lnmdn/pointmaze-large/expert-v3",
    }
    for recipe in RECIPES.values():
        assert recipe.task_id in TASKS
        assert recipe.n_episodes >= 100 and recipe.description
        assert recipe.base_seed < 100_000  # evaluation seeds start at 100000
    with pytest.raises(KeyError, match="Did you mean 'lnmdn/pusht/expert-v"):
        get_recipe("lnmdn/pusht/expert-vO")


@pytest.mark.parametrize(
    "dataset_id",
    [
        "lnmdn/pusht/expert-v0",
        "lnmdn/pusht/expert-v2",
        "lnmdn/pusht/expert-v3",
        "lnmdn/pointmaze-umaze/expert-v0",
        "lnmdn/pointmaze-medium/expert-v0",
        "lnmdn/pointmaze-large/expert-v0",
        "lnmdn/pointmaze-bimodal/expert-v0",
        "lnmdn/pointmaze-large/expert-v2",
    ],
)
def test_small_real_builds_replay(dataset_id):
    recipe = get_recipe(dataset_id)
    report = build(recipe, n_episodes=3, progress=False)
    assert report.succeeded == 3
    ds = minari.load_dataset(dataset_id)
    assert ds.recover_environment().observation_space == ds.observation_space
    report = verify(dataset_id, progress=False, atol=0.0)
    assert report.ok and report.max_obs_error == 0.0


@pytest.mark.parametrize(
    ("small", "large"),
    [
        ("lnmdn/pusht/expert-v3", "lnmdn/pusht/expert-v4"),
        ("lnmdn/pusht/expert-v4", "lnmdn/pusht/expert-v5"),
        ("lnmdn/can/expert-v0", "lnmdn/can/expert-v1"),
        ("lnmdn/pointmaze-medium/expert-v0", "lnmdn/pointmaze-medium/expert-v1"),
        ("lnmdn/pointmaze-large/expert-v0", "lnmdn/pointmaze-large/expert-v1"),
        ("lnmdn/pointmaze-large/expert-v2", "lnmdn/pointmaze-large/expert-v3"),
    ],
)
def test_larger_versions_extend_the_smaller_ones(small, large):
    """A version that only asks for more episodes starts with the smaller version's episodes:
    same recipe otherwise, and its first episodes are the same arrays."""
    a, b = get_recipe(small), get_recipe(large)
    assert b.n_episodes > a.n_episodes
    assert (
        dataclasses.replace(
            b, dataset_id=a.dataset_id, n_episodes=a.n_episodes, description=a.description
        )
        == a
    )
    first = [build(r, n_episodes=2, write=False, progress=False).episodes for r in (a, b)]
    for x, y in zip(*first, strict=True):
        assert x.seed == y.seed
        np.testing.assert_array_equal(x.observations, y.observations)
        np.testing.assert_array_equal(x.actions, y.actions)


def test_worker_processes_build_the_same_episodes(caplog):
    """Episodes depend on their seed alone: two worker processes keep the same successes, in seed
    order, and count the same failed attempts (v3's expert fails seed 2)."""
    with caplog.at_level(logging.INFO, logger="lnmdn_datasets.recipes"):
        serial, parallel = (
            build("lnmdn/pusht/expert-v3", n_episodes=3, write=False, progress=False, workers=w)
            for w in (1, 2)
        )
    assert "in this process" not in caplog.text  # the two workers did run
    assert serial.failed_seeds == parallel.failed_seeds == [2]
    assert (serial.attempted, parallel.attempted) == (4, 4)
    for a, b in zip(serial.episodes, parallel.episodes, strict=True):
        assert a.seed == b.seed
        np.testing.assert_array_equal(a.observations, b.observations)
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.infos["expert_action"], b.infos["expert_action"])
    with pytest.raises(ValueError, match="workers must be an int >= 1"):
        build("lnmdn/pusht/expert-v3", n_episodes=1, write=False, workers=0)


def test_env_kwargs_are_recorded_and_read_back(tmp_path):
    """v2 is v1's expert observed through keypoints: same actions, 20-D observations, and the
    dataset's env spec (or, before it is built, its recipe) rebuilds the keypoint env."""
    assert dataset_env("lnmdn/pusht/expert-v2") == ("lnmdn/PushT-v0", {"obs_type": "keypoints"})
    build("lnmdn/pusht/expert-v1", n_episodes=2, progress=False)
    build("lnmdn/pusht/expert-v2", n_episodes=2, progress=False)
    assert dataset_env("lnmdn/pusht/expert-v2") == ("lnmdn/PushT-v0", {"obs_type": "keypoints"})
    assert dataset_env("lnmdn/pusht/expert-v1") == ("lnmdn/PushT-v0", {})
    v1, v2 = (minari.load_dataset(f"lnmdn/pusht/expert-v{v}") for v in (1, 2))
    assert v2.observation_space.shape == (20,) and v1.observation_space.shape == (5,)
    for a, b in zip(v1.iterate_episodes(), v2.iterate_episodes(), strict=True):
        np.testing.assert_array_equal(a.actions, b.actions)
        assert b.observations.shape == (len(b.actions) + 1, 20)
    with pytest.raises(ValueError, match="no recipe makes it"):
        dataset_env("lnmdn/pusht/nothing-v0")
    # A packed copy keeps the kwargs: the reinstalled v2 is keypoints again, same arrays.
    packed = export_embedded("lnmdn/pusht/expert-v2", tmp_path / "v2.npz")
    before = dataset_checksum("lnmdn/pusht/expert-v2")
    install_embedded("lnmdn/pusht/expert-v2", packed, force=True)
    assert dataset_env("lnmdn/pusht/expert-v2") == ("lnmdn/PushT-v0", {"obs_type": "keypoints"})
    assert dataset_checksum("lnmdn/pusht/expert-v2") == before


def test_dart_noise_records_executed_actions_and_clean_labels():
    """v3: the env executed the expert's action plus noise (replay holds on ``actions``), the
    expert's clean action is stored beside it, and training reads the labels, not the noisy
    actions. Without noise nothing changes (v2 has no labels)."""
    from lnmdn_agents.data import load_episodes
    from lnmdn_datasets.experts import rollout_expert
    from lnmdn_envs import make_task_env

    recipe = get_recipe("lnmdn/pusht/expert-v3")
    v2 = get_recipe("lnmdn/pusht/expert-v2")
    assert recipe.action_noise is not None and recipe.action_noise.std == 10.0
    assert (recipe.expert_kwargs, recipe.env_kwargs) == (v2.expert_kwargs, v2.env_kwargs)
    build(recipe, n_episodes=2, progress=False)
    ds = minari.load_dataset(recipe.dataset_id)
    assert ds.storage.metadata["action_noise"] == {"std": 10.0, "corr": 0.0}
    episodes = load_episodes(recipe.dataset_id)
    for stored, ep in zip(ds.iterate_episodes(), episodes, strict=True):
        labels = stored.infos["expert_action"]
        assert labels.shape == (len(stored.actions) + 1, 2) and np.isnan(labels[-1]).all()
        gap = np.abs(stored.actions - labels[:-1])
        assert 3.0 < gap.mean() < 15.0  # noise of 10 px per axis, clipped at the walls
        np.testing.assert_array_equal(ep.actions, labels[:-1])
    report = verify(recipe.dataset_id, progress=False, atol=0.0)
    assert report.ok and report.max_obs_error == 0.0
    env = make_task_env(v2.task_id, **v2.env_kwargs)
    clean = rollout_expert(env, v2.make_expert(), 0, np.random.default_rng(0))
    assert "expert_action" not in clean.infos


@pytest.mark.parametrize("maze", ["medium", "large"])
def test_maze_v2_is_v1_with_correlated_dart_noise(maze):
    """The long mazes' v2 is v1's recipe plus noise: same seeds, the labels are the clean
    forces and the executed ones differ from them by the drawn noise (clipped to [-1, 1])."""
    v1, v2 = (get_recipe(f"lnmdn/pointmaze-{maze}/expert-v{v}") for v in (1, 2))
    assert v2.action_noise is not None and (v2.action_noise.std, v2.action_noise.corr) == (0.5, 0.8)
    same = dataclasses.replace(
        v2, dataset_id=v1.dataset_id, action_noise=None, description=v1.description
    )
    assert same == v1
    episodes = build(v2, n_episodes=2, write=False, progress=False).episodes
    assert [e.seed for e in episodes] == [0, 1]
    for e in episodes:
        labels = e.infos["expert_action"][:-1]
        assert np.abs(labels).max() <= 1.0 and np.abs(e.actions).max() <= 1.0
        assert 0.1 < np.abs(e.actions - labels).mean() < 0.5


def test_can_v2_is_v0_with_dart_noise_on_the_position_deltas():
    """Can v2 is v0's recipe plus noise on the three position deltas only: same seeds, the
    orientation and gripper actions executed are the expert's labels exactly."""
    v0, v2 = (get_recipe(f"lnmdn/can/expert-v{v}") for v in (0, 2))
    assert v2.action_noise == ActionNoise(std=0.3, corr=0.8, dims=(0, 1, 2))
    same = dataclasses.replace(
        v2, dataset_id=v0.dataset_id, action_noise=None, description=v0.description
    )
    assert same == v0
    (episode,) = build(v2, n_episodes=1, write=False, progress=False).episodes
    assert episode.seed == 0
    labels = episode.infos["expert_action"][:-1]
    gap = np.abs(episode.actions - labels)
    assert (gap[:, 3:] == 0).all()
    assert 0.1 < gap[:, :3].mean() < 0.4  # std 0.3 per axis, clipped to [-1, 1]


def test_action_noise_rejects_bad_settings():
    with pytest.raises(ValueError, match="std > 0"):
        ActionNoise(std=0.0)
    with pytest.raises(ValueError, match="corr in"):
        ActionNoise(std=1.0, corr=1.0)
    with pytest.raises(ValueError, match="dims must be"):
        ActionNoise(std=1.0, dims=())
    with pytest.raises(ValueError, match="dims must be"):
        ActionNoise(std=1.0, dims=(-1,))
    with pytest.raises(ValueError, match="index past"):
        ActionNoise(std=1.0, dims=(0, 7)).sample(None, np.random.default_rng(0), 7)
    masked = ActionNoise(std=1.0, corr=0.5, dims=(1,))
    first = masked.sample(None, np.random.default_rng(0), 3)
    second = masked.sample(first, np.random.default_rng(1), 3)
    assert first[[0, 2]].tolist() == [0.0, 0.0] and second[[0, 2]].tolist() == [0.0, 0.0]
    assert first[1] != 0.0 and second[1] != 0.0
    noise = ActionNoise(std=2.0, corr=0.9)
    draws = [None]
    rng = np.random.default_rng(0)
    for _ in range(20_000):
        draws.append(noise.sample(draws[-1], rng, 1))
    x = np.concatenate(draws[1:])
    assert abs(x.std() - 2.0) < 0.15 and abs(np.corrcoef(x[:-1], x[1:])[0, 1] - 0.9) < 0.03


@pytest.mark.slow
def test_slow_real_can_build_replays_exactly():
    dataset_id = "lnmdn/can/expert-v0"
    recipe = get_recipe(dataset_id)
    report = build(recipe, n_episodes=2, progress=False)
    assert report.succeeded == 2
    replay = verify(dataset_id, progress=False, atol=0.0)
    assert replay.ok and replay.max_obs_error == 0.0


@pytest.mark.parametrize("dataset_id", ["lnmdn/pusht/expert-v0", "lnmdn/pusht/expert-v2"])
def test_embedded_pusht_is_what_the_recipe_builds(dataset_id):
    """The packaged Push-T data installs on first load and is bit-identical to a fresh rollout
    of the current expert from the same seed (a stale embedded file fails here)."""
    from lnmdn_agents.data import load_episodes
    from lnmdn_datasets.embedded import embedded_dataset_ids
    from lnmdn_datasets.recipes import record_episode
    from lnmdn_envs import make_task_env

    assert dataset_id in embedded_dataset_ids()
    episodes = load_episodes(dataset_id)
    ds = minari.load_dataset(dataset_id)
    meta = ds.storage.metadata
    assert len(episodes) == meta["total_episodes"] == 200
    assert meta["expert_success_rate"] >= 0.9 and meta["installed_from"] == "embedded"
    recipe = get_recipe(dataset_id)
    env = make_task_env(recipe.task_id, **recipe.env_kwargs)
    index = 7
    fresh, ok = record_episode(env, recipe.make_expert(), meta["seeds"][index])
    assert ok
    stored = ds[index]
    np.testing.assert_array_equal(fresh.observations, stored.observations)
    np.testing.assert_array_equal(fresh.actions, stored.actions)
    np.testing.assert_array_equal(fresh.infos["state"], stored.infos["state"])
    report = verify(dataset_id, n_episodes=5, atol=0.0, progress=False)
    assert report.ok and report.max_obs_error == 0.0
