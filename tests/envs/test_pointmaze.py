"""PointMaze task env: layout, fidelity to gymnasium-robotics, evaluation semantics, replay."""

from __future__ import annotations

import pickle
import sys
from collections import deque

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("gymnasium_robotics")

import lnmdn_envs
from lnmdn_envs.pointmaze import (
    BIMODAL_MAZE,
    MAZES,
    SUCCESS_DISTANCE,
    PointMazeEnv,
    flatten_d4rl_observation,
)

MAZE_IDS = {
    "UMaze": "lnmdn/PointMaze-UMaze-v0",
    "Medium": "lnmdn/PointMaze-Medium-v0",
    "Large": "lnmdn/PointMaze-Large-v0",
    "Bimodal": "lnmdn/PointMaze-Bimodal-v0",
}


def _raw_env(maze_map, **kwargs):
    from gymnasium_robotics.envs.maze.point_maze import PointMazeEnv as Raw

    return Raw(maze_map=maze_map, continuing_task=False, reset_target=False, **kwargs)


def _shortest_paths(maze_map, start, goal):
    """All shortest cell paths from start to goal (4-neighbour moves over free cells)."""
    rows, cols = len(maze_map), len(maze_map[0])
    dist = {goal: 0}
    queue = deque([goal])
    while queue:
        r, c = queue.popleft()
        for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= nr < rows and 0 <= nc < cols and maze_map[nr][nc] != 1 and (nr, nc) not in dist:
                dist[nr, nc] = dist[r, c] + 1
                queue.append((nr, nc))

    def extend(path):
        if path[-1] == goal:
            return [path]
        r, c = path[-1]
        out = []
        for nxt in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if dist.get(nxt) == dist[path[-1]] - 1:
                out += extend([*path, nxt])
        return out

    return extend([start])


def test_d4rl_maps_are_gymnasium_robotics_maps():
    from gymnasium_robotics.envs.maze import maps

    assert MAZES["UMaze"] == maps.U_MAZE
    assert MAZES["Medium"] == maps.MEDIUM_MAZE
    assert MAZES["Large"] == maps.LARGE_MAZE


def test_registered_limits():
    limits = {"UMaze": 300, "Medium": 600, "Large": 800, "Bimodal": 300}
    for maze, env_id in MAZE_IDS.items():
        assert lnmdn_envs.TASKS[env_id].max_episode_steps == limits[maze]
        assert lnmdn_envs.TASKS[env_id].kwargs == {"maze": maze}


def test_bimodal_maze_has_exactly_two_equal_routes_left_and_right():
    cells = {
        v: (r, c)
        for r, row in enumerate(BIMODAL_MAZE)
        for c, v in enumerate(row)
        if v in ("r", "g")
    }
    start, goal = cells["r"], cells["g"]
    paths = _shortest_paths(BIMODAL_MAZE, start, goal)
    assert len(paths) == 2
    assert len(paths[0]) == len(paths[1]) == 7
    sides = sorted("left" if min(c for _, c in p) < start[1] else "right" for p in paths)
    assert sides == ["left", "right"]
    # every route that avoids one side is the other side's: no third way through the wall
    assert all(min(c for _, c in p) < start[1] or max(c for _, c in p) > start[1] for p in paths)


def test_bimodal_start_and_goal_are_fixed_cells():
    env = PointMazeEnv("Bimodal")
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        assert env.cell_xy_to_rowcol(obs[:2]) == (3, 3)
        assert env.cell_xy_to_rowcol(obs[4:]) == (1, 3)
    env.close()


