"""robomimic's Can task: robosuite 1.5 ``PickPlaceCan`` with robomimic's 23-D low-dim observation.

A Panda arm picks a soda can from the left bin and places it in its compartment of the right
bin. Control is robosuite's OSC_POSE in delta mode at 20 Hz (the ``BASIC`` composite controller
of the Panda), as in robomimic's Can datasets::

    action (Da = 7), each in [-1, 1]:
        [0:3]  eef position delta, scaled to +-0.05 m per step (robot base frame = world axes)
        [3:6]  eef orientation delta (axis-angle), scaled to +-0.5 rad per step
        [6]    gripper: -1 open, +1 close

    observation (Do = 23, float32), robomimic's low-dim keys in robomimic's order:
        [0:14]   object: Can_pos (3), Can_quat (4, xyzw),
                         Can_to_robot0_eef_pos (3), Can_to_robot0_eef_quat (4, xyzw)
                         (the can's pose in the end-effector frame)
        [14:17]  robot0_eef_pos      (world frame, m)
        [17:21]  robot0_eef_quat     (xyzw, of the hand body, as robosuite <= 1.4 and robomimic)
        [21:23]  robot0_gripper_qpos (finger joints, m)

``CAN_OBS_SLICES`` names these ranges. The observation is computed from the simulator state alone,
so it is the same after a step, a reset or a ``reset_to_state`` into the same state
(:mod:`lnmdn_envs.can_observation`).

Episodes: ``info["is_success"]`` is the task's own ``_check_success()`` (the can inside its bin
compartment with the gripper away from it); ``info["score"]`` is that success as 0/1; the reward
is robosuite's (sparse: 1.0 on success, or its staged reward with ``reward_shaping=True``). An
episode terminates on success (``terminate_on_success=True``, as robomimic's rollouts stop), and
is truncated by the registry's ``TimeLimit`` at 400 steps; robosuite's own horizon never ends it.

Determinism: ``reset(seed=s)`` seeds robosuite's placement sampler and the arm's initial-joint
noise from our ``np_random``, never from the global RNG. ``reset(options={"reset_to_state": s})``
restores a flattened MuJoCo state ``[time, qpos, qvel]`` (``get_state()``, robomimic's ``states``)
the way robomimic's ``reset_to`` does (a full reset, then ``sim.set_state_from_flattened`` and
``sim.forward``) and also rebuilds robosuite's controllers as a reset into that arm pose would
(their nullspace target and cached kinematics are not part of the MuJoCo state), so replaying an
episode's actions from its first state reproduces it bit for bit. From a mid-episode state the
simulator is exact but the controllers start afresh (the gripper's command ramp from zero, the
nullspace target at the current pose); pickling carries those too.

robosuite (the ``mujoco`` extra) is imported and the simulator built on the first ``reset``, so
``gym.make``, ``make_vec`` and pickling an unreset env cost almost nothing; a missing robosuite
raises an ImportError naming the extra at construction. What touches robosuite itself (its
import, the ``PickPlaceCan`` model, the renderer, the controllers' state) is
:mod:`lnmdn_envs.can_robosuite`.
"""

from __future__ import annotations

import atexit
import weakref
from collections.abc import Callable, Mapping
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lnmdn_envs.can_observation import CAN_OBS_DIM, CAN_OBS_KEYS, CAN_OBS_SLICES, can_observation
from lnmdn_envs.can_robosuite import (
    check_robosuite_installed,
    hidden_state,
    make_pick_place_can,
    make_renderer,
    set_hidden_state,
    set_sim_state,
)
from lnmdn_envs.validation import check_action

__all__ = [
    "CAN_ACTION_DIM",
    "CAN_OBS_DIM",
    "CAN_OBS_KEYS",
    "CAN_OBS_SLICES",
    "CanEnv",
]

CAN_ACTION_DIM = 7


def _renderer_exit_hook(env_ref: weakref.ReferenceType[CanEnv]) -> Callable[[], None]:
    def hook() -> None:
        env = env_ref()
        if env is not None and env._renderer is not None:
            env._renderer.close()
            env._renderer = None

    return hook


