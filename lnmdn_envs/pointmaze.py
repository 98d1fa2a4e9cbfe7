"""PointMaze: gymnasium-robotics ``PointMaze_*-v3`` with a flat observation and eval semantics.

A force-actuated ball (MuJoCo, 100 Hz, one physics step per env step) rolls through a maze of
1 x 1 cells towards a goal. The ids::

    lnmdn/PointMaze-UMaze-v0    D4RL's U-maze            300 steps
    lnmdn/PointMaze-Medium-v0   D4RL's medium maze       600 steps
    lnmdn/PointMaze-Large-v0    D4RL's large maze        800 steps
    lnmdn/PointMaze-Bimodal-v0  two equally short routes  300 steps (see ``BIMODAL_MAZE``)

Observation (Do = 6, float32)::

    [x, y, vx, vy, goal_x, goal_y]
     ball position, ball velocity, goal position (metres, maze centred on the origin)

Bounds: positions lie inside the maze's outer walls, velocities within +-``MAX_SPEED`` (the
simulator clips the speed to 5 m/s per axis before each step). This is D4RL/Minari's
``observation`` (x, y, vx, vy) followed by ``desired_goal``; :func:`flatten_d4rl_observation`
maps the observation dicts of Minari's ``D4RL/pointmaze/*-v2`` datasets onto it.

Action (Da = 2): the force ``[fx, fy]`` in ``[-1, 1]`` (clipped, as the simulator does; NaN, a
wrong shape or a non-numeric dtype raise ``ValueError``).

Evaluation semantics, unlike the continuing task the D4RL data was recorded in: the start and the
goal are drawn once per episode from the reset seed (uniform over the maze's free cells, plus
uniform noise of +-0.25 m; the Bimodal maze has one start and one goal cell), the goal never
moves, and the episode terminates on success (distance to the goal <= 0.45 m). Truncation comes
from the registry's ``TimeLimit``. ``info`` carries ``is_success`` (bool), ``score`` (success as
0.0/1.0) and ``distance`` (m). Rewards: ``"sparse"`` (1.0 on success, else 0.0) or ``"dense"``
(``exp(-distance)``), gymnasium-robotics' definitions.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
from collections.abc import Mapping
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lnmdn_envs.validation import check_action

__all__ = [
    "BIMODAL_MAZE",
    "MAX_SPEED",
    "MAZES",
    "SUCCESS_DISTANCE",
    "PointMazeEnv",
    "flatten_d4rl_observation",
]

logger = logging.getLogger(__name__)

#: Success when the ball is within this distance (m) of the goal (gymnasium-robotics' rule).
SUCCESS_DISTANCE = 0.45
#: Bound of the velocity entries of the observation space (m/s); see ``PointMazeEnv``.
MAX_SPEED = 10.0

R, G = "r", "g"  # the start and goal cells of a map (gymnasium-robotics' convention)

#: The bimodal maze: from the start ``r`` the goal ``g`` is 6 cells away going left around the
#: central wall and 6 cells away going right; no other route exists. Row 0 is the top (+y).
BIMODAL_MAZE: list[list[int | str]] = [
    [1, 1, 1, 1, 1, 1, 1],
    [1, 0, 0, G, 0, 0, 1],
    [1, 0, 1, 1, 1, 0, 1],
    [1, 0, 0, R, 0, 0, 1],
    [1, 1, 1, 1, 1, 1, 1],
]

#: Maze maps by name. UMaze, Medium and Large are D4RL's maps (gymnasium-robotics ``maps.U_MAZE``,
#: ``MEDIUM_MAZE``, ``LARGE_MAZE``): 1 is a wall, 0 a free cell where start and goal may fall.
MAZES: dict[str, list[list[int | str]]] = {
    "UMaze": [
        [1, 1, 1, 1, 1],
        [1, 0, 0, 0, 1],
        [1, 1, 1, 0, 1],
        [1, 0, 0, 0, 1],
        [1, 1, 1, 1, 1],
    ],
    "Medium": [
        [1, 1, 1, 1, 1, 1, 1, 1],
        [1, 0, 0, 1, 1, 0, 0, 1],
        [1, 0, 0, 1, 0, 0, 0, 1],
        [1, 1, 0, 0, 0, 1, 1, 1],
        [1, 0, 0, 1, 0, 0, 0, 1],
        [1, 0, 1, 0, 0, 1, 0, 1],
        [1, 0, 0, 0, 1, 0, 0, 1],
        [1, 1, 1, 1, 1, 1, 1, 1],
    ],
    "Large": [
        [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
        [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1],
        [1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1],
        [1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1],
        [1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1],
        [1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1],
        [1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1],
        [1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1],
        [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    ],
    "Bimodal": BIMODAL_MAZE,
}

_OPTION_KEYS = ("reset_to_state", "goal_cell", "reset_cell")
_GL_HELP = (
    "Rendering needs an OpenGL backend for MuJoCo's offscreen renderer: set MUJOCO_GL=egl "
    "(needs libEGL, e.g. `apt-get install libegl1`) or MUJOCO_GL=osmesa (needs `libosmesa6`) "
    "before rendering; MUJOCO_GL=glfw needs a display."
)


def _import_point_maze() -> Any:
    """Import gymnasium-robotics' PointMaze lazily (the ``mujoco`` extra)."""
    try:
        # gymnasium-robotics prints an unrelated Adroit notice to stderr on import.
        with contextlib.redirect_stderr(io.StringIO()) as notice:
            from gymnasium_robotics.envs.maze.point_maze import PointMazeEnv as RoboticsPointMaze
    except ImportError as err:
        raise ImportError(
            f"PointMaze needs gymnasium-robotics and mujoco, the 'mujoco' extra ({err}). "
            "Install it with: pip install -c constraints.txt -e '.[mujoco]'"
        ) from err
    if notice.getvalue():
        logger.debug("gymnasium-robotics import notice: %s", notice.getvalue().strip())
    return RoboticsPointMaze


