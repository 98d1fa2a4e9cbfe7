"""Push-T: Diffusion Policy's block-pushing task, as our own pymunk simulation.

The physics and rules are Diffusion Policy's (``diffusion_policy/env/pusht/pusht_env.py``,
Chi et al. 2023), rebuilt here so that trajectories agree with it (and with gym-pusht, which keeps
the same code) to floating-point precision:

* 512 x 512 px workspace with four static walls (segments of radius 2 at x, y = 5 and 506).
* The agent is a kinematic circle of radius 15. An action is the commanded agent position
  ``(x, y)`` in px; every physics step a PD controller (k_p = 100, k_v = 20) sets the agent's
  velocity ``v += (k_p (a - p) + k_v (0 - v)) dt``.
* The T block (bar 120 x 30 on a stem 30 x 90) has mass 1, Diffusion Policy's moment of inertia
  (twice the bar's), and its centre of gravity midway between the two rectangles' centroids.
  Diffusion Policy sets ``body.friction = 1`` on its bodies, which pymunk ignores (friction is a
  shape property), so contacts are frictionless; the space has no gravity and ``damping = 0``
  (the block keeps no velocity between physics steps: it moves only while pushed). We reproduce
  that effective behaviour.
* 100 Hz physics, 10 Hz control (10 physics steps per env step).
* Goal pose ``(256, 256, pi/4)``. Coverage = area(block ∩ goal) / area(goal), computed exactly
  (``lnmdn_envs.pusht_geometry``); reward ``clip(coverage / 0.95, 0, 1)``; the episode terminates
  when coverage > 0.95. The 300-step limit is the registry's ``TimeLimit``.

This module is the task (spaces, resets, rules, observations); the simulation is
:mod:`lnmdn_envs.pusht_physics`, the drawing :mod:`lnmdn_envs.pusht_render` and the block's
geometry :mod:`lnmdn_envs.pusht_geometry`.

Example::

    import lnmdn_envs
    env = lnmdn_envs.make_task_env("lnmdn/PushT-v0", obs_type="state")   # single-step env
    obs, info = env.reset(seed=0)           # obs (5,) = agent x, y, block x, y, angle
    obs, reward, terminated, truncated, info = env.step([256.0, 256.0])
"""

from __future__ import annotations

import math
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lnmdn_envs.pusht_geometry import (
    T_AREA,
    T_KEYPOINTS,
    body_to_world,
    t_overlap_area,
    t_world_rects,
)
from lnmdn_envs.pusht_physics import (
    AGENT_RADIUS,
    CONTROL_HZ,
    WORKSPACE,
    apply_state,
    build_space,
    simulate,
)
from lnmdn_envs.pusht_render import draw_scene
from lnmdn_envs.validation import check_action

__all__ = [
    "AGENT_RADIUS",
    "GOAL_POSE",
    "OBS_TYPES",
    "SUCCESS_THRESHOLD",
    "WORKSPACE",
    "PushTEnv",
    "legacy_initial_state",
]

OBS_TYPES = ("state", "keypoints", "pixels", "pixels_state")
GOAL_POSE = (256.0, 256.0, math.pi / 4)
SUCCESS_THRESHOLD = 0.95
_TWO_PI = 2.0 * math.pi


def legacy_initial_state(seed: int) -> np.ndarray:
    """Diffusion Policy's initial state for ``seed`` (``np.random.RandomState``, as its runners do).

    Args:
        seed: the episode seed (Diffusion Policy's test seeds start at 100000, training at 0).

    Returns:
        ``(5,)`` float64: agent x, y in [50, 450), block x, y in [100, 400), block angle.
    """
    rs = np.random.RandomState(seed=seed)
    return np.array(
        [
            rs.randint(50, 450),
            rs.randint(50, 450),
            rs.randint(100, 400),
            rs.randint(100, 400),
            rs.randn() * 2 * np.pi - np.pi,
        ],
        dtype=np.float64,
    )


