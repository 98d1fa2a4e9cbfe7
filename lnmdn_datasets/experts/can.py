"""Scripted pick-and-place expert for ``lnmdn/Can-v0`` over OSC_POSE delta actions.

A phase machine with privileged state (the can's and the gripper's poses from the observation,
the target compartment from ``env.unwrapped.target_position``)::

    approach -> descend -> grasp -> lift -> carry -> lower -> release -> retreat
        ^                             |        |
        +---- can slipped / missed ---+--------+

Position commands are proportional: ``a[0:3] = clip(gain * (target - eef) / 0.05, +-speed)``
(0.05 m is the controller's per-step scale); orientation commands hold the gripper's reset
orientation. Each episode draws its own variation from ``rng``: speed and gain, approach and
grasp offsets, hover / carry heights, the drop point inside the compartment, pauses, and
Gaussian noise on the position commands, so the demonstrations are not all alike.

Measured with :func:`measure_can_expert` (see the README, section ``envs-can``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from lnmdn_datasets.experts import rollout_expert
from lnmdn_envs.can import CAN_OBS_SLICES

__all__ = [
    "CanExpert",
    "measure_can_expert",
]

logger = logging.getLogger(__name__)

_POS_SCALE = 0.05  # OSC_POSE output_max for position (m per unit action)
_ORI_SCALE = 0.5  # OSC_POSE output_max for orientation (rad per unit action)
_OPEN, _CLOSE = -1.0, 1.0

_EEF = CAN_OBS_SLICES["robot0_eef_pos"]
_EEF_Q = CAN_OBS_SLICES["robot0_eef_quat"]
_CAN = CAN_OBS_SLICES["Can_pos"]
_GRIP = CAN_OBS_SLICES["robot0_gripper_qpos"]


def _quat_to_mat_xyzw(q: np.ndarray) -> np.ndarray:
    x, y, z, w = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def _rotation_error(desired: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Axis-angle vector (world frame) rotating ``current`` onto ``desired`` (3x3 matrices)."""
    r = desired @ current.T
    angle = np.arccos(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0))
    if angle < 1e-6:
        return np.zeros(3)
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    return axis / (2.0 * np.sin(angle)) * angle


@dataclass
class _Style:
    """One episode's variation, drawn in :meth:`CanExpert.reset`."""

    speed: float  # max |position action|
    gain: float  # proportional gain on the position error
    noise: float  # std of Gaussian noise on position actions
    grasp_offset: np.ndarray  # (3,) eef target relative to the can centre at grasp
    hover: float  # approach height above the grasp point (m)
    carry_z: float  # eef height while carrying (m, world)
    place_offset: np.ndarray  # (2,) drop point relative to the compartment centre
    place_z: float  # eef height above the bin floor at release (m)
    close_steps: int
    open_steps: int


