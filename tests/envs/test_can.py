"""lnmdn/Can-v0: robosuite PickPlaceCan behind the chunked interface.

robosuite steps at about 30-100 steps/s here, so every test uses few steps and the envs are built
once per module.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

if importlib.util.find_spec("robosuite") is None:  # find_spec: importing it here would be noisy
    pytest.skip("lnmdn/Can-v0 needs the 'mujoco' extra", allow_module_level=True)

import lnmdn_envs
from lnmdn_envs.can import CAN_OBS_KEYS, CAN_OBS_SLICES, CanEnv

ENV_ID = "lnmdn/Can-v0"


def _actions(n: int, seed: int = 0) -> np.ndarray:
    """A short scripted motion: move in a seeded direction, closing the gripper half way."""
    rng = np.random.default_rng(seed)
    acts = np.zeros((n, 7), dtype=np.float32)
    acts[:, :3] = rng.uniform(-0.8, 0.8, 3)
    acts[:, 3:6] = rng.normal(0.0, 0.1, (n, 3))
    acts[:, 6] = np.where(np.arange(n) < n // 2, -1.0, 1.0)
    return acts


@pytest.fixture(scope="module")
def task_env():
    env = lnmdn_envs.make_task_env(ENV_ID)
    yield env
    env.close()


@pytest.fixture(scope="module")
def chunked_env():
    env = gym.make(ENV_ID, n_obs_steps=2, n_action_steps=4)
    yield env
    env.close()


def _rollout(env, seed: int, actions: np.ndarray, options=None):
    obs, _ = env.reset(seed=seed, options=options)
    out = [obs]
    for a in actions:
        obs, *_ = env.step(a)
        out.append(obs)
    return np.stack(out)


def test_spaces_and_registry(task_env, chunked_env):
    assert task_env.observation_space.shape == (23,)
    assert task_env.observation_space.dtype == np.float32
    assert task_env.action_space.shape == (7,)
    np.testing.assert_array_equal(task_env.action_space.low, -1.0)
    np.testing.assert_array_equal(task_env.action_space.high, 1.0)
    assert task_env._max_episode_steps == 400  # TimeLimit from the registry
    assert chunked_env.observation_space.shape == (2, 23)
    assert chunked_env.action_space.shape == (4, 7)


def test_observation_layout_matches_robomimic_keys(task_env):
    # The four robomimic keys tile [0, 23) in robomimic's order.
    starts = [CAN_OBS_SLICES[k].start for k in CAN_OBS_KEYS]
    stops = [CAN_OBS_SLICES[k].stop for k in CAN_OBS_KEYS]
    assert starts[0] == 0 and stops[-1] == 23 and starts[1:] == stops[:-1]
    obs, _ = task_env.reset(seed=1)
    for a in _actions(3):
        obs, *_ = task_env.step(a)
    # ... and each range holds robosuite's own observable of that name.
    rs_obs = task_env.unwrapped.robosuite_env._get_observations(force_update=True)
    object_keys = ["Can_pos", "Can_quat", "Can_to_robot0_eef_pos", "Can_to_robot0_eef_quat"]
    for key in [*object_keys, *CAN_OBS_KEYS[1:]]:
        np.testing.assert_allclose(obs[CAN_OBS_SLICES[key]], rs_obs[key], atol=1e-5, err_msg=key)
    np.testing.assert_allclose(
        obs[CAN_OBS_SLICES["object"]],
        np.concatenate([rs_obs[k] for k in object_keys]),
        atol=1e-5,
    )
    assert task_env.observation_space.contains(obs)


def test_check_env_task_and_chunked(task_env, chunked_env):
    check_env(task_env.unwrapped, skip_render_check=True)
    check_env(chunked_env.unwrapped, skip_render_check=True)
    # check_env on the wrapped envs exercises the chunking and the time limit as registered
    check_env(chunked_env, skip_render_check=True)


def test_seeded_reset_is_deterministic(task_env, chunked_env):
    acts = _actions(4, seed=3)
    first = _rollout(task_env, 7, acts)
    _rollout(task_env, 8, acts[:2])  # another episode in between
    again = _rollout(task_env, 7, acts)
    np.testing.assert_array_equal(first, again)
    other = chunked_env.unwrapped  # a second simulator instance
    np.testing.assert_array_equal(_rollout(other, 7, acts), first)
    # different seeds place the can differently
    obs8, _ = task_env.reset(seed=8)
    assert not np.allclose(obs8[CAN_OBS_SLICES["Can_pos"]], first[0][CAN_OBS_SLICES["Can_pos"]])
    # unseeded resets continue the seeded stream
    task_env.reset(seed=11)
    a, _ = task_env.reset()
    task_env.reset(seed=11)
    b, _ = task_env.reset()
    np.testing.assert_array_equal(a, b)


def test_chunk_of_k_equals_k_steps(task_env, chunked_env):
    acts = _actions(8, seed=5)
    singles = _rollout(task_env, 4, acts)
    obs, info = chunked_env.reset(seed=4)
    np.testing.assert_array_equal(obs, np.stack([singles[0], singles[0]]))
    obs, _, terminated, truncated, info = chunked_env.step(acts[:4])
    np.testing.assert_array_equal(obs, singles[3:5])
    obs, *_ = chunked_env.step(acts[4:])
    np.testing.assert_array_equal(obs, singles[7:9])
    assert info["n_steps"] == 4 and not terminated and not truncated
    assert set(info) >= {"is_success", "score"}


def test_bad_input(task_env):
    task_env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        task_env.step(np.full(7, np.nan))
    with pytest.raises(ValueError, match="shape"):
        task_env.step(np.zeros(6))
    with pytest.raises(ValueError, match="numeric"):
        task_env.step(np.array(["a"] * 7))
    with pytest.raises(ValueError, match="reset_to_state"):
        task_env.reset(options={"reset_to_state": np.zeros(5)})
    with pytest.raises(ValueError, match="unknown reset options"):
        task_env.reset(options={"reset_to": 1})
    with pytest.raises(ValueError, match="render_mode"):
        CanEnv(render_mode="human")
    with pytest.raises(RuntimeError, match="before reset"):
        CanEnv().step(np.zeros(7))
    # out-of-range values are clipped to [-1, 1], like robosuite's controller input
    a = _rollout(task_env, 2, np.array([[5.0, -3.0, 2.0, 0, 0, 0, 9.0]]))
    b = _rollout(task_env, 2, np.array([[1.0, -1.0, 1.0, 0, 0, 0, 1.0]]))
    np.testing.assert_array_equal(a, b)


def test_missing_robosuite_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "robosuite" else real(name, *a),
    )
    with pytest.raises(ImportError, match=r"\.\[mujoco\]"):
        CanEnv()


def test_pickle_round_trip(chunked_env, task_env):
    acts = _actions(6, seed=9)
    task_env.reset(seed=12)
    for a in acts[:3]:
        task_env.step(a)
    clone = pickle.loads(pickle.dumps(task_env))
    np.testing.assert_array_equal(clone.unwrapped.get_state(), task_env.unwrapped.get_state())
    for a in acts[3:]:
        o1, r1, *_ = task_env.step(a)
        o2, r2, *_ = clone.step(a)
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2
    # the next unseeded reset draws the same initial state in both (np_random travels along)
    np.testing.assert_array_equal(task_env.reset()[0], clone.reset()[0])
    clone.close()
    # an env that was never reset pickles without building a simulator
    fresh = pickle.loads(pickle.dumps(gym.make(ENV_ID)))
    assert fresh.unwrapped._rs is None


def test_replay_reproduces_trajectory(task_env):
    """Record states and actions, reset to the first state, replay: the same trajectory."""
    acts = _actions(12, seed=21)
    obs, _ = task_env.reset(seed=21)
    states, observations = [task_env.unwrapped.get_state()], [obs]
    for a in acts:
        obs, *_ = task_env.step(a)
        states.append(task_env.unwrapped.get_state())
        observations.append(obs)
    task_env.reset(seed=99)  # somewhere else first
    obs, _ = task_env.reset(options={"reset_to_state": states[0]})
    np.testing.assert_array_equal(obs, observations[0])
    for t, a in enumerate(acts, start=1):
        obs, *_ = task_env.step(a)
        np.testing.assert_array_equal(obs, observations[t])
        np.testing.assert_array_equal(task_env.unwrapped.get_state(), states[t])
    # a mid-episode state gives that step's observation
    obs, _ = task_env.reset(options={"reset_to_state": states[7]})
    np.testing.assert_array_equal(obs, observations[7])


def test_success_and_termination():
    env = CanEnv()
    env.reset(seed=0)
    rs = env.robosuite_env
    state = env.get_state()
    start, _ = rs.sim.model.get_joint_qpos_addr(rs.objects[rs.object_to_id["can"]].joints[0])
    placed = state.copy()
    placed[1 + start : 1 + start + 3] = env.target_position + np.array([0.0, 0.0, 0.06])
    placed[1 + start + 3 : 1 + start + 7] = [1.0, 0.0, 0.0, 0.0]
    _, info = env.reset(options={"reset_to_state": placed})
    assert info["is_success"] is True and info["score"] == 1.0
    _, reward, terminated, truncated, info = env.step(np.zeros(7))
    assert info["is_success"] and terminated and not truncated and reward == 1.0
    env_no_term = CanEnv(terminate_on_success=False)
    env_no_term.reset(seed=0, options={"reset_to_state": placed})
    *_, terminated, _, info = env_no_term.step(np.zeros(7))
    assert info["is_success"] and not terminated
    # the initial state is not a success
    _, info = env.reset(seed=0)
    assert info["is_success"] is False and info["score"] == 0.0
    env.close()
    env_no_term.close()


def test_render_rgb_array():
    env = CanEnv(render_mode="rgb_array", render_width=48, render_height=32)
    env.reset(seed=0)
    try:
        frame = env.render()
    except RuntimeError as err:  # no GL backend on this machine: the error says what to install
        assert "MUJOCO_GL" in str(err)
        pytest.skip(f"no OpenGL backend here: {err}")
    assert frame.shape == (32, 48, 3) and frame.dtype == np.uint8 and frame.std() > 0
    env.close()


def test_render_without_gl_backend_says_what_is_missing():
    code = textwrap.dedent(
        """
        from lnmdn_envs.can import CanEnv
        env = CanEnv(render_mode="rgb_array", render_width=16, render_height=16)
        env.reset(seed=0)
        try:
            env.render()
        except RuntimeError as err:
            print("ERROR:", err)
        """
    )
    env = {**os.environ, "MUJOCO_GL": "disable"}  # mujoco then loads no GL context at all
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert "ERROR:" in out.stdout, out.stderr[-2000:]
    assert "MUJOCO_GL=egl" in out.stdout and "libosmesa6" in out.stdout


def test_vector_env_async_forkserver_matches_sync():
    seeds = [3, 4]
    acts = np.stack([_actions(4, seed=s) for s in seeds])  # (B, Ta, Da)
    results = {}
    for mode, vector_kwargs in [("sync", {}), ("async", {"context": "forkserver"})]:
        envs = gym.make_vec(
            ENV_ID,
            num_envs=2,
            vectorization_mode=mode,
            vector_kwargs=vector_kwargs,
            n_action_steps=4,
        )
        try:
            obs, _ = envs.reset(seed=seeds)
            obs2, reward, _, _, info = envs.step(acts)
        finally:
            envs.close()
        assert obs.shape == (2, 2, 23) and obs2.shape == (2, 2, 23)
        results[mode] = (obs, obs2, reward, info["is_success"])
    for a, b in zip(results["sync"], results["async"], strict=True):
        np.testing.assert_array_equal(a, b)
