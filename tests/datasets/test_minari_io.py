"""Minari writing (atomic, no jax), embedded install, and offline download errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import gymnasium as gym
import minari
import numpy as np
import pytest
from typer.testing import CliRunner

from lnmdn_datasets import embedded, minari_io
from lnmdn_datasets.download import DatasetDownloadError, download_dataset
from lnmdn_datasets.embedded import export_embedded, install_embedded
from lnmdn_datasets.episodes import EpisodeRecord
from lnmdn_datasets.minari_io import read_records, write_dataset

PENDULUM = gym.spec("Pendulum-v1")


def pendulum_records(n: int, seed: int = 0, length: int = 12) -> list[EpisodeRecord]:
    """Real Pendulum rollouts with seeded random actions; `state` = (theta, theta_dot)."""
    env = gym.make("Pendulum-v1")
    records = []
    for i in range(n):
        obs, _ = env.reset(seed=seed + i)
        rng = np.random.default_rng(seed + i)
        observations, actions, rewards, states = [obs], [], [], [env.unwrapped.state.copy()]
        for _ in range(length + i):
            a = rng.uniform(-2, 2, size=(1,)).astype(np.float32)
            obs, r, _, _, _ = env.step(a)
            observations.append(obs)
            actions.append(a)
            rewards.append(r)
            states.append(env.unwrapped.state.copy())
        n_steps = len(actions)
        records.append(
            EpisodeRecord(
                observations=np.array(observations),
                actions=np.array(actions),
                rewards=np.array(rewards),
                terminations=np.zeros(n_steps, bool),
                truncations=np.eye(1, n_steps, n_steps - 1, dtype=bool)[0],
                infos={"state": np.array(states)},
                seed=seed + i,
            )
        )
    env.close()
    return records


def write_pendulum(dataset_id: str, records, **kwargs):
    return write_dataset(
        dataset_id,
        records,
        env_spec=PENDULUM,
        description="random pendulum swings (test)",
        algorithm_name="uniform random",
        metadata={"expert_success_rate": 0.5, "seeds": [r.seed for r in records]},
        **kwargs,
    )


def test_write_and_load_round_trip_without_jax():
    records = pendulum_records(3)
    path = write_pendulum("test/pendulum/random-v0", records)
    assert path == minari_io.minari_root() / "test/pendulum/random-v0"
    assert "jax" not in sys.modules  # Minari's DataCollector path would need it
    ds = minari.load_dataset("test/pendulum/random-v0")
    assert ds.total_episodes == 3 and ds.total_steps == sum(len(r) for r in records)
    for rec, ep in zip(records, ds.iterate_episodes(), strict=True):
        np.testing.assert_array_equal(ep.observations, rec.observations.astype(np.float32))
        np.testing.assert_array_equal(ep.actions, rec.actions)
        np.testing.assert_array_equal(ep.infos["state"], rec.infos["state"])
        np.testing.assert_array_equal(ep.truncations, rec.truncations)
    meta = ds.storage.metadata
    assert meta["expert_success_rate"] == 0.5 and meta["seeds"] == [0, 1, 2]
    assert meta["description"] == "random pendulum swings (test)"
    assert meta["author"] == {minari_io.AUTHOR} and meta["code_permalink"] == minari_io.CODE_URL
    env = ds.recover_environment()
    assert env.observation_space == ds.observation_space
    assert env.action_space == ds.action_space
    back = read_records("test/pendulum/random-v0")
    assert [r.seed for r in back] == [0, 1, 2]
    # nothing hidden is left in the root
    assert not list(minari_io.minari_root().glob(".lnmdn-build-*"))


def test_existing_dataset_needs_force():
    write_pendulum("test/pendulum/random-v0", pendulum_records(2))
    with pytest.raises(FileExistsError, match="--force"):
        write_pendulum("test/pendulum/random-v0", pendulum_records(1))
    write_pendulum("test/pendulum/random-v0", pendulum_records(4, seed=10), force=True)
    ds = minari.load_dataset("test/pendulum/random-v0")
    assert ds.total_episodes == 4 and ds.storage.metadata["seeds"] == [10, 11, 12, 13]
    assert list(minari.list_local_datasets()) == ["test/pendulum/random-v0"]


def test_failed_build_leaves_nothing_and_rerun_completes(monkeypatch):
    from minari.dataset._storages.hdf5_storage import HDF5Storage

    original = HDF5Storage.update_episodes

    def half_then_fail(self, episodes):
        original(self, list(episodes)[:1])
        raise KeyboardInterrupt("interrupted mid-build")

    monkeypatch.setattr(HDF5Storage, "update_episodes", half_then_fail)
    with pytest.raises(KeyboardInterrupt):
        write_pendulum("test/pendulum/random-v0", pendulum_records(3))
    assert minari.list_local_datasets() == {}
    assert not (minari_io.minari_root() / "test/pendulum/random-v0").exists()
    monkeypatch.setattr(HDF5Storage, "update_episodes", original)
    write_pendulum("test/pendulum/random-v0", pendulum_records(3))
    assert minari.load_dataset("test/pendulum/random-v0").total_episodes == 3


def test_killed_build_is_invisible_and_cleaned_by_the_next(tmp_path):
    """A process killed mid-write (os._exit) leaves only a hidden folder; rebuilding completes."""
    script = textwrap.dedent(
        """
        import os, sys
        sys.path.insert(0, sys.argv[1])
        from minari.dataset._storages.hdf5_storage import HDF5Storage
        from test_minari_io import pendulum_records, write_pendulum
        original = HDF5Storage.update_episodes
        def die(self, episodes):
            original(self, list(episodes)[:1])
            os._exit(3)
        HDF5Storage.update_episodes = die
        write_pendulum("test/pendulum/random-v0", pendulum_records(3))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(__import__("pathlib").Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 3, proc.stderr
    root = minari_io.minari_root()
    assert len(list(root.glob(".lnmdn-build-*"))) == 1
    assert minari.list_local_datasets() == {}
    write_pendulum("test/pendulum/random-v0", pendulum_records(3))
    assert minari.load_dataset("test/pendulum/random-v0").total_episodes == 3
    assert not list(root.glob(".lnmdn-build-*"))


def test_bad_records_are_rejected():
    with pytest.raises(ValueError, match="L \\+ 1 observations"):
        EpisodeRecord(np.zeros((3, 3)), np.zeros((3, 1)), np.zeros(3), np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"infos\['state'\] must have L \+ 1 = 4"):
        EpisodeRecord(
            np.zeros((4, 3)),
            np.zeros((3, 1)),
            np.zeros(3),
            np.zeros(3),
            np.zeros(3),
            infos={"state": np.zeros((3, 2))},
        )
    bad = pendulum_records(1)
    bad[0].observations = np.zeros((len(bad[0]) + 1, 4), np.float32)
    with pytest.raises(ValueError, match=r"per-step shape \(4,\)"):
        write_pendulum("test/pendulum/bad-v0", bad)
    with pytest.raises(ValueError, match="no episodes"):
        write_pendulum("test/pendulum/bad-v0", [])


def test_embedded_round_trip(tmp_path):
    records = pendulum_records(3)
    write_pendulum("test/pendulum/random-v0", records)
    packed = export_embedded("test/pendulum/random-v0", tmp_path / "pend.npz")
    minari.delete_dataset("test/pendulum/random-v0")
    with pytest.raises(ValueError, match="holds 'test/pendulum/random-v0'"):
        install_embedded("test/other-v0", packed)
    install_embedded("test/pendulum/random-v0", packed)
    ds = minari.load_dataset("test/pendulum/random-v0")
    assert ds.storage.metadata["seeds"] == [0, 1, 2]
    assert ds.storage.metadata["installed_from"] == "embedded"
    assert ds.storage.metadata["description"] == "random pendulum swings (test)"
    assert ds.recover_environment().observation_space == ds.observation_space
    back = read_records("test/pendulum/random-v0")
    for a, b in zip(records, back, strict=True):
        np.testing.assert_array_equal(a.observations.astype(np.float32), b.observations)
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.rewards, b.rewards)
        np.testing.assert_array_equal(a.infos["state"], b.infos["state"])
        assert a.seed == b.seed
    with pytest.raises(FileNotFoundError, match="no embedded copy"):
        install_embedded("test/missing-v0", tmp_path / "missing.npz")


