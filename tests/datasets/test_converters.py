"""Converters, each on a small file in the source format written here."""

from __future__ import annotations

import json
import math

import h5py
import minari
import numpy as np
import pytest
import zarr

from lnmdn_agents.data import WindowDataset, load_episodes
from lnmdn_agents.policies.base import PolicyConfig
from lnmdn_datasets.converters import (
    CAN_OBS_KEYS,
    convert_pusht_zarr,
    convert_robomimic_hdf5,
    pusht_coverage,
)
from lnmdn_datasets.minari_io import read_records

GOAL = (256.0, 256.0, math.pi / 4)


def write_dp_pusht_zarr(path, lengths, seed=0, last_at_goal=(True,)):
    """A replay buffer laid out as Diffusion Policy's pusht_cchi_v7_replay.zarr (zarr v2)."""
    rng = np.random.default_rng(seed)
    n = sum(lengths)
    state = np.column_stack(
        [
            rng.uniform(50, 450, (n, 2)),
            rng.uniform(100, 400, (n, 2)),
            rng.uniform(-3 * math.pi, 3 * math.pi, n),
        ]
    ).astype(np.float32)
    ends = np.cumsum(lengths)
    for k, at_goal in enumerate(last_at_goal):
        if at_goal:
            state[ends[k] - 1, 2:] = GOAL
    action = rng.uniform(0, 512, (n, 2)).astype(np.float32)
    keypoint = rng.uniform(0, 512, (n, 9, 2)).astype(np.float32)
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    data = root.create_group("data")
    data.create_array("state", data=state, chunks=(64, 5))
    data.create_array("action", data=action, chunks=(64, 2))
    data.create_array("keypoint", data=keypoint, chunks=(64, 9, 2))
    data.create_array("n_contacts", data=np.zeros((n, 1), np.float32))
    root.create_group("meta").create_array("episode_ends", data=ends.astype(np.int64))
    return state, action, keypoint, ends


def test_pusht_zarr_round_trip(tmp_path):
    path = tmp_path / "pusht_cchi_v7_replay.zarr"
    lengths = [30, 12, 45]
    state, action, keypoint, ends = write_dp_pusht_zarr(path, lengths, last_at_goal=(True, False))
    assert (path / ".zgroup").exists()  # really zarr v2, as Diffusion Policy's files are
    convert_pusht_zarr(path, "lnmdn/pusht/dp-test-v0")
    ds = minari.load_dataset("lnmdn/pusht/dp-test-v0")
    assert ds.total_episodes == 3 and ds.total_steps == sum(lengths)
    env = ds.recover_environment()
    assert env.observation_space == ds.observation_space and ds.observation_space.shape == (5,)
    records = read_records("lnmdn/pusht/dp-test-v0")
    for k, rec in enumerate(records):
        s, e = (0 if k == 0 else ends[k - 1]), ends[k]
        np.testing.assert_allclose(rec.actions, action[s:e])
        # all L states, then the last one repeated; angle wrapped to [0, 2 pi)
        np.testing.assert_allclose(rec.observations[:-1, :4], state[s:e, :4])
        np.testing.assert_allclose(
            rec.observations[:-1, 4], np.mod(state[s:e, 4].astype(np.float64), 2 * math.pi)
        )
        assert np.all((rec.observations[:, 4] >= 0) & (rec.observations[:, 4] < 2 * math.pi))
        np.testing.assert_array_equal(rec.observations[-1], rec.observations[-2])
        np.testing.assert_allclose(rec.infos["state"][:-1], state[s:e])
        np.testing.assert_allclose(rec.infos["keypoint"][:-1], keypoint[s:e].reshape(-1, 18))
        assert rec.infos["final_repeated"].tolist() == [False] * lengths[k] + [True]
    # episode 0 ends with the block on the goal: success, terminated, reward 1
    assert records[0].terminations[-1] and not records[0].truncations[-1]
    assert records[0].rewards[-1] == pytest.approx(1.0)
    assert records[1].truncations[-1] and not records[1].terminations[-1]
    # rewards are the coverage score of the state after each action
    cov = pusht_coverage(state[1:30].astype(np.float64))
    np.testing.assert_allclose(records[0].rewards[:-1], np.clip(cov / 0.95, 0, 1))
    # Diffusion Policy's window count: L - 7 per episode for T=16, To=2, Ta=8
    eps = load_episodes("lnmdn/pusht/dp-test-v0")
    assert len(WindowDataset(eps, PolicyConfig())) == sum(n - 7 for n in lengths)


def test_pusht_coverage_of_the_goal_pose():
    on_goal = np.array([[100, 100, *GOAL]])
    away = np.array([[100, 100, 100.0, 100.0, 0.0]])
    np.testing.assert_allclose(pusht_coverage(on_goal), [1.0], atol=1e-9)
    assert pusht_coverage(away)[0] == pytest.approx(0.0)


def test_pusht_zarr_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Push-T zarr"):
        convert_pusht_zarr(tmp_path / "missing.zarr", "lnmdn/pusht/x-v0")
    root = zarr.open_group(str(tmp_path / "bad.zarr"), mode="w", zarr_format=2)
    root.create_group("data").create_array("state", data=np.zeros((4, 5), np.float32))
    with pytest.raises(KeyError, match="not a Diffusion Policy Push-T replay buffer"):
        convert_pusht_zarr(tmp_path / "bad.zarr", "lnmdn/pusht/x-v0")
    path = tmp_path / "ends.zarr"
    write_dp_pusht_zarr(path, [5, 5])
    zarr.open_group(str(path), mode="r+")["meta/episode_ends"][:] = np.array([5, 9])
    with pytest.raises(ValueError, match="episode_ends"):
        convert_pusht_zarr(path, "lnmdn/pusht/x-v0")
    assert "lnmdn/pusht/x-v0" not in minari.list_local_datasets()


