"""lnmdn/PushT-v0: API contract, determinism, pickling, chunking, bad input, and parity.

The parity tests run gym-pusht 0.1.8 (Diffusion Policy's Push-T code kept by LeRobot) as the
oracle, from the same start states and with the same commanded positions.
"""

from __future__ import annotations

import math
import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import lnmdn_envs
from lnmdn_envs.pusht import GOAL_POSE, OBS_TYPES, PushTEnv, legacy_initial_state
from lnmdn_envs.pusht_geometry import (
    T_AREA,
    T_KEYPOINTS,
    body_to_world,
    t_overlap_area,
    t_world_rects,
)

ENV_ID = "lnmdn/PushT-v0"

# check_env's advice for RL (normalised action spaces) does not apply to commanded positions in px.
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*symmetric and normalized space.*",
    "ignore:.*alternative render modes.*",
    "ignore:.*different from the unwrapped version.*",
    "ignore:.*without a render_mode.*",
)


def _random_state(rng: np.random.Generator) -> np.ndarray:
    return np.array(
        [
            rng.integers(50, 450),
            rng.integers(50, 450),
            rng.integers(100, 400),
            rng.integers(100, 400),
            rng.uniform(-math.pi, math.pi),
        ],
        dtype=np.float64,
    )


def _pushing_actions(state: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """Commanded positions that sweep the agent into and across the block (contacts happen)."""
    if rng.random() < 0.25:
        return rng.uniform(-20, 532, size=(n, 2))  # includes out-of-range values (clipped)
    start = state[:2]
    via = state[2:4] + rng.normal(0, 25, size=2)
    k = n // 3
    approach = np.linspace(start, via, k)
    push = via + np.cumsum(rng.normal(0, 20, size=(n - k, 2)) + rng.normal(0, 15, size=2), axis=0)
    return np.clip(np.concatenate([approach, push]), 0, 512)


# --------------------------------------------------------------------------- API contract
@pytest.mark.parametrize("obs_type", OBS_TYPES)
def test_check_env_task_env(obs_type: str) -> None:
    check_env(PushTEnv(obs_type=obs_type, render_mode="rgb_array"), skip_render_check=False)


def test_keypoint_space_holds_every_random_start() -> None:
    """Random starts can put part of the T outside [0, 512] (seeds 43, 56 and 60 do): the
    keypoint bounds allow for the T's reach, so check_env's unseeded reset never fails."""
    env = PushTEnv(obs_type="keypoints")
    outside = 0
    for seed in range(300):
        obs, _ = env.reset(seed=seed)
        assert env.observation_space.contains(obs), seed
        outside += bool((obs[:18] < 0).any() or (obs[:18] > 512).any())
    assert outside > 0  # the case the bounds are for does occur


@pytest.mark.parametrize("obs_type", OBS_TYPES)
def test_check_env_registered(obs_type: str) -> None:
    env = gym.make(ENV_ID, obs_type=obs_type)
    check_env(env.unwrapped)
    check_env(env)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert env.action_space.shape == (8, 2)


def test_spaces_and_info() -> None:
    shapes = {"state": (5,), "keypoints": (20,), "pixels": (96, 96, 3)}
    for obs_type, shape in shapes.items():
        env = PushTEnv(obs_type=obs_type)
        obs, info = env.reset(seed=3)
        assert obs.shape == shape == env.observation_space.shape
    env = PushTEnv(obs_type="pixels_state", image_size=64)
    obs, _ = env.reset(seed=3)
    assert obs["pixels"].shape == (64, 64, 3) and obs["pixels"].dtype == np.uint8
    np.testing.assert_array_equal(obs["agent_pos"], env.get_state()[:2])
    _, reward, _, truncated, info = env.step([100.0, 100.0])
    assert set(info) >= {"is_success", "coverage", "score", "agent_pos", "block_pose"}
    assert isinstance(info["is_success"], bool) and not truncated
    assert info["score"] == reward == min(info["coverage"] / 0.95, 1.0)


def test_keypoints_follow_block() -> None:
    env = PushTEnv(obs_type="keypoints")
    obs, _ = env.reset(options={"reset_to_state": [50, 50, *GOAL_POSE]})
    kps = obs[:18].reshape(9, 2)
    np.testing.assert_allclose(obs[18:], [50, 50])
    # The first two keypoints are the bar's far corners (-60, 0), (60, 0) in the body frame.
    c, s = math.cos(math.pi / 4), math.sin(math.pi / 4)
    np.testing.assert_allclose(kps[0], [256 - 60 * c, 256 - 60 * s], atol=1e-9)
    np.testing.assert_allclose(kps[1], [256 + 60 * c, 256 + 60 * s], atol=1e-9)
    np.testing.assert_allclose(kps[8], [256 - 45 * s, 256 + 45 * c], atol=1e-9)  # centre of mass


def test_registered_time_limit_and_single_step_env() -> None:
    task = lnmdn_envs.make_task_env(ENV_ID)
    assert task.spec is None or task.spec.max_episode_steps in (None, 300)
    task.reset(seed=0)
    n = 0
    truncated = terminated = False
    while not (terminated or truncated):
        _, _, terminated, truncated, _ = task.step([10.0, 10.0])  # park in a corner
        n += 1
    assert truncated and n == 300


def test_success_terminates_with_full_reward() -> None:
    env = PushTEnv()
    env.reset(options={"reset_to_state": [40, 40, *GOAL_POSE]})
    _, reward, terminated, _, info = env.step([40.0, 40.0])
    assert terminated and info["is_success"] and reward == 1.0
    assert info["coverage"] == pytest.approx(1.0, abs=1e-9)


def test_render() -> None:
    env = PushTEnv(render_mode="rgb_array", render_size=128)
    env.reset(seed=0)
    before = env.render()
    env.step([256.0, 256.0])
    after = env.render()
    assert before is not None and after is not None
    assert before.shape == (128, 128, 3) and before.dtype == np.uint8
    assert not np.array_equal(before, after)  # agent moved, action marked
    assert PushTEnv().render() is None


# --------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("obs_type", ["state", "pixels"])
def test_seeded_determinism(obs_type: str) -> None:
    rng = np.random.default_rng(0)
    actions = rng.uniform(0, 512, size=(40, 2))
    runs = []
    for _ in range(2):
        env = PushTEnv(obs_type=obs_type)
        obs, _ = env.reset(seed=123)
        traj = [obs]
        for a in actions:
            traj.append(env.step(a)[0])
        runs.append(np.stack(traj))
    np.testing.assert_array_equal(runs[0], runs[1])
    other, _ = PushTEnv(obs_type=obs_type).reset(seed=124)
    assert not np.array_equal(runs[0][0], other)


def test_pickle_round_trip_continues_identically() -> None:
    rng = np.random.default_rng(1)
    env = PushTEnv()
    env.reset(seed=5)
    start = env.get_state()
    for a in _pushing_actions(start, np.random.default_rng(7), 40):
        env.step(a)
    moved = np.abs(env.get_state()[2:] - start[2:]).max()
    assert moved > 1.0  # the block is being pushed (contacts are cached) when we pickle
    clone = pickle.loads(pickle.dumps(env))
    np.testing.assert_array_equal(clone.get_state(), env.get_state())
    state = env.get_state()
    for a in state[2:4] + np.cumsum(rng.normal(0, 15, size=(40, 2)), axis=0):
        out_a = env.step(a)
        out_b = clone.step(a)
        np.testing.assert_array_equal(out_a[0], out_b[0])
        assert out_a[1:4] == out_b[1:4]
    assert np.abs(env.get_state()[2:] - state[2:]).max() > 1.0


def test_reset_to_state_restores_pose() -> None:
    env = PushTEnv()
    env.reset(seed=11)
    for a in np.random.default_rng(0).uniform(100, 400, size=(20, 2)):
        env.step(a)
    state = env.get_state()
    env.reset(options={"reset_to_state": state})
    np.testing.assert_allclose(env.get_state(), state, rtol=0, atol=1e-9)


@pytest.mark.parametrize("k", [1, 3, 8])
def test_chunk_equals_single_steps(k: int) -> None:
    chunked = gym.make(ENV_ID, n_obs_steps=2, n_action_steps=k)
    single = lnmdn_envs.make_task_env(ENV_ID)
    obs_c, _ = chunked.reset(seed=42)
    obs_s, _ = single.reset(seed=42)
    np.testing.assert_array_equal(obs_c[-1], obs_s)
    rng = np.random.default_rng(k)
    for _ in range(6):
        chunk = rng.uniform(0, 512, size=(k, 2)).astype(np.float32)
        obs_c, reward_c, term_c, trunc_c, info_c = chunked.step(chunk)
        rewards = []
        history = [obs_s]
        for a in chunk:
            obs_s, r, term_s, trunc_s, info_s = single.step(a)
            rewards.append(r)
            history.append(obs_s)
            if term_s or trunc_s:
                break
        np.testing.assert_array_equal(obs_c, np.stack(history[-2:]))
        np.testing.assert_allclose(info_c["step_rewards"][: len(rewards)], rewards)
        assert reward_c == pytest.approx(sum(rewards))
        assert (term_c, trunc_c) == (term_s, trunc_s)
        assert info_c["coverage"] == info_s["coverage"]


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("action", "match"),
    [
        ([np.nan, 1.0], "finite"),
        ([np.inf, 1.0], "finite"),
        ([1.0, 2.0, 3.0], r"shape \(2,\)"),
        ([[1.0, 2.0]], r"shape \(2,\)"),
        (["a", "b"], "numeric"),
    ],
)
def test_bad_action_raises(action: object, match: str) -> None:
    env = PushTEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(action)