def test_minari_cli_lists_and_shows_our_dataset():
    from minari.cli import app

    write_pendulum("test/pendulum/random-v0", pendulum_records(2))
    runner = CliRunner()
    listed = runner.invoke(app, ["list", "local"])
    assert listed.exit_code == 0, listed.output
    assert "test/pendulum/random-v0" in listed.output
    shown = runner.invoke(app, ["show", "test/pendulum/random-v0"])
    assert shown.exit_code == 0, shown.output
    assert "random pendulum swings" in shown.output


def test_download_offline_is_a_clear_error(hub_offline):
    with pytest.raises(DatasetDownloadError, match=r"could not download 'D4RL/pointmaze/umaze-v2'"):
        download_dataset("D4RL/pointmaze/umaze-v2")
    assert not (minari_io.minari_root() / "D4RL/pointmaze/umaze-v2").exists()


def test_load_episodes_of_remote_id_offline_is_a_clear_error(hub_offline):
    from lnmdn_agents.data import load_episodes

    with pytest.raises(DatasetDownloadError, match="minari download D4RL/pointmaze/medium-v2"):
        load_episodes("D4RL/pointmaze/medium-v2")


def test_load_episodes_installs_an_embedded_copy(tmp_path, monkeypatch):
    from lnmdn_agents.data import load_episodes

    records = pendulum_records(3)
    write_pendulum("test/pendulum/random-v0", records)
    packed = export_embedded("test/pendulum/random-v0", tmp_path / "test__pendulum__random-v0.npz")
    minari.delete_dataset("test/pendulum/random-v0")
    monkeypatch.setattr(embedded, "embedded_path", lambda dataset_id: tmp_path / packed.name)
    episodes = load_episodes("test/pendulum/random-v0")
    assert "test/pendulum/random-v0" in minari.list_local_datasets()
    assert len(episodes) == 3
    np.testing.assert_allclose(episodes[2].actions, records[2].actions)