def write_robomimic_hdf5(path, lengths, env_name="PickPlaceCan", drop_key=None, seed=0):
    """A file laid out as robomimic v1.5's can/ph/low_dim_v15.hdf5."""
    rng = np.random.default_rng(seed)
    truth = {}
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps(
            {"env_name": env_name, "type": 1, "env_kwargs": {"controller_configs": {}}}
        )
        total = 0
        for i, n in enumerate(lengths):
            g = data.create_group(f"demo_{i if i < 2 else 10 * i}")
            obs = {k: rng.normal(size=(n, d)) for k, d in CAN_OBS_KEYS}
            nxt = {k: rng.normal(size=(n, d)) for k, d in CAN_OBS_KEYS}
            for name, src in (("obs", obs), ("next_obs", nxt)):
                og = g.create_group(name)
                for k, v in src.items():
                    if k != drop_key:
                        og.create_dataset(k, data=v)
                og.create_dataset("robot0_joint_pos", data=rng.normal(size=(n, 7)))
            actions = rng.uniform(-1, 1, (n, 7))
            states = rng.normal(size=(n, 71))
            rewards = np.zeros(n)
            dones = np.zeros(n, dtype=np.int64)
            if i != 1:
                rewards[-1], dones[-1] = 1.0, 1
            g.create_dataset("actions", data=actions)
            g.create_dataset("states", data=states)
            g.create_dataset("rewards", data=rewards)
            g.create_dataset("dones", data=dones)
            g.attrs["num_samples"] = n
            total += n
            truth[g.name.split("/")[-1]] = (obs, nxt, actions, states, rewards, dones)
        data.attrs["total"] = total
        mask = f.create_group("mask")
        mask.create_dataset("train", data=np.array([b"demo_0", b"demo_20"]))
        mask.create_dataset("valid", data=np.array([b"demo_1"]))
    return truth


def test_robomimic_round_trip(tmp_path):
    path = tmp_path / "low_dim_v15.hdf5"
    truth = write_robomimic_hdf5(path, [6, 4, 9])
    convert_robomimic_hdf5(path, "lnmdn/can/robomimic-test-v0")
    ds = minari.load_dataset("lnmdn/can/robomimic-test-v0")
    assert ds.observation_space.shape == (23,) and ds.action_space.shape == (7,)
    meta = ds.storage.metadata
    assert meta["demo_names"] == ["demo_0", "demo_1", "demo_20"]
    assert meta["masks"] == {"train": [0, 2], "valid": [1]}
    assert meta["source_env_args"]["env_name"] == "PickPlaceCan"
    records = read_records("lnmdn/can/robomimic-test-v0")
    for rec, name in zip(records, meta["demo_names"], strict=True):
        obs, nxt, actions, states, rewards, dones = truth[name]
        expected = np.concatenate([obs[k] for k, _ in CAN_OBS_KEYS], axis=1)
        np.testing.assert_allclose(rec.observations[:-1], expected.astype(np.float32), rtol=1e-6)
        last = np.concatenate([nxt[k][-1] for k, _ in CAN_OBS_KEYS])
        np.testing.assert_allclose(rec.observations[-1], last.astype(np.float32), rtol=1e-6)
        # object (14) first, then eef pos (3), eef quat (4), gripper (2)
        np.testing.assert_allclose(rec.observations[0, 14:17], obs["robot0_eef_pos"][0], rtol=1e-6)
        np.testing.assert_allclose(rec.actions, actions.astype(np.float32), rtol=1e-6)
        np.testing.assert_allclose(rec.infos["state"][:-1], states)
        np.testing.assert_array_equal(rec.terminations, dones.astype(bool))
        assert rec.truncations[-1] == (not dones[-1])
        np.testing.assert_allclose(rec.rewards, rewards)


def test_robomimic_bad_input(tmp_path):
    lift = tmp_path / "lift.hdf5"
    write_robomimic_hdf5(lift, [3], env_name="Lift")
    with pytest.raises(ValueError, match="'Lift' demonstrations"):
        convert_robomimic_hdf5(lift, "lnmdn/can/x-v0")
    image = tmp_path / "noobj.hdf5"
    write_robomimic_hdf5(image, [3], drop_key="object")
    with pytest.raises(KeyError, match=r"demo_0/obs lacks \['object'\]"):
        convert_robomimic_hdf5(image, "lnmdn/can/x-v0")
    with pytest.raises(FileNotFoundError):
        convert_robomimic_hdf5(tmp_path / "none.hdf5", "lnmdn/can/x-v0")
    assert "lnmdn/can/x-v0" not in minari.list_local_datasets()


def test_convert_cli(tmp_path):
    from typer.testing import CliRunner

    from lnmdn_agents.cli import app

    path = tmp_path / "pusht.zarr"
    write_dp_pusht_zarr(path, [20, 20])
    runner = CliRunner()
    ok = runner.invoke(
        app, ["datasets", "convert", "pusht-zarr", str(path), "--id", "test/pusht-v0"]
    )
    assert ok.exit_code == 0, ok.output
    again = runner.invoke(
        app, ["datasets", "convert", "pusht-zarr", str(path), "--id", "test/pusht-v0"]
    )
    assert again.exit_code == 1 and "--force" in again.output
    h5 = tmp_path / "can.hdf5"
    write_robomimic_hdf5(h5, [5, 5])
    ok = runner.invoke(app, ["datasets", "convert", "robomimic", str(h5), "--id", "test/can-v0"])
    assert ok.exit_code == 0, ok.output
    assert minari.load_dataset("test/can-v0").total_episodes == 2