def flatten_d4rl_observation(observation: Mapping[str, Any]) -> np.ndarray:
    """Map a D4RL/Minari PointMaze observation dict onto ``[x, y, vx, vy, goal_x, goal_y]``.

    Works for one step (``observation`` (4,), ``desired_goal`` (2,)) and for a batch or a whole
    Minari episode (``observation`` (N, 4), ``desired_goal`` (N, 2)); ``achieved_goal`` is the
    ball position already in ``observation`` and is ignored. D4RL's data comes from a continuing
    task, so ``desired_goal`` may change inside an episode: it is copied step by step.

    Args:
        observation: a dict with keys ``observation`` (..., 4) and ``desired_goal`` (..., 2), e.g.
            ``minari.load_dataset("D4RL/pointmaze/umaze-v2")[0].observations``.

    Returns:
        float32 array (..., 6).
    """
    if not isinstance(observation, Mapping):
        raise TypeError(
            "flatten_d4rl_observation expects a D4RL/Minari PointMaze observation dict with keys "
            f"'observation' and 'desired_goal', got {type(observation).__name__}"
        )
    missing = [k for k in ("observation", "desired_goal") if k not in observation]
    if missing:
        raise KeyError(
            f"PointMaze observation dict lacks {missing}; keys seen: {sorted(observation)}. "
            "Expected Minari's D4RL/pointmaze layout (observation, achieved_goal, desired_goal)."
        )
    state = np.asarray(observation["observation"])
    goal = np.asarray(observation["desired_goal"])
    if state.shape[-1:] != (4,) or goal.shape[-1:] != (2,) or state.shape[:-1] != goal.shape[:-1]:
        raise ValueError(
            "expected observation (..., 4) = [x, y, vx, vy] and desired_goal (..., 2) with the "
            f"same leading shape, got observation {state.shape} and desired_goal {goal.shape}"
        )
    return np.concatenate([state, goal], axis=-1).astype(np.float32)