class PushTEnv(gym.Env[Any, np.ndarray]):
    """Push the T block onto the goal T with a circular agent (Diffusion Policy's Push-T).

    Observation (``obs_type``):
        * ``"state"``: ``(5,)`` float64, agent x, y, block x, y (the T's body-frame origin: the
          middle of the bar's edge opposite the stem), block angle in ``[0, 2 pi)``.
        * ``"keypoints"``: ``(20,)`` float64, 9 block keypoints ``(x, y)`` (the T's 8 outline
          corners, then its centre of mass) followed by the agent's ``(x, y)``; Diffusion
          Policy's keypoint layout (9 block keypoints + agent), with corners instead of its
          farthest-point samples.
        * ``"pixels"``: ``(H, W, 3)`` uint8 top-down image (``image_size``, default 96).
        * ``"pixels_state"``: ``{"pixels": (H, W, 3) uint8, "agent_pos": (2,) float64}``, the
          image plus the agent's position (what Diffusion Policy's image policy observes).

        Position bounds ``[0, 512]`` are nominal: a block squeezed between the agent and a wall
        can be pushed through it, as in Diffusion Policy. Block keypoints are bounded by
        ``[-r, 512 + r]``, ``r`` the farthest keypoint's distance from the block's position
        (about 121 px): a T that starts near the edge reaches past it.

    Action: ``(2,)`` commanded agent position in px, ``Box(0, 512)``. Non-finite values or a wrong
    shape raise ValueError; finite values outside ``[0, 512]`` are clipped to the workspace
    (``lnmdn_envs.validation.check_action``).

    Reward: ``clip(coverage / 0.95, 0, 1)``; terminated when coverage > 0.95.

    Info: ``is_success`` (bool, coverage > 0.95), ``coverage`` (float), ``score`` (the reward),
    ``agent_pos`` ``(2,)``, ``block_pose`` ``(3,)`` (x, y, raw angle).

    Reset: ``reset(seed=...)`` samples agent x, y in [50, 450) and block x, y in [100, 400) (integer
    px) and the angle; ``options={"reset_to_state": [agent_x, agent_y, block_x, block_y, angle]}``
    starts from the given state (then, as in Diffusion Policy, one physics step settles it).

    Args:
        obs_type: one of ``OBS_TYPES``.
        render_mode: ``None`` or ``"rgb_array"`` (``render()`` returns a
            ``(render_size, render_size, 3)`` frame with the last commanded position marked).
        image_size: side of the ``pixels`` observation.
        render_size: side of the ``render()`` frame.
        legacy_seeding: reproduce Diffusion Policy's test env (``legacy=True``): initial states from
            ``np.random.RandomState(seed)`` (``legacy_initial_state``), and states applied in its
            legacy order (block position, then angle, which turns the block about its centre of
            gravity: the state's block x, y is where the body origin is *before* that turn). With
            ``False`` (default) the Gymnasium ``np_random`` draws the state and ``reset_to_state``
            puts the block exactly at the given pose: ``reset_to_state(get_state())`` restores it.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": CONTROL_HZ}  # noqa: RUF012

    def __init__(
        self,
        obs_type: str = "state",
        render_mode: str | None = None,
        image_size: int = 96,
        render_size: int = 256,
        legacy_seeding: bool = False,
    ):
        if obs_type not in OBS_TYPES:
            raise ValueError(f"obs_type must be one of {OBS_TYPES}, got {obs_type!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or 'rgb_array', got {render_mode!r} "
                "(Push-T renders without a window)"
            )
        for name, value in (("image_size", image_size), ("render_size", render_size)):
            if int(value) != value or value < 8:
                raise ValueError(f"{name} must be an integer >= 8, got {value!r}")
        self.obs_type = obs_type
        self.render_mode = render_mode
        self.image_size = int(image_size)
        self.render_size = int(render_size)
        self.legacy_seeding = bool(legacy_seeding)

        self.action_space: spaces.Box = spaces.Box(0.0, WORKSPACE, shape=(2,), dtype=np.float32)
        self.observation_space = self._make_observation_space()

        self._goal_rects = t_world_rects(*GOAL_POSE)
        self._last_action: np.ndarray | None = None
        # What rebuilds the simulation exactly when unpickled: the applied initial state and the
        # (clipped) commanded positions since then.
        self._initial_state: np.ndarray | None = None
        self._actions: list[tuple[float, float]] = []
        self._build_space()

    # ------------------------------------------------------------------ spaces and physics setup
    def _make_observation_space(self) -> spaces.Space[Any]:
        state = spaces.Box(
            low=np.zeros(5),
            high=np.array([WORKSPACE] * 4 + [_TWO_PI]),
            dtype=np.float64,
        )
        if self.obs_type == "state":
            return state
        if self.obs_type == "keypoints":
            # A keypoint lies within its body-frame radius of the block's position, which may
            # start near the edge with the T reaching past it (Diffusion Policy's reset range).
            reach = float(np.max(np.hypot(*np.transpose(T_KEYPOINTS))))
            n_block = 2 * len(T_KEYPOINTS)
            low = np.r_[np.full(n_block, -reach), 0.0, 0.0]
            high = np.r_[np.full(n_block, WORKSPACE + reach), WORKSPACE, WORKSPACE]
            return spaces.Box(low, high, dtype=np.float64)
        pixels = spaces.Box(0, 255, shape=(self.image_size, self.image_size, 3), dtype=np.uint8)
        if self.obs_type == "pixels":
            return pixels
        agent_pos = spaces.Box(0.0, WORKSPACE, shape=(2,), dtype=np.float64)
        return spaces.Dict({"pixels": pixels, "agent_pos": agent_pos})

    def _build_space(self) -> None:
        """A fresh pymunk space (:func:`lnmdn_envs.pusht_physics.build_space`)."""
        self._space, self._agent, self._block = build_space()

    def _apply_state(self, state: np.ndarray) -> None:
        apply_state(self._space, self._agent, self._block, state, legacy=self.legacy_seeding)

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start an episode from a sampled state, or from ``options["reset_to_state"]``.

        Args:
            seed: seeds the episode's initial state (legacy mode: ``RandomState(seed)``).
            options: ``{"reset_to_state": (5,) [agent_x, agent_y, block_x, block_y, angle]}``.

        Returns:
            ``(observation, info)``.
        """
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"reset_to_state"}
        if unknown:
            raise ValueError(
                f"unknown reset options {sorted(unknown)}; Push-T accepts 'reset_to_state'"
            )
        state = options.get("reset_to_state")
        if state is not None:
            arr = np.asarray(state)
            if arr.dtype.kind not in "biuf" or arr.shape != (5,):
                raise ValueError(
                    "reset_to_state must be 5 numbers [agent_x, agent_y, block_x, block_y, "
                    f"block_angle], got {state!r:.120}"
                )
            arr = arr.astype(np.float64)
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"reset_to_state must be finite, got {arr.tolist()}")
        elif self.legacy_seeding:
            legacy_seed = seed if seed is not None else int(self.np_random.integers(0, 2**31 - 1))
            arr = legacy_initial_state(legacy_seed)
        else:
            rng = self.np_random
            arr = np.array(
                [
                    rng.integers(50, 450),
                    rng.integers(50, 450),
                    rng.integers(100, 400),
                    rng.integers(100, 400),
                    rng.uniform(-math.pi, math.pi),
                ],
                dtype=np.float64,
            )
        self._build_space()
        self._last_action = None
        self._initial_state = arr
        self._actions = []
        self._apply_state(arr)
        coverage = self._coverage()
        return self._get_obs(), self._get_info(coverage)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Drive the agent towards the commanded position for 0.1 s (10 physics steps).

        Args:
            action: ``(2,)`` commanded agent position in px.

        Returns:
            ``(observation, reward, terminated, truncated, info)``; truncated is always False
            here (the 300-step limit is the registry's TimeLimit).
        """
        a = check_action(action, self.action_space)
        self._last_action = a
        ax = float(a[0])
        ay = float(a[1])
        self._actions.append((ax, ay))
        self._simulate(ax, ay)
        coverage = self._coverage()
        reward = min(max(coverage / SUCCESS_THRESHOLD, 0.0), 1.0)
        terminated = coverage > SUCCESS_THRESHOLD
        return self._get_obs(), reward, terminated, False, self._get_info(coverage)

    def _simulate(self, ax: float, ay: float) -> None:
        """Run the 10 physics steps of one control step towards the commanded ``(ax, ay)``."""
        simulate(self._space, self._agent, ax, ay)

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        """Pickle everything but the pymunk space, which ``__setstate__`` rebuilds by replay.

        pymunk's own Space pickling restores a body's position before its centre of gravity, which
        moves the T on the next step; replaying the episode's commanded positions from its initial
        state instead rebuilds the simulation bit for bit, contact cache included.
        """
        state = self.__dict__.copy()
        for key in ("_space", "_agent", "_block"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._build_space()
        if self._initial_state is not None:
            self._apply_state(self._initial_state)
            for ax, ay in self._actions:
                self._simulate(ax, ay)

    def render(self) -> np.ndarray | None:
        """Return an RGB frame ``(render_size, render_size, 3)`` (``render_mode="rgb_array"``)."""
        if self.render_mode is None:
            gym.logger.warn(
                "PushTEnv.render() called without a render_mode; "
                "pass render_mode='rgb_array' to the constructor"
            )
            return None
        return self._draw(self.render_size, mark_action=True)

    # ------------------------------------------------------------------ state access
    def get_state(self) -> np.ndarray:
        """Return ``(5,)`` float64 ``[agent_x, agent_y, block_x, block_y, block_angle]``.

        The angle is not wrapped. ``reset(options={"reset_to_state": env.get_state()})`` restores
        the poses (with ``legacy_seeding=False``); velocities are not part of the state, as in
        Diffusion Policy (the block keeps none between physics steps, the agent's is reset).
        """
        ax, ay = self._agent.position
        bx, by = self._block.position
        return np.array([ax, ay, bx, by, self._block.angle], dtype=np.float64)

    @property
    def coverage(self) -> float:
        """Current coverage of the goal by the block, in [0, 1]."""
        return self._coverage()

    @property
    def goal_pose(self) -> np.ndarray:
        """The goal pose ``(3,)``: x, y, angle."""
        return np.array(GOAL_POSE, dtype=np.float64)

    def _coverage(self) -> float:
        bx, by = self._block.position
        block_rects = t_world_rects(bx, by, self._block.angle)
        return t_overlap_area(block_rects, self._goal_rects) / T_AREA

    def _block_keypoints(self) -> np.ndarray:
        bx, by = self._block.position
        return np.asarray(body_to_world(T_KEYPOINTS, bx, by, self._block.angle))

    def _get_obs(self) -> Any:
        ax, ay = self._agent.position
        if self.obs_type == "state":
            bx, by = self._block.position
            return np.array([ax, ay, bx, by, self._block.angle % _TWO_PI], dtype=np.float64)
        if self.obs_type == "keypoints":
            return np.concatenate([self._block_keypoints().reshape(-1), [ax, ay]])
        pixels = self._draw(self.image_size, mark_action=False)
        if self.obs_type == "pixels":
            return pixels
        return {"pixels": pixels, "agent_pos": np.array([ax, ay], dtype=np.float64)}

    def _get_info(self, coverage: float) -> dict[str, Any]:
        ax, ay = self._agent.position
        bx, by = self._block.position
        return {
            "is_success": bool(coverage > SUCCESS_THRESHOLD),
            "coverage": coverage,
            "score": min(max(coverage / SUCCESS_THRESHOLD, 0.0), 1.0),
            "agent_pos": np.array([ax, ay], dtype=np.float64),
            "block_pose": np.array([bx, by, self._block.angle], dtype=np.float64),
        }

    # ------------------------------------------------------------------ drawing
    def _draw(self, size: int, mark_action: bool) -> np.ndarray:
        """Draw the scene top-down at ``size`` (:func:`lnmdn_envs.pusht_render.draw_scene`)."""
        bx, by = self._block.position
        return draw_scene(
            size,
            self._goal_rects,
            self._agent.position,
            (bx, by, self._block.angle),
            self._last_action if mark_action else None,
        )