class CanExpert:
    """Pick the can, carry it over its compartment, lower and release it (Expert protocol).

    Args:
        noise_scale: multiplies the per-episode action noise (0 gives noise-free demos).
        vary: draw per-episode variation from ``rng``; ``False`` uses the nominal style.
    """

    def __init__(self, noise_scale: float = 1.0, vary: bool = True):
        if noise_scale < 0:
            raise ValueError(f"noise_scale must be >= 0, got {noise_scale=}")
        self.noise_scale = float(noise_scale)
        self.vary = bool(vary)
        self._rng = np.random.default_rng(0)
        self.phase = "approach"
        self.retries = 0

    def reset(self, env: gym.Env[Any, Any], rng: np.random.Generator) -> None:
        """Start an episode: draw its style and read the target compartment."""
        self._rng = rng
        u = (
            rng.uniform
            if self.vary
            else (lambda lo, hi, size=None: np.full(size or (), (lo + hi) / 2))
        )
        self.style = _Style(
            speed=float(u(0.6, 1.0)),
            gain=float(u(1.0, 1.6)),
            noise=float(u(0.0, 0.1)) * self.noise_scale,
            grasp_offset=np.array([u(-0.006, 0.006), u(-0.006, 0.006), u(-0.005, 0.01)]),
            hover=float(u(0.06, 0.12)),
            carry_z=float(u(0.95, 1.02)),
            place_offset=np.array([u(-0.07, -0.03), u(-0.06, 0.0)]),
            place_z=float(u(0.09, 0.12)),
            close_steps=int(np.round(u(8, 12))),
            open_steps=int(np.round(u(4, 7))),
        )
        self.target = np.asarray(env.unwrapped.target_position, dtype=np.float64)  # type: ignore[attr-defined]
        self.phase = "approach"
        self.phase_steps = 0
        self.retries = 0
        self._ori: np.ndarray | None = None

    # ------------------------------------------------------------------ control
    def _move(self, eef: np.ndarray, target: np.ndarray, speed: float | None = None) -> np.ndarray:
        s = self.style
        cmd = s.gain * (target - eef) / _POS_SCALE
        cmd = cmd + self._rng.normal(0.0, s.noise, 3) if s.noise > 0 else cmd
        lim = s.speed if speed is None else speed
        return np.clip(cmd, -lim, lim)

    def _set(self, phase: str) -> None:
        logger.debug("CanExpert: %s -> %s", self.phase, phase)
        self.phase = phase
        self.phase_steps = 0

    def act(self, env: gym.Env[Any, Any], obs: np.ndarray) -> np.ndarray:
        """Return the action ``(7,)`` for the current observation ``(23,)``."""
        obs = np.asarray(obs, dtype=np.float64)
        eef, can = obs[_EEF], obs[_CAN]
        rot = _quat_to_mat_xyzw(obs[_EEF_Q])
        if self._ori is None:
            self._ori = rot
        s = self.style
        grasp_point = can + s.grasp_offset
        held = np.linalg.norm(can - eef) < 0.03 and obs[_GRIP][0] - obs[_GRIP][1] > 0.01
        self.phase_steps += 1
        gripper = _OPEN
        speed = None

        if self.phase == "approach":
            target = grasp_point + np.array([0.0, 0.0, s.hover])
            if eef[2] < target[2] - 0.02 and np.linalg.norm((eef - target)[:2]) > 0.02:
                target = np.array([eef[0], eef[1], target[2]])  # rise first, then cross
            if np.linalg.norm((eef - target)[:2]) < 0.01 and abs(eef[2] - target[2]) < 0.025:
                self._set("descend")
        if self.phase == "descend":
            target = grasp_point
            speed = min(s.speed, 0.7)
            if np.linalg.norm(eef - target) < 0.008 or self.phase_steps > 40:
                self._set("grasp")
        if self.phase == "grasp":
            target, gripper = grasp_point, _CLOSE
            if self.phase_steps >= s.close_steps:
                self._set("lift")
        if self.phase == "lift":
            gripper = _CLOSE
            target = np.array([eef[0], eef[1], s.carry_z])
            if not held and self.phase_steps > 3:
                self._retry()
                return self.act(env, obs)
            if eef[2] > s.carry_z - 0.04:
                self._set("carry")
        if self.phase == "carry":
            gripper = _CLOSE
            drop = self.target[:2] + s.place_offset
            target = np.array([drop[0], drop[1], s.carry_z])
            if not held:
                self._retry()
                return self.act(env, obs)
            if np.linalg.norm((eef - target)[:2]) < 0.015:
                self._set("lower")
        if self.phase == "lower":
            gripper = _CLOSE
            drop = self.target[:2] + s.place_offset
            target = np.array([drop[0], drop[1], self.target[2] + s.place_z])
            speed = min(s.speed, 0.6)
            if abs(eef[2] - target[2]) < 0.01 or self.phase_steps > 40:
                self._set("release")
        if self.phase == "release":
            target, gripper = eef.copy(), _OPEN
            if self.phase_steps >= s.open_steps:
                self._set("retreat")
        if self.phase == "retreat":
            target = np.array([eef[0], eef[1], self.target[2] + s.place_z + 0.12])

        action = np.zeros(7)
        action[:3] = self._move(eef, target, speed)
        action[3:6] = np.clip(2.0 * _rotation_error(self._ori, rot) / _ORI_SCALE, -1.0, 1.0)
        action[6] = gripper
        return action.astype(np.float32)

    def _retry(self) -> None:
        self.retries += 1
        self._set("approach")


def measure_can_expert(
    n_episodes: int = 200, seed: int = 0, env: gym.Env[Any, Any] | None = None
) -> dict[str, Any]:
    """Measure :class:`CanExpert` over seeded episodes of ``lnmdn/Can-v0`` (400-step limit).

    Episode ``i`` resets with seed ``seed + i`` and draws its variation from
    ``np.random.default_rng([seed, i])``.

    Args:
        n_episodes: number of episodes.
        seed: first reset seed.
        env: a single-step Can env to reuse (default: ``make_task_env("lnmdn/Can-v0")``).

    Returns:
        ``{"success_rate", "mean_length", "mean_length_success", "n_episodes", "wall_s",
        "failed_seeds"}``.
    """
    from tqdm.auto import tqdm

    from lnmdn_envs import make_task_env

    env = make_task_env("lnmdn/Can-v0") if env is None else env
    expert = CanExpert()
    start = time.perf_counter()
    lengths, successes, failed = [], [], []
    for i in tqdm(range(n_episodes), desc="Can expert", unit="ep", disable=None):
        ep = rollout_expert(env, expert, seed + i, np.random.default_rng([seed, i]))
        lengths.append(len(ep.actions))
        successes.append(ep.success)
        if not ep.success:
            failed.append(seed + i)
    ok = [n for n, s in zip(lengths, successes, strict=True) if s]
    return {
        "success_rate": float(np.mean(successes)),
        "mean_length": float(np.mean(lengths)),
        "mean_length_success": float(np.mean(ok)) if ok else float("nan"),
        "n_episodes": n_episodes,
        "wall_s": time.perf_counter() - start,
        "failed_seeds": failed,
    }