@pytest.mark.parametrize(
    "maze, reward_type, reaches_goal",
    [
        ("UMaze", "sparse", True),
        ("UMaze", "dense", True),
        ("Medium", "dense", True),
        ("Bimodal", "sparse", False),  # a straight pull presses the ball against the wall
    ],
)
def test_matches_gymnasium_robotics_step_for_step(maze, reward_type, reaches_goal):
    """Same seed and actions: our flat obs is the raw env's dict flattened, D4RL style, and
    rewards, terminations and success are gymnasium-robotics' own, bit for bit."""
    ours = PointMazeEnv(maze, reward_type=reward_type)
    raw = _raw_env(MAZES[maze], reward_type=reward_type)
    obs, info = ours.reset(seed=7)
    raw_obs, _ = raw.reset(seed=7)
    assert obs.dtype == np.float32 and obs.shape == (6,)
    np.testing.assert_array_equal(obs, flatten_d4rl_observation(raw_obs))
    # a PD pull towards the goal with noise: walls are hit and the goal is reached
    rng = np.random.default_rng(0)
    n_success = 0
    for _ in range(400):
        a = np.clip(3 * (obs[4:] - obs[:2]) - 0.5 * obs[2:4] + rng.normal(0, 0.5, 2), -1, 1)
        obs, reward, terminated, truncated, info = ours.step(a.astype(np.float32))
        raw_obs, raw_reward, raw_terminated, _, raw_info = raw.step(a.astype(np.float32))
        np.testing.assert_array_equal(obs, flatten_d4rl_observation(raw_obs))
        assert reward == raw_reward and terminated == raw_terminated
        assert info["is_success"] == raw_info["success"]
        assert not truncated
        n_success += info["is_success"]
        if terminated:
            seed = int(rng.integers(1000))
            obs, _ = ours.reset(seed=seed)
            raw_obs, _ = raw.reset(seed=seed)
            np.testing.assert_array_equal(obs, flatten_d4rl_observation(raw_obs))
    assert (n_success > 0) == reaches_goal
    ours.close()
    raw.close()


def test_flatten_d4rl_observation_batch_and_errors():
    batch = {
        "observation": np.arange(12, dtype=np.float64).reshape(3, 4),
        "achieved_goal": np.zeros((3, 2)),
        "desired_goal": -np.ones((3, 2)),
    }
    flat = flatten_d4rl_observation(batch)
    assert flat.shape == (3, 6) and flat.dtype == np.float32
    np.testing.assert_array_equal(flat[1], [4, 5, 6, 7, -1, -1])
    with pytest.raises(KeyError, match="desired_goal"):
        flatten_d4rl_observation({"observation": np.zeros(4)})
    with pytest.raises(ValueError, match="desired_goal"):
        flatten_d4rl_observation(
            {"observation": np.zeros((3, 4)), "desired_goal": np.zeros((2, 2))}
        )
    with pytest.raises(TypeError, match="dict"):
        flatten_d4rl_observation(np.zeros(6))  # type: ignore[arg-type]


def test_seeded_reset_is_deterministic_and_seeds_differ():
    env = PointMazeEnv("Medium")
    a, _ = env.reset(seed=11)
    b, _ = env.reset(seed=11)
    c, _ = env.reset(seed=12)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.linalg.norm(a[:2] - a[4:]) > SUCCESS_DISTANCE  # never starts on the goal
    env.close()


@pytest.mark.parametrize("reward_type", ["sparse", "dense"])
def test_success_terminates_with_score_and_reward(reward_type):
    env = PointMazeEnv("UMaze", reward_type=reward_type)
    env.reset(seed=0)
    goal = env.goal
    # at rest, 0.3 m from the goal: the next step is a success
    near = np.array([goal[0] + 0.3, goal[1], 0.0, 0.0, goal[0], goal[1]])
    _, info = env.reset(seed=0, options={"reset_to_state": near})
    assert info["is_success"] and info["score"] == 1.0
    _, reward, terminated, truncated, info = env.step(np.zeros(2))
    assert terminated and not truncated and info["is_success"] and info["score"] == 1.0
    expected = 1.0 if reward_type == "sparse" else np.exp(-info["distance"])
    assert reward == pytest.approx(expected)
    # the seeded start, at rest and > 0.5 m from the goal: no success, no termination
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(np.zeros(2))
    assert not terminated and not info["is_success"] and info["score"] == 0.0
    assert reward == (0.0 if reward_type == "sparse" else pytest.approx(np.exp(-info["distance"])))
    env.close()