class CanEnv(gym.Env[np.ndarray, np.ndarray]):
    """robomimic Can (robosuite ``PickPlaceCan``, Panda, OSC_POSE deltas) as a Gymnasium env.

    Observation ``(Do,) = (23,)`` float32 (layout in :data:`CAN_OBS_SLICES`); action
    ``(Da,) = (7,)`` in [-1, 1], gripper last. Use it through ``gym.make("lnmdn/Can-v0")``
    (chunked, 400-step limit) or ``lnmdn_envs.make_task_env("lnmdn/Can-v0")`` (single step).

    Args:
        render_mode: ``None`` or ``"rgb_array"`` (MuJoCo's offscreen renderer; needs a GL backend,
            see ``MUJOCO_GL``). No camera is rendered unless ``render()`` is called.
        terminate_on_success: end the episode (``terminated=True``) at the first successful step,
            as robomimic's rollouts do. With ``False`` episodes run to the time limit.
        reward_shaping: robosuite's staged dense reward instead of the sparse success reward.
        camera_name: robosuite camera used by ``render()`` (``"agentview"``, ``"frontview"``,
            ``"birdview"``, ``"robot0_eye_in_hand"``, ...).
        render_width: width of rendered frames in pixels.
        render_height: height of rendered frames in pixels.
        robosuite_kwargs: extra keyword arguments for ``robosuite.make("PickPlaceCan", ...)``
            (for example ``{"lite_physics": False}``); they override the defaults above.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}  # noqa: RUF012

    def __init__(
        self,
        render_mode: str | None = None,
        terminate_on_success: bool = True,
        reward_shaping: bool = False,
        camera_name: str = "agentview",
        render_width: int = 256,
        render_height: int = 256,
        robosuite_kwargs: Mapping[str, Any] | None = None,
    ):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, "
                f"got {render_mode!r}"
            )
        for name, value in (("render_width", render_width), ("render_height", render_height)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self._kwargs: dict[str, Any] = {
            "render_mode": render_mode,
            "terminate_on_success": bool(terminate_on_success),
            "reward_shaping": bool(reward_shaping),
            "camera_name": str(camera_name),
            "render_width": int(render_width),
            "render_height": int(render_height),
            "robosuite_kwargs": dict(robosuite_kwargs or {}),
        }
        self.render_mode = render_mode
        self.terminate_on_success = bool(terminate_on_success)
        self.reward_shaping = bool(reward_shaping)
        self.camera_name = str(camera_name)
        self.render_width = int(render_width)
        self.render_height = int(render_height)
        self.robosuite_kwargs = dict(robosuite_kwargs or {})
        self.observation_space = spaces.Box(-np.inf, np.inf, (CAN_OBS_DIM,), np.float32)
        self.action_space: spaces.Box = spaces.Box(-1.0, 1.0, (CAN_ACTION_DIM,), np.float32)
        check_robosuite_installed()  # fail early, naming the extra; import on first reset
        self._rs: Any = None  # the robosuite env, built on first use
        self._renderer: Any = None
        self._needs_reset = True

    # ------------------------------------------------------------------ simulator
    @property
    def robosuite_env(self) -> Any:
        """The wrapped robosuite ``PickPlaceCan`` (built on first access)."""
        if self._rs is None:
            self._rs = self._build()
        return self._rs

    def _build(self) -> Any:
        env = make_pick_place_can(self.reward_shaping, self.robosuite_kwargs)
        import mujoco

        self._mujoco = mujoco
        robot = env.robots[0]
        arm = robot.arms[0]
        self._can_body = env.obj_body_id["Can"]
        self._eef_site = robot.eef_site_id[arm]
        self._eef_body = env.sim.model.body_name2id(robot.robot_model.eef_name[arm])
        self._gripper_qpos_idx = np.asarray(robot._ref_gripper_joint_pos_indexes[arm])
        self._state_size = env.sim.get_state().flatten().shape[0]
        return env

    @property
    def target_position(self) -> np.ndarray:
        """World position ``(3,)`` of the centre of the can's compartment in the target bin.

        Privileged information for scripted experts (it is not part of the observation); the
        z coordinate is the bin floor.
        """
        rs = self.robosuite_env
        return np.array(rs.target_bin_placements[rs.object_to_id["can"]], dtype=np.float64)

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode.

        Args:
            seed: seeds the episode's initial state (can placement, arm joint noise).
            options: ``{"reset_to_state": state}`` restores a flattened MuJoCo state
                ``[time, qpos, qvel]`` (as returned by :meth:`get_state`) after the reset.

        Returns:
            ``(obs (23,), info)`` with ``info["is_success"]`` and ``info["score"]``.
        """
        super().reset(seed=seed)
        options = dict(options or {})
        state = options.pop("reset_to_state", None)
        if options:
            raise ValueError(
                f"unknown reset options {sorted(options)}; CanEnv accepts 'reset_to_state'"
            )
        rs = self.robosuite_env
        if state is not None:
            state = self._check_state(state)
        # robosuite's placement sampler and the robot's joint noise draw from env.rng.
        rng = np.random.default_rng(int(self.np_random.integers(0, 2**63 - 1)))
        rs.rng = rng
        for sampler in rs.placement_initializer.samplers.values():
            sampler.rng = rng
        rs.reset()
        if state is not None:
            set_sim_state(self._rs, state)
        self._needs_reset = False
        success = bool(rs._check_success())
        return self._obs(), {"is_success": success, "score": float(success)}

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Apply one 20 Hz OSC_POSE delta command ``(7,)`` (clipped to [-1, 1])."""
        if self._needs_reset:
            raise RuntimeError("CanEnv.step called before reset(); call env.reset() first")
        act = check_action(action, self.action_space)
        _, reward, _, _ = self._rs.step(act)
        # mj_step leaves body/site poses one physics substep behind qpos; recompute them so the
        # observation and the success check are functions of get_state() (as after reset_to).
        self._mujoco.mj_kinematics(self._rs.sim.model._model, self._rs.sim.data._data)
        success = bool(self._rs._check_success())
        terminated = success and self.terminate_on_success
        info = {"is_success": success, "score": float(success)}
        return self._obs(), float(reward), terminated, False, info

    def render(self) -> np.ndarray | None:
        """Return an ``(render_height, render_width, 3)`` uint8 frame from ``camera_name``."""
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without a render_mode; pass render_mode='rgb_array' to CanEnv"
            )
            return None
        if self._needs_reset:
            raise RuntimeError("CanEnv.render called before reset(); call env.reset() first")
        if self._renderer is None:
            self._renderer = self._make_renderer()
            # Free the GL context at exit before MuJoCo's own atexit hook (registered while the
            # renderer was made, so it runs after this one) terminates the EGL display.
            self._exit_hook = _renderer_exit_hook(weakref.ref(self))
            atexit.register(self._exit_hook)
        self._renderer.update_scene(self._rs.sim.data._data, camera=self.camera_name)
        return np.asarray(self._renderer.render(), dtype=np.uint8)

    def _make_renderer(self) -> Any:
        return make_renderer(
            self._rs.sim.model._model, self.camera_name, self.render_width, self.render_height
        )

    def close(self) -> None:
        """Free the renderer and the simulator."""
        if self._renderer is not None:
            atexit.unregister(self._exit_hook)
            self._renderer.close()
            self._renderer = None
        if self._rs is not None:
            self._rs.close()
            self._rs = None
        self._needs_reset = True

    # ------------------------------------------------------------------ state
    def get_state(self) -> np.ndarray:
        """Return the flattened MuJoCo state ``[time, qpos, qvel]``, shape (71,).

        This is what robomimic stores as ``states`` and what ``reset_to_state`` takes.
        """
        if self._needs_reset:
            raise RuntimeError("CanEnv.get_state called before reset(); call env.reset() first")
        return np.asarray(self._rs.sim.get_state().flatten(), dtype=np.float64)

    def _check_state(self, state: Any) -> np.ndarray:
        arr = np.asarray(state)
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"reset_to_state must be a numeric array, got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
        if arr.shape != (self._state_size,):
            raise ValueError(
                f"reset_to_state must be a flattened MuJoCo state [time, qpos, qvel] of shape "
                f"({self._state_size},) as returned by get_state(), got shape {np.shape(state)}"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError("reset_to_state must be finite")
        return arr

    def _obs(self) -> np.ndarray:
        return can_observation(
            self._rs.sim.data._data,
            self._can_body,
            self._eef_site,
            self._eef_body,
            self._gripper_qpos_idx,
        )

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        running = not self._needs_reset and self._rs is not None
        return {
            "kwargs": self._kwargs,
            "sim_state": self.get_state() if running else None,
            "hidden_state": hidden_state(self._rs) if running else None,
            "np_random": None if self._np_random is None else self.np_random.bit_generator.state,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["kwargs"])  # type: ignore[misc]
        if state["np_random"] is not None:
            rng = np.random.Generator(np.random.PCG64())
            rng.bit_generator.state = state["np_random"]
            self._np_random = rng
        if state["sim_state"] is not None:
            rs = self.robosuite_env
            rs.reset()
            set_sim_state(rs, state["sim_state"])
            set_hidden_state(rs, state["hidden_state"])
            self._needs_reset = False
