"""The contract every registered id keeps, parametrised over the one list ``lnmdn_envs.TASKS``.

check_env (task env and chunked env), seeded determinism, pickling, chunk-of-Ta equals Ta single
steps, bad-input errors, ``gym.make("lnmdn_envs:<id>")`` in a fresh interpreter, and vector envs
(sync and async with a MuJoCo-safe start method, giving the same results).

Each id's simulator is built once per module and shared (robosuite Can takes seconds to build and
steps at ~15-100 steps/s here), and Can runs few steps; its async vector test is marked slow.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import subprocess
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env, data_equivalence

import lnmdn_envs
from lnmdn_envs import TASKS, MultiStep

ENV_IDS = sorted(TASKS)
SLOW_IDS = {"lnmdn/Can-v0"}  # robosuite: seconds to build, tens of steps per second
# (Do, Da) of each task, from the interface contract.
DIMS = {
    "lnmdn/PushT-v0": (5, 2),
    "lnmdn/Can-v0": (23, 7),
    "lnmdn/PointMaze-UMaze-v0": (6, 2),
    "lnmdn/PointMaze-Medium-v0": (6, 2),
    "lnmdn/PointMaze-Large-v0": (6, 2),
    "lnmdn/PointMaze-Bimodal-v0": (6, 2),
}
EXTRA_PACKAGES = {"mujoco": ("mujoco", "gymnasium_robotics", "robosuite")}
# check_env's advice that does not apply to a task (commanded positions in px, unbounded object
# poses) or to checking through wrappers; anything else it warns about fails the test.
CHECK_ENV_ALLOWED = (
    "is different from the unwrapped version",
    "alternative render modes",
    "symmetric and normalized space",
    "minimum value is -infinity",
    "maximum value is infinity",
)


def _skip_if_unavailable(env_id: str) -> None:
    """Skip an id whose module is not written yet or whose extra is not installed."""
    spec = TASKS[env_id]
    module = spec.entry_point.split(":")[0]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{env_id}: {module} does not exist yet")
    for package in EXTRA_PACKAGES.get(spec.extra or "", ()):
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"{env_id}: the '{spec.extra}' extra is not installed ({package})")


@pytest.fixture(scope="module")
def _shared() -> Iterator[dict[str, gym.Env[Any, Any]]]:
    envs: dict[str, gym.Env[Any, Any]] = {}
    yield envs
    for env in envs.values():
        env.close()


@pytest.fixture(params=ENV_IDS)
def env_id(request: pytest.FixtureRequest) -> str:
    _skip_if_unavailable(request.param)
    return request.param


@pytest.fixture
def chunked(env_id: str, _shared: dict[str, gym.Env[Any, Any]]) -> gym.Env[Any, Any]:
    """``gym.make(env_id)`` (To=2, Ta=8), built once per module."""
    if env_id not in _shared:
        _shared[env_id] = gym.make(env_id)
    return _shared[env_id]


def _layers(env: gym.Env[Any, Any]) -> tuple[MultiStep, gym.Env[Any, Any]]:
    """The MultiStep layer of a made env and the single-step env it wraps."""
    layer: Any = env
    while not isinstance(layer, MultiStep):
        layer = layer.env
    return layer, layer.env


def _n_chunks(env_id: str) -> int:
    return 2 if env_id in SLOW_IDS else 6


def _rollout(env: gym.Env[Any, Any], seed: int, n_chunks: int) -> list[Any]:
    """Reset with ``seed`` and step seeded random chunks; everything returned, in order."""
    out: list[Any] = [env.reset(seed=seed)]
    env.action_space.seed(seed)
    for _ in range(n_chunks):
        step = env.step(env.action_space.sample())
        out.append(step)
        if step[2] or step[3]:
            break
    return out


def _check_env_strict(env: gym.Env[Any, Any]) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    unexpected = [
        str(w.message) for w in caught if not any(a in str(w.message) for a in CHECK_ENV_ALLOWED)
    ]
    assert not unexpected, unexpected


# --------------------------------------------------------------------------------- contract
def test_every_task_is_registered_with_gymnasium():
    assert set(DIMS) == set(TASKS), "update DIMS when a task is added"
    for env_id in TASKS:
        assert env_id in gym.registry


def test_spaces_and_info_keys(env_id, chunked):
    do, da = DIMS[env_id]
    assert chunked.observation_space.shape == (2, do)
    assert chunked.action_space.shape == (8, da)
    obs, info = chunked.reset(seed=0)
    assert chunked.observation_space.contains(obs)
    obs, reward, _, _, info = chunked.step(chunked.action_space.sample())
    assert chunked.observation_space.contains(obs)
    assert isinstance(info["is_success"], (bool, np.bool_))
    assert 0.0 <= info["score"] <= 1.0
    assert len(info["step_rewards"]) == 8 and 1 <= info["n_steps"] <= 8
    assert reward == pytest.approx(float(np.sum(info["step_rewards"])))
    assert TASKS[env_id].max_episode_steps == _layers(chunked)[1].spec.max_episode_steps  # type: ignore[union-attr]


def test_check_env_task_env(env_id, chunked):
    _check_env_strict(chunked.unwrapped)


def test_check_env_chunked_env(env_id, chunked):
    _check_env_strict(chunked)


def test_seeded_reset_is_deterministic(env_id, chunked):
    n = _n_chunks(env_id)
    first, again = _rollout(chunked, 123, n), _rollout(chunked, 123, n)
    assert data_equivalence(first, again, exact=True)
    other = chunked.reset(seed=124)[0]
    assert not np.array_equal(first[0][0], other), "different seeds should give different starts"


def test_pickled_env_behaves_like_the_original(env_id, chunked):
    """A pickled copy (a fresh simulator) gives the same seeded rollout: pickling and
    determinism across instances in one go."""
    n = _n_chunks(env_id)
    chunked.reset(seed=7)
    chunked.step(chunked.action_space.sample())
    copy = pickle.loads(pickle.dumps(chunked))
    try:
        assert data_equivalence(_rollout(chunked, 99, n), _rollout(copy, 99, n), exact=True)
    finally:
        copy.close()


def test_chunk_equals_single_steps(env_id, chunked):
    multi, single = _layers(chunked)
    ta = multi.n_action_steps
    rng = np.random.default_rng(0)
    space = single.action_space
    for seed in (3, 4) if env_id not in SLOW_IDS else (3,):
        chunk = rng.uniform(space.low, space.high, (ta, *space.shape)).astype(space.dtype)
        chunked.reset(seed=seed)
        obs, reward, terminated, truncated, info = chunked.step(chunk)

        first, _ = single.reset(seed=seed)  # bypass MultiStep: the same steps one by one
        history, rewards = [first, first], []
        for a in chunk:
            o, r, term, trunc, single_info = single.step(a)
            history.append(o)
            rewards.append(float(r))
            if term or trunc:
                break
        np.testing.assert_array_equal(obs, np.stack(history[-2:]))
        assert info["n_steps"] == len(rewards)
        np.testing.assert_array_equal(info["step_rewards"][: len(rewards)], rewards)
        assert reward == pytest.approx(sum(rewards))
        assert (terminated, truncated) == (term, trunc)
        assert info["is_success"] == single_info["is_success"]
        assert info["score"] == single_info["score"]


@pytest.mark.parametrize(
    "bad, match",
    [
        ("nan", "finite"),
        ("shape", "shape"),
        ("dtype", "dtype"),
    ],
)
def test_bad_actions_raise_value_error(env_id, chunked, bad, match):
    _, single = _layers(chunked)
    chunked.reset(seed=0)
    good = chunked.action_space.sample()
    if bad == "nan":
        chunk: Any = good.copy()
        chunk[0, 0] = np.nan
        action: Any = chunk[0]
    elif bad == "shape":
        chunk = good[:, :-1]
        action = good[0, :-1]
    else:
        chunk = np.full(good.shape, "x")
        action = np.full(good.shape[1:], "x")
    with pytest.raises(ValueError, match=match):
        chunked.step(chunk)
    single.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        single.step(action)


def test_make_with_module_prefix_in_fresh_interpreter(env_id):
    code = (
        "import sys, gymnasium as gym\n"
        "assert 'lnmdn_envs' not in sys.modules\n"
        f"env = gym.make('lnmdn_envs:{env_id}')\n"
        "obs, info = env.reset(seed=0)\n"
        "print(obs.shape, 'is_success' in info)\n"
        "env.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-3:] == ["(2,", f"{DIMS[env_id][0]})", "True"]


# ------------------------------------------------------------------------------ vector envs
def _vector_rollout(vec: gym.vector.VectorEnv, n_chunks: int) -> list[Any]:
    obs, info = vec.reset(seed=[11, 12])
    out: list[Any] = [obs, info["is_success"]]
    rng = np.random.default_rng(0)
    space = vec.single_action_space
    for _ in range(n_chunks):
        low, high = space.low, space.high  # type: ignore[attr-defined]
        actions = rng.uniform(low, high, (vec.num_envs, *space.shape)).astype(space.dtype)
        obs, reward, terminated, truncated, info = vec.step(actions)
        out += [obs, reward, terminated, truncated, info["is_success"], info["score"]]
    return out


def _check_sync_equals_async(env_id: str, context: str) -> None:
    n = _n_chunks(env_id)
    sync = gym.make_vec(env_id, num_envs=2, vectorization_mode="sync")
    try:
        assert sync.observation_space.shape == (2, 2, DIMS[env_id][0])
        assert sync.action_space.shape == (2, 8, DIMS[env_id][1])
        expected = _vector_rollout(sync, n)
    finally:
        sync.close()
    assert not np.array_equal(expected[0][0], expected[0][1]), "sub-envs share a seed"
    asyn = gym.make_vec(
        env_id, num_envs=2, vectorization_mode="async", vector_kwargs={"context": context}
    )
    try:
        got = _vector_rollout(asyn, n)
    finally:
        asyn.close()
    assert data_equivalence(expected, got, exact=True)


@pytest.mark.parametrize(
    "vector_id",
    [pytest.param(i, marks=pytest.mark.slow) if i in SLOW_IDS else i for i in ENV_IDS],
)
def test_vector_sync_equals_async_forkserver(vector_id):
    _skip_if_unavailable(vector_id)
    _check_sync_equals_async(vector_id, "forkserver")


def test_vector_async_spawn():
    env_id = "lnmdn/PointMaze-UMaze-v0"
    _skip_if_unavailable(env_id)
    _check_sync_equals_async(env_id, "spawn")


def test_unknown_id_lists_known_ids():
    with pytest.raises(gym.error.UnregisteredEnv, match="PointMaze-UMaze"):
        lnmdn_envs.make_task_env("lnmdn/PointMaze-Umaze-v0")


def test_step_ids_and_max_task_steps():
    """The -Step ids give the single-step env; max_task_steps sets the single-step limit."""
    single = gym.make("lnmdn/PushT-Step-v0")
    assert single.observation_space.shape == (5,) and single.action_space.shape == (2,)
    chunked = gym.make("lnmdn/PushT-v0", n_action_steps=4, max_task_steps=6)
    chunked.reset(seed=0)
    agent = np.full((4, 2), 256.0, dtype=np.float32)
    assert chunked.step(agent)[3] is False
    _, _, _, truncated, info = chunked.step(agent)
    assert truncated and info["n_steps"] == 2


def test_import_defaults_mujoco_gl_to_egl_when_headless():
    """Headless Linux: importing lnmdn_envs picks EGL, unless the user chose a backend."""
    code = "import os, lnmdn_envs; print(os.environ.get('MUJOCO_GL'))"
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "DISPLAY")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == ("egl" if sys.platform.startswith("linux") else "None")
    env["MUJOCO_GL"] = "osmesa"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "osmesa"