def test_time_limit_truncates_at_registry_limit():
    env = gym.make("lnmdn/PointMaze-Bimodal-v0", n_obs_steps=1, n_action_steps=100)
    env.reset(seed=0)
    steps, truncated = 0, False
    while not truncated:
        _, _, terminated, truncated, info = env.step(np.zeros((100, 2), np.float32))
        assert not terminated
        steps += info["n_steps"]
    assert steps == 300
    env.close()


def test_reset_to_state_replays_a_trajectory_exactly():
    env = PointMazeEnv("Large")
    env.reset(seed=3)
    rng = np.random.default_rng(1)
    actions = rng.uniform(-1, 1, (120, 2))
    states = [env.get_state()]
    for a in actions:
        env.step(a)
        states.append(env.get_state())
    env.reset(seed=999, options={"reset_to_state": states[0]})
    np.testing.assert_array_equal(env.get_state(), states[0])
    for t, a in enumerate(actions):
        env.step(a)
        np.testing.assert_array_equal(env.get_state(), states[t + 1])
    env.close()


def test_pickled_env_continues_exactly():
    env = PointMazeEnv("Medium", reward_type="dense")
    env.reset(seed=5)
    for _ in range(10):
        env.step(np.array([0.5, -0.5]))
    copy = pickle.loads(pickle.dumps(env))
    assert copy.reward_type == "dense" and copy.maze_name == "Medium"
    np.testing.assert_array_equal(copy.get_state(), env.get_state())
    for a in np.random.default_rng(0).uniform(-1, 1, (20, 2)):
        np.testing.assert_array_equal(copy.step(a)[0], env.step(a)[0])
    np.testing.assert_array_equal(copy.reset()[0], env.reset()[0])  # RNG continues too
    env.close()
    copy.close()


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown maze 'Huge'"):
        PointMazeEnv("Huge")
    with pytest.raises(ValueError, match="reward_type"):
        PointMazeEnv("UMaze", reward_type="shaped")
    with pytest.raises(ValueError, match="render_mode"):
        PointMazeEnv("UMaze", render_mode="human")
    env = PointMazeEnv("UMaze")
    with pytest.raises(gym.error.ResetNeeded):
        env.step(np.zeros(2))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3))
    with pytest.raises(ValueError, match="dtype"):
        env.step(np.array(["a", "b"]))
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"goal": (1, 1)})
    with pytest.raises(ValueError, match="reset_to_state"):
        env.reset(options={"reset_to_state": np.zeros(4)})
    with pytest.raises(ValueError, match="outside"):
        env.reset(options={"reset_to_state": np.array([9.0, 0, 0, 0, 0, 0])})
    # out-of-range forces are clipped, as the simulator does
    obs_a = env.reset(seed=1)[0] * 0 + env.step(np.array([5.0, -5.0]))[0]
    obs_b = env.reset(seed=1)[0] * 0 + env.step(np.array([1.0, -1.0]))[0]
    np.testing.assert_array_equal(obs_a, obs_b)
    env.close()


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "gymnasium_robotics.envs.maze.point_maze", None)
    with pytest.raises(ImportError, match=r"\.\[mujoco\]"):
        PointMazeEnv("UMaze")


def test_render_without_gl_backend_says_what_to_set(monkeypatch):
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    env = PointMazeEnv("UMaze", render_mode="rgb_array")
    env.reset(seed=0)
    with pytest.raises(RuntimeError, match="MUJOCO_GL=egl"):
        env.render()
    env.close()


def test_render_rgb_array_with_egl(monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "egl")
    env = PointMazeEnv("Bimodal", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    env.close()
    assert frame is not None and frame.dtype == np.uint8 and frame.shape[2] == 3
    assert frame.std() > 0  # a picture, not a blank buffer