def test_out_of_range_action_is_clipped_to_workspace() -> None:
    a, b = PushTEnv(), PushTEnv()
    a.reset(seed=9)
    b.reset(seed=9)
    for raw, clipped in [([-100.0, 700.0], [0.0, 512.0]), ([1e6, -3.0], [512.0, 0.0])]:
        np.testing.assert_array_equal(a.step(raw)[0], b.step(clipped)[0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"obs_type": "rgb"}, "obs_type"),
        ({"render_mode": "human"}, "render_mode"),
        ({"image_size": 0}, "image_size"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PushTEnv(**kwargs)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"reset_to_state": [1, 2, 3]}, "5 numbers"),
        ({"reset_to_state": [1, 2, 3, 4, np.nan]}, "finite"),
        ({"reset_state": [1, 2, 3, 4, 5]}, "unknown reset options"),
    ],
)
def test_bad_reset_options(options: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PushTEnv().reset(options=options)


# --------------------------------------------------------------------------- legacy seeding
def test_legacy_initial_state_is_diffusion_policys_formula() -> None:
    for seed in [0, 1, 100000, 100049]:
        rs = np.random.RandomState(seed=seed)
        expected = [
            rs.randint(50, 450),
            rs.randint(50, 450),
            rs.randint(100, 400),
            rs.randint(100, 400),
            rs.randn() * 2 * np.pi - np.pi,
        ]
        np.testing.assert_array_equal(legacy_initial_state(seed), expected)


def test_legacy_seeding_reproduces_diffusion_policy_starts() -> None:
    """DP's test env (legacy=True) samples with RandomState(seed), sets block position then angle
    and settles one physics step; gym-pusht's reset_to_state does the same with a given state."""
    import gym_pusht  # noqa: F401

    peer = gym.make("gym_pusht/PushT-v0", obs_type="state").unwrapped
    ours = PushTEnv(legacy_seeding=True)
    for seed in range(100000, 100010):
        obs, _ = ours.reset(seed=seed)
        peer_obs, _ = peer.reset(options={"reset_to_state": legacy_initial_state(seed)})
        np.testing.assert_array_equal(obs, peer_obs)
    # Without a seed, each legacy reset draws a new DP seed from the env's own generator.
    a, _ = ours.reset()
    b, _ = ours.reset()
    assert not np.array_equal(a, b)


def test_evaluation_uses_diffusion_policys_test_starts() -> None:
    """Closed-loop evaluation builds Push-T with legacy seeding (the datasets do not)."""
    from lnmdn_envs.registration import evaluation_kwargs

    assert evaluation_kwargs("lnmdn/PushT-v0") == {"legacy_seeding": True}
    assert evaluation_kwargs("lnmdn/PushT-Step-v0") == {"legacy_seeding": True}
    assert evaluation_kwargs("lnmdn/PointMaze-UMaze-v0") == {}
    assert evaluation_kwargs("gym_pusht/PushT-v0") == {}


# --------------------------------------------------------------------------- coverage
def test_body_to_world_rotates_about_the_origin_then_translates() -> None:
    (p,) = body_to_world([(10.0, 0.0)], 100.0, 200.0, math.pi / 2)
    assert p == pytest.approx((100.0, 210.0), abs=1e-12)
    (d,) = body_to_world([(0.0, 1.0)], 0.0, 0.0, math.pi)  # a direction: no translation
    assert d == pytest.approx((0.0, -1.0), abs=1e-12)
    # The env's keypoint observation is the same transform of the same points, bit for bit.
    env = PushTEnv(obs_type="keypoints")
    env.reset(seed=4)
    rng = np.random.default_rng(4)
    for _ in range(30):
        obs, _, _, _, info = env.step(rng.uniform(0, 512, size=2))
        expected = np.asarray(body_to_world(T_KEYPOINTS, *info["block_pose"]))
        np.testing.assert_array_equal(obs[:18].reshape(9, 2), expected)


def test_coverage_matches_shapely_on_random_poses() -> None:
    shapely_geometry = pytest.importorskip("shapely.geometry")

    def t_shape(pose: tuple[float, float, float]):
        return shapely_geometry.MultiPolygon(
            [shapely_geometry.Polygon(r) for r in t_world_rects(*pose)]
        )

    goal = t_shape(GOAL_POSE)
    goal_rects = t_world_rects(*GOAL_POSE)
    rng = np.random.default_rng(0)
    n_overlap = 0
    for i in range(2000):
        if i % 2:
            pose = (rng.uniform(0, 512), rng.uniform(0, 512), rng.uniform(-10, 10))
        else:  # near the goal, where coverage is partial
            pose = tuple(np.asarray(GOAL_POSE) + rng.normal(0, [20, 20, 0.5]))
        ours = t_overlap_area(t_world_rects(*pose), goal_rects) / T_AREA
        expected = goal.intersection(t_shape(pose)).area / goal.area
        assert ours == pytest.approx(expected, rel=1e-9, abs=1e-9)
        n_overlap += 0.0 < expected < 1.0
    assert n_overlap > 500
    assert t_overlap_area(goal_rects, goal_rects) == pytest.approx(T_AREA, rel=1e-12)


# --------------------------------------------------------------------------- parity
def _parity_run(n_sequences: int, n_steps: int, seed: int) -> tuple[int, int]:
    """Run both simulators side by side; assert equality; return (#contact sequences, #steps)."""
    import gym_pusht  # noqa: F401

    peer = gym.make("gym_pusht/PushT-v0", obs_type="state").unwrapped
    ours = PushTEnv(legacy_seeding=True)  # gym-pusht applies reset_to_state in DP's legacy order
    rng = np.random.default_rng(seed)
    n_pushed = n_compared = 0
    for _ in range(n_sequences):
        state = _random_state(rng)
        ours.reset(options={"reset_to_state": state})
        peer.reset(options={"reset_to_state": state})
        start_block = ours.get_state()[2:]
        for a in _pushing_actions(state, rng, n_steps):
            obs, reward, terminated, _, info = ours.step(a)
            p_obs, p_reward, p_terminated, _, p_info = peer.step(np.clip(a, 0, 512))
            # The dynamics agree bit for bit: same construction order, same PD arithmetic.
            np.testing.assert_array_equal(obs, p_obs)
            np.testing.assert_array_equal(info["block_pose"], p_info["block_pose"])
            np.testing.assert_array_equal(info["agent_pos"], p_info["pos_agent"])
            # Coverage: exact polygon clipping vs GEOS; the two differ by rounding only.
            assert info["coverage"] == pytest.approx(p_info["coverage"], rel=0, abs=1e-12)
            assert reward == pytest.approx(p_reward, rel=0, abs=1e-12)
            assert terminated == p_terminated
            n_compared += 1
            if terminated:
                break
        n_pushed += bool(np.abs(ours.get_state()[2:] - start_block).max() > 1.0)
    return n_pushed, n_compared


def test_parity_with_gym_pusht() -> None:
    n_pushed, n_compared = _parity_run(n_sequences=100, n_steps=50, seed=0)
    assert n_pushed >= 50  # most sequences push the block: contacts are exercised
    assert n_compared > 4000


@pytest.mark.slow
def test_parity_with_gym_pusht_long() -> None:
    n_pushed, _ = _parity_run(n_sequences=500, n_steps=300, seed=1)
    assert n_pushed >= 250
