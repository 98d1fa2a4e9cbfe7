"""Shortest-path waypoint expert for ``lnmdn/PointMaze-*-v0``, as D4RL's maze data was made.

Planning: breadth-first distances to the goal cell over the maze's free cells (4-neighbour moves);
the path walks from the ball's cell downhill in distance. Where several neighbours are equally
close to the goal (the Bimodal maze's left / right fork, or the many equal detours of the large
maze) the episode's ``rng`` picks one, so both routes appear in equal share. Tracking: the cell
centres on the path (each jittered by a few cm) are waypoints, the last one is the goal itself;
a PD law drives the ball at the current waypoint and moves on when within ``waypoint_radius``::

    a = clip(kp * (waypoint - pos) + kd * vel + noise, -1, 1)       kp = 10, kd = -1 (D4RL's gains)

with Gaussian action noise from ``rng``. If the ball ever strays into a cell off its path it
replans from there. Measured with :func:`measure_pointmaze_expert` (README, ``envs-pointmaze``).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np

from lnmdn_datasets.experts import rollout_expert

__all__ = [
    "PointMazeExpert",
    "bimodal_route",
    "cell_distances",
    "measure_pointmaze_expert",
    "plan_path",
]

logger = logging.getLogger(__name__)

Cell = tuple[int, int]
_MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))


def cell_distances(maze_map: list[list[Any]], goal: Cell) -> dict[Cell, int]:
    """Breadth-first number of moves from every reachable free cell to ``goal``."""
    rows, cols = len(maze_map), len(maze_map[0])
    dist = {goal: 0}
    queue = deque([goal])
    while queue:
        r, c = queue.popleft()
        for dr, dc in _MOVES:
            nxt = (r + dr, c + dc)
            if (
                0 <= nxt[0] < rows
                and 0 <= nxt[1] < cols
                and maze_map[nxt[0]][nxt[1]] != 1
                and nxt not in dist
            ):
                dist[nxt] = dist[r, c] + 1
                queue.append(nxt)
    return dist


def plan_path(dist: dict[Cell, int], start: Cell, rng: np.random.Generator) -> list[Cell]:
    """A shortest cell path from ``start`` to the goal of ``dist`` (ties broken by ``rng``).

    Args:
        dist: :func:`cell_distances` to the goal.
        start: the starting cell ``(row, col)``.
        rng: draws among equally short continuations.

    Returns:
        The cells from ``start`` to the goal, both included.
    """
    if start not in dist:
        raise ValueError(f"cell {start} cannot reach the goal (a wall or a closed-off region)")
    path = [start]
    while dist[path[-1]] > 0:
        r, c = path[-1]
        options = [
            (r + dr, c + dc) for dr, dc in _MOVES if dist.get((r + dr, c + dc)) == dist[r, c] - 1
        ]
        path.append(options[int(rng.integers(len(options)))] if len(options) > 1 else options[0])
    return path


class PointMazeExpert:
    """Waypoint planner plus PD tracker over the single-step PointMaze env (Expert protocol).

    Args:
        kp: proportional gain on the position error (D4RL: 10).
        kd: gain on the velocity (D4RL: -1, i.e. damping).
        waypoint_radius: distance (m) at which the next waypoint becomes the target.
        waypoint_jitter: each intermediate waypoint is moved by up to this much (m) per axis.
        action_noise: standard deviation of the Gaussian noise added to the force.
    """

    def __init__(
        self,
        kp: float = 10.0,
        kd: float = -1.0,
        waypoint_radius: float = 0.1,
        waypoint_jitter: float = 0.1,
        action_noise: float = 0.1,
    ):
        if waypoint_radius <= 0 or waypoint_jitter < 0 or action_noise < 0:
            raise ValueError(
                "waypoint_radius must be > 0, waypoint_jitter and action_noise >= 0, got "
                f"{waypoint_radius=}, {waypoint_jitter=}, {action_noise=}"
            )
        self.kp, self.kd = float(kp), float(kd)
        self.waypoint_radius = float(waypoint_radius)
        self.waypoint_jitter = float(waypoint_jitter)
        self.action_noise = float(action_noise)
        self.path: list[Cell] = []
        self._rng = np.random.default_rng(0)
        self._dist: dict[Cell, int] = {}
        self._waypoints = np.zeros((0, 2))
        self._k = 0

    @staticmethod
    def _maze(env: gym.Env[Any, Any]) -> Any:
        from lnmdn_envs.pointmaze import PointMazeEnv

        maze = env.unwrapped
        if not isinstance(maze, PointMazeEnv):
            raise TypeError(
                "PointMazeExpert acts on lnmdn's PointMaze env "
                f"(lnmdn_envs.make_task_env('lnmdn/PointMaze-UMaze-v0')), got {type(maze).__name__}"
            )
        return maze

    def reset(self, env: gym.Env[Any, Any], rng: np.random.Generator) -> None:
        """Plan this episode's route; call right after ``env.reset(seed=...)``."""
        maze = self._maze(env)
        self._rng = rng
        goal_xy = maze.goal
        self._dist = cell_distances(maze.maze_map, maze.cell_xy_to_rowcol(goal_xy))
        self._plan(maze, maze.get_state()[:2])

    def _plan(self, maze: Any, pos: np.ndarray) -> None:
        self.path = plan_path(self._dist, maze.cell_xy_to_rowcol(pos), self._rng)
        centres = np.array([maze.cell_rowcol_to_xy(cell) for cell in self.path[1:-1]])
        centres = centres.reshape(-1, 2)
        jitter = self._rng.uniform(-self.waypoint_jitter, self.waypoint_jitter, centres.shape)
        self._waypoints = np.concatenate([centres + jitter, maze.goal[None]])
        self._k = 0

    def act(self, env: gym.Env[Any, Any], obs: np.ndarray) -> np.ndarray:
        """The force ``(2,)`` in ``[-1, 1]`` for the current state."""
        maze = self._maze(env)
        state = maze.get_state()
        pos, vel = state[:2], state[2:4]
        if not self.path:
            raise RuntimeError("call PointMazeExpert.reset(env, rng) after env.reset()")
        cell = maze.cell_xy_to_rowcol(pos)
        # path[k] is the cell the ball is leaving, path[k+1] the one it heads to.
        last = len(self._waypoints) - 1
        if cell not in self.path[self._k : self._k + 2]:
            if cell in self.path:
                self._k = min(self.path.index(cell), last)
            else:
                logger.debug("ball strayed into %s, off its path %s: replanning", cell, self.path)
                self._plan(maze, pos)
                last = len(self._waypoints) - 1
        while (
            self._k < last
            and np.linalg.norm(self._waypoints[self._k] - pos) <= self.waypoint_radius
        ):
            self._k += 1
        force = self.kp * (self._waypoints[self._k] - pos) + self.kd * vel
        force = force + self._rng.normal(0.0, self.action_noise, 2)
        return np.clip(force, -1.0, 1.0).astype(np.float32)