class PointMazeEnv(gym.Env[np.ndarray, np.ndarray]):
    """A point-mass maze task with the flat observation ``[x, y, vx, vy, goal_x, goal_y]``.

    The single-step task env behind ``lnmdn/PointMaze-<maze>-v0``: observation (Do,) = (6,),
    action (Da,) = (2,). It has no time limit of its own (the registry adds ``TimeLimit``).

    Args:
        maze: one of :data:`MAZES` (``"UMaze"``, ``"Medium"``, ``"Large"``, ``"Bimodal"``).
        reward_type: ``"sparse"`` (1.0 on success) or ``"dense"`` (``exp(-distance)``).
        render_mode: ``None`` or ``"rgb_array"`` (MuJoCo's offscreen renderer, needs
            ``MUJOCO_GL=egl`` or ``osmesa`` on a machine without a display).
        position_noise_range: uniform noise (m) added to the start and goal cell centres.

    Reset options (``env.reset(seed=..., options=...)``):
        ``reset_to_state``: a state from :meth:`get_state` (6,) = qpos (2), qvel (2), goal (2):
            the episode continues from it exactly, which replays stored demonstrations.
        ``goal_cell`` / ``reset_cell``: ``(row, col)`` cells for the goal / start (plus noise).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 100}  # noqa: RUF012 (gym's API)

    def __init__(
        self,
        maze: str = "UMaze",
        reward_type: str = "sparse",
        render_mode: str | None = None,
        position_noise_range: float = 0.25,
    ):
        if maze not in MAZES:
            raise ValueError(f"unknown maze {maze!r}; choose one of {sorted(MAZES)}")
        if reward_type not in ("sparse", "dense"):
            raise ValueError(f"reward_type must be 'sparse' or 'dense', got {reward_type!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, "
                f"got {render_mode!r}"
            )
        if not 0.0 <= position_noise_range < 0.5:
            raise ValueError(
                f"position_noise_range must be in [0, 0.5) m (cells are 1 m), "
                f"got {position_noise_range=}"
            )
        self.maze_name = maze
        self.reward_type = reward_type
        self.render_mode = render_mode
        self.position_noise_range = float(position_noise_range)
        self.maze_map: list[list[int | str]] = [list(row) for row in MAZES[maze]]

        robotics_cls = _import_point_maze()
        self._sim = robotics_cls(
            maze_map=self.maze_map,
            render_mode=render_mode,
            reward_type=reward_type,
            continuing_task=False,
            reset_target=False,
        )
        self._sim.position_noise_range = self.position_noise_range  # PointEnv rejects it as kwarg
        # The model is loaded; gymnasium-robotics leaves its generated XML in the temp folder.
        with contextlib.suppress(OSError):
            os.remove(self._sim.tmp_xml_file_path)

        # Positions stay inside the maze's outer walls; the simulator clips the velocity to
        # +-5 m/s before each 10 ms step, after which one step of full force adds < 0.25 m/s.
        rows, cols = len(self.maze_map), len(self.maze_map[0])
        hx, hy, v = cols / 2, rows / 2, MAX_SPEED
        low = np.array([-hx, -hy, -v, -v, -hx, -hy], np.float32)
        self._state_space = spaces.Box(low=low, high=-low, shape=(6,), dtype=np.float32)
        self.observation_space = self._state_space
        self._action_box = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = self._action_box
        self._has_reset = False

    # ----------------------------------------------------------------------------- geometry
    def cell_rowcol_to_xy(self, cell: Any) -> np.ndarray:
        """Centre ``(x, y)`` (m) of maze cell ``(row, col)``; row 0 is the top (+y)."""
        return np.asarray(self._sim.maze.cell_rowcol_to_xy(np.asarray(cell)), dtype=np.float64)

    def cell_xy_to_rowcol(self, xy: Any) -> tuple[int, int]:
        """The ``(row, col)`` cell that contains the point ``(x, y)``."""
        row, col = self._sim.maze.cell_xy_to_rowcol(np.asarray(xy, dtype=np.float64))
        return int(row), int(col)

    @property
    def goal(self) -> np.ndarray:
        """The goal position ``(x, y)`` of the current episode (float64 copy)."""
        return np.array(self._sim.goal, dtype=np.float64)

    # --------------------------------------------------------------------------- gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode: start and goal drawn from ``seed``, or restored from a state."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - set(_OPTION_KEYS))
        if unknown:
            raise ValueError(f"unknown reset options {unknown}; PointMaze accepts {_OPTION_KEYS}")
        state = options.pop("reset_to_state", None)
        if state is not None:
            state = self._check_state(state)
        self._sim.reset(seed=seed, options=options or None)
        if state is not None:
            self._sim.goal = state[4:6].copy()
            self._sim.update_target_site_pos()
            self._sim.point_env.set_state(state[0:2], state[2:4])
        self._has_reset = True
        return self._obs(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Apply the force ``action`` (Da,) for one 10 ms physics step."""
        if not self._has_reset:
            raise gym.error.ResetNeeded("call reset() before step() on PointMazeEnv")
        force = check_action(action, self._action_box)
        # gymnasium-robotics' PointMazeEnv.step is PointEnv.step plus goal bookkeeping that
        # builds three dict copies and three norms per step; with continuing_task=False it
        # reduces to the lines below (same arithmetic, checked step for step by the tests), at
        # a third of the cost.
        self._sim.point_env.step(force)
        diff = self._sim.point_env.data.qpos - self._sim.goal
        distance = math.sqrt(float(diff.dot(diff)))  # np.linalg.norm's arithmetic
        success = distance <= SUCCESS_DISTANCE
        if self.reward_type == "sparse":
            reward = 1.0 if success else 0.0
        else:  # gymnasium-robotics' compute_reward takes the norm along axis=-1 (other rounding)
            reward = float(np.exp(-np.linalg.norm(diff, axis=-1)))
        info = {"is_success": success, "score": float(success), "distance": distance}
        return self._obs(), reward, success, False, info

    def render(self) -> np.ndarray | None:
        """An RGB frame (H, W, 3) uint8 when ``render_mode="rgb_array"``, else ``None``."""
        if self.render_mode is None:
            gym.logger.warn(
                "PointMazeEnv.render() called without a render_mode; "
                "make the env with render_mode='rgb_array'."
            )
            return None
        if os.environ.get("MUJOCO_GL", "glfw") == "glfw" and not os.environ.get("DISPLAY"):
            raise RuntimeError(
                f"No display and MUJOCO_GL={os.environ.get('MUJOCO_GL')!r}. {_GL_HELP}"
            )
        try:
            frame = self._sim.render()
        except Exception as err:  # mujoco.FatalError, EGL/OSMesa errors
            raise RuntimeError(f"MuJoCo rendering failed ({err!r}). {_GL_HELP}") from err
        return np.asarray(frame)

    def close(self) -> None:
        """Free the simulator and its renderer."""
        sim = getattr(self, "_sim", None)
        if sim is not None:
            sim.close()

    # ---------------------------------------------------------------------- state access
    def get_state(self) -> np.ndarray:
        """The replayable state (6,) float64: qpos (x, y), qvel (vx, vy), goal (x, y)."""
        data = self._sim.point_env.data
        return np.concatenate([data.qpos, data.qvel, self._sim.goal]).astype(np.float64)

    def _check_state(self, state: Any) -> np.ndarray:
        arr = np.asarray(state)
        if arr.dtype.kind not in "iuf" or arr.shape != (6,) or not np.all(np.isfinite(arr)):
            raise ValueError(
                "reset_to_state must be a finite numeric array (6,) = qpos (2), qvel (2), goal (2) "
                f"as returned by get_state(), got shape {arr.shape} dtype {arr.dtype}"
            )
        arr = arr.astype(np.float64)
        space = self._state_space
        if np.any(arr < space.low) or np.any(arr > space.high):
            raise ValueError(
                f"reset_to_state {arr.tolist()} lies outside the maze / speed bounds "
                f"low={space.low.tolist()}, high={space.high.tolist()}"
            )
        return arr

    def _obs(self) -> np.ndarray:
        data = self._sim.point_env.data
        obs = np.empty(6, dtype=np.float32)
        obs[0:2] = data.qpos
        obs[2:4] = data.qvel
        obs[4:6] = self._sim.goal
        return obs

    def _info(self, distance: float | None = None) -> dict[str, Any]:
        if distance is None:
            distance = float(np.linalg.norm(self._sim.point_env.data.qpos - self._sim.goal))
        success = distance <= SUCCESS_DISTANCE
        return {"is_success": bool(success), "score": float(success), "distance": distance}

    # -------------------------------------------------------------------------- pickling
    def __getstate__(self) -> dict[str, Any]:
        """Constructor arguments plus the simulator state and RNG, so a copy continues exactly."""
        return {
            "kwargs": {
                "maze": self.maze_name,
                "reward_type": self.reward_type,
                "render_mode": self.render_mode,
                "position_noise_range": self.position_noise_range,
            },
            "sim_state": self.get_state() if self._has_reset else None,
            "sim_rng": self._sim.np_random.bit_generator.state if self._has_reset else None,
            "rng": self._np_random.bit_generator.state if self._np_random is not None else None,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild the simulator from the constructor arguments and restore the saved state."""
        self.__init__(**state["kwargs"])  # type: ignore[misc]
        if state["sim_state"] is not None:
            self.reset(options={"reset_to_state": state["sim_state"]})
            self._sim.np_random.bit_generator.state = state["sim_rng"]
        if state["rng"] is not None:
            self._np_random = np.random.default_rng()
            self._np_random.bit_generator.state = state["rng"]