def test_load_episodes_builds_an_auto_build_recipe(monkeypatch):
    from lnmdn_agents.data import load_episodes
    from lnmdn_datasets import recipes

    class GoStraight:
        def reset(self, env, rng):
            pass

        def act(self, env, obs):
            return np.clip(5.0 * (obs[4:6] - obs[:2]) - 0.5 * obs[2:4], -1.0, 1.0)

    recipe = recipes.Recipe(
        "test/pointmaze-umaze/auto-v0", "lnmdn/PointMaze-UMaze-v0", GoStraight, 3, auto_build=True
    )
    monkeypatch.setitem(recipes.RECIPES, recipe.dataset_id, recipe)
    episodes = load_episodes(recipe.dataset_id)
    assert len(episodes) == 3 and episodes[0].obs_dim == 6
    slow = recipes.Recipe(
        "test/pointmaze-umaze/manual-v0", "lnmdn/PointMaze-UMaze-v0", GoStraight, 3
    )
    monkeypatch.setitem(recipes.RECIPES, slow.dataset_id, slow)
    with pytest.raises(FileNotFoundError, match="lnmdn datasets build test/pointmaze-umaze/manual"):
        load_episodes(slow.dataset_id)


def _load_pusht_in_subprocess(_: int) -> int:
    from lnmdn_agents.data import load_episodes

    return len(load_episodes("lnmdn/pusht/expert-v0"))


def test_concurrent_first_loads_install_once():
    """Parallel runs on a fresh root (e.g. several trainings) all get the embedded data."""
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(2) as pool:
        assert pool.map(_load_pusht_in_subprocess, range(2)) == [200, 200]
    assert list(minari.list_local_datasets()) == ["lnmdn/pusht/expert-v0"]
    assert not list(minari_io.minari_root().glob(".lnmdn-build-*"))