def bimodal_route(maze: Any, states: np.ndarray) -> str | None:
    """``"left"`` / ``"right"``: the side of the Bimodal maze's wall an episode's states passed.

    None for another maze, or when neither (or both) sides were reached.
    """
    if maze.maze_name != "Bimodal":
        return None
    x0 = states[0, 0]
    left, right = states[:, 0].min() < x0 - 1.5, states[:, 0].max() > x0 + 1.5
    if left == right:
        return None  # neither side reached (or, oddly, both)
    return "left" if left else "right"


def measure_pointmaze_expert(
    maze: str = "UMaze", n_episodes: int = 200, seed: int = 0, **expert_kwargs: Any
) -> dict[str, Any]:
    """Measure :class:`PointMazeExpert` over seeded episodes of ``lnmdn/PointMaze-<maze>-v0``.

    Episode ``i`` resets with seed ``seed + i`` and draws the expert's randomness from
    ``np.random.default_rng([seed, i])``; the registry's step limit applies.

    Args:
        maze: ``"UMaze"``, ``"Medium"``, ``"Large"`` or ``"Bimodal"``.
        n_episodes: number of episodes.
        seed: first reset seed.
        **expert_kwargs: :class:`PointMazeExpert` arguments.

    Returns:
        ``{"env_id", "success_rate", "n_episodes", "mean_length", "max_length",
        "route_share" (Bimodal: {"left", "right"} fractions, else None), "failed_seeds",
        "wall_s"}``.
    """
    from tqdm.auto import tqdm

    from lnmdn_envs import make_task_env

    env_id = f"lnmdn/PointMaze-{maze}-v0"
    env = make_task_env(env_id)
    expert = PointMazeExpert(**expert_kwargs)
    start = time.perf_counter()
    lengths, failed, routes = [], [], []
    bar = tqdm(
        range(n_episodes), desc=f"PointMaze-{maze} expert", unit="ep", leave=False, disable=None
    )
    for i in bar:
        ep = rollout_expert(env, expert, seed + i, np.random.default_rng([seed, i]))
        lengths.append(len(ep.actions))
        routes.append(bimodal_route(env.unwrapped, ep.infos["state"]))
        if not ep.success:
            failed.append(seed + i)
    env.close()
    share = None
    if maze == "Bimodal":
        share = {side: routes.count(side) / n_episodes for side in ("left", "right")}
    return {
        "env_id": env_id,
        "success_rate": 1.0 - len(failed) / n_episodes,
        "n_episodes": n_episodes,
        "mean_length": float(np.mean(lengths)),
        "max_length": int(np.max(lengths)),
        "route_share": share,
        "failed_seeds": failed,
        "wall_s": time.perf_counter() - start,
    }
