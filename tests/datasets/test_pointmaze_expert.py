"""PointMazeExpert: shortest-path planning, tie-breaking by rng, success, replay."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("gymnasium_robotics")

from lnmdn_datasets.experts import Expert, rollout_expert
from lnmdn_datasets.experts.pointmaze import (
    PointMazeExpert,
    cell_distances,
    measure_pointmaze_expert,
    plan_path,
)
from lnmdn_envs import make_task_env
from lnmdn_envs.pointmaze import BIMODAL_MAZE, MAZES


def test_is_an_expert():
    expert: Expert = PointMazeExpert()
    assert callable(expert.reset) and callable(expert.act)


def test_bimodal_fork_is_chosen_by_the_rng():
    dist = cell_distances(BIMODAL_MAZE, (1, 3))
    paths = {tuple(plan_path(dist, (3, 3), np.random.default_rng(s))) for s in range(20)}
    assert len(paths) == 2
    for path in paths:
        assert len(path) == 7 and path[0] == (3, 3) and path[-1] == (1, 3)
    assert {path[1] for path in paths} == {(3, 2), (3, 4)}  # left and right


def test_planned_paths_are_shortest_and_walk_free_cells():
    maze = MAZES["Large"]
    free = [(r, c) for r, row in enumerate(maze) for c, v in enumerate(row) if v != 1]
    rng = np.random.default_rng(0)
    for _ in range(20):
        start, goal = (free[i] for i in rng.choice(len(free), 2, replace=False))
        dist = cell_distances(maze, goal)
        path = plan_path(dist, start, rng)
        assert len(path) == dist[start] + 1 and path[-1] == goal
        for (r0, c0), (r1, c1) in itertools.pairwise(path):
            assert abs(r0 - r1) + abs(c0 - c1) == 1 and maze[r1][c1] != 1
    with pytest.raises(ValueError, match="cannot reach"):
        plan_path(cell_distances(maze, (1, 1)), (0, 0), rng)


@pytest.mark.parametrize("maze, n", [("UMaze", 6), ("Medium", 4), ("Large", 3)])
def test_expert_succeeds_on_a_few_seeds(maze, n):
    result = measure_pointmaze_expert(maze, n_episodes=n, seed=1000)
    assert result["success_rate"] == 1.0, result["failed_seeds"]


def test_bimodal_expert_takes_both_routes():
    result = measure_pointmaze_expert("Bimodal", n_episodes=16, seed=0)
    assert result["success_rate"] == 1.0
    share = result["route_share"]
    assert share["left"] + share["right"] == 1.0
    assert min(share.values()) >= 0.25, share


def test_expert_is_deterministic_given_rng_and_episode_replays():
    env = make_task_env("lnmdn/PointMaze-Medium-v0")
    expert = PointMazeExpert()
    a = rollout_expert(env, expert, seed=5, rng=np.random.default_rng(3))
    b = rollout_expert(env, expert, seed=5, rng=np.random.default_rng(3))
    c = rollout_expert(env, expert, seed=5, rng=np.random.default_rng(4))
    np.testing.assert_array_equal(a.actions, b.actions)
    assert not np.array_equal(a.actions[:10], c.actions[:10])  # the noise comes from the rng
    assert a.success and len(a.observations) == len(a.actions) + 1
    # replay: reset to the first stored state, apply the stored actions
    env.reset(options={"reset_to_state": a.infos["state"][0]})
    success = False
    for t, action in enumerate(a.actions):
        obs, _, terminated, _, info = env.step(action)
        np.testing.assert_array_equal(obs, a.observations[t + 1])
        success = success or info["is_success"]
    assert success and terminated
    env.close()


def test_expert_rejects_other_envs():
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    with pytest.raises(TypeError, match="PointMaze"):
        PointMazeExpert().reset(env, np.random.default_rng(0))
    with pytest.raises(ValueError, match="waypoint_radius"):
        PointMazeExpert(waypoint_radius=0.0)


@pytest.mark.slow
@pytest.mark.parametrize("maze", ["UMaze", "Medium", "Large", "Bimodal"])
def test_expert_success_over_200_episodes(maze):
    result = measure_pointmaze_expert(maze, n_episodes=200, seed=0)
    assert result["success_rate"] >= 0.98, result
    if maze == "Bimodal":
        assert 0.4 <= result["route_share"]["left"] <= 0.6, result["route_share"]
        assert result["route_share"]["left"] + result["route_share"]["right"] == 1.0
