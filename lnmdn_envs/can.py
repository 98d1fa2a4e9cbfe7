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
so it is the same after a step, a reset or a ``reset_to_state`` into the same state.

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
raises an ImportError naming the extra at construction.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import weakref
from collections.abc import Callable, Mapping
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lnmdn_envs.validation import check_action

__all__ = [
    "CAN_ACTION_DIM",
    "CAN_OBS_DIM",
    "CAN_OBS_KEYS",
    "CAN_OBS_SLICES",
    "CanEnv",
]

logger = logging.getLogger(__name__)

CAN_OBS_DIM = 23
CAN_ACTION_DIM = 7

#: robomimic's low-dim observation keys for Can, in robomimic's (and Diffusion Policy's) order.
CAN_OBS_KEYS: tuple[str, ...] = (
    "object",
    "robot0_eef_pos",
    "robot0_eef_quat",
    "robot0_gripper_qpos",
)

#: Named ranges of the 23-D observation: the four robomimic keys, then the parts of ``object``.
CAN_OBS_SLICES: dict[str, slice] = {
    "object": slice(0, 14),
    "robot0_eef_pos": slice(14, 17),
    "robot0_eef_quat": slice(17, 21),
    "robot0_gripper_qpos": slice(21, 23),
    "Can_pos": slice(0, 3),
    "Can_quat": slice(3, 7),
    "Can_to_robot0_eef_pos": slice(7, 10),
    "Can_to_robot0_eef_quat": slice(10, 14),
}

_ROBOSUITE_LOGGER = "robosuite_logs"
# What robosuite's controllers remember of the reset state (the OSC nullspace target).
_CONTROLLER_INITIALS = ("initial_joint", "initial_ref_pos", "initial_ref_ori_mat")
_NEVER = 10**9  # robosuite's own horizon: never reached, our TimeLimit truncates first
_RENDER_HELP = (
    "Rendering Can needs an OpenGL backend for MuJoCo's offscreen renderer, chosen by MUJOCO_GL "
    "before mujoco is imported: MUJOCO_GL=egl (needs libEGL: apt-get install libegl1) or "
    "MUJOCO_GL=osmesa (needs libOSMesa: apt-get install libosmesa6); MUJOCO_GL=glfw needs a "
    "display."
)


class _QuietRobosuite(logging.Filter):
    """Drop robosuite's INFO/WARNING chatter (macro-file, controller-config and model warnings).

    robosuite resets its logger's level when it is imported, so a filter (which it leaves alone)
    is what keeps its records below ``level`` out of the user's console.
    """

    def __init__(self, level: int = logging.ERROR):
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level


def _missing_extra(err: Exception | str) -> ImportError:
    return ImportError(
        f"lnmdn/Can-v0 needs robosuite, part of the 'mujoco' extra ({err}). "
        "Install it with: pip install -c constraints.txt -e '.[mujoco]'"
    )


def _check_robosuite_installed() -> None:
    """Raise the extra-naming ImportError now if robosuite is absent (without importing it)."""
    if importlib.util.find_spec("robosuite") is None:
        raise _missing_extra("No module named 'robosuite'")


def _import_robosuite() -> Any:
    """Import robosuite quietly, or raise an ImportError naming the ``mujoco`` extra."""
    rs_logger = logging.getLogger(_ROBOSUITE_LOGGER)
    if not any(isinstance(f, _QuietRobosuite) for f in rs_logger.filters):
        rs_logger.addFilter(_QuietRobosuite())
    try:
        import robosuite
        from robosuite.controllers import load_composite_controller_config  # noqa: F401
    except ImportError as err:
        raise _missing_extra(err) from err
    return robosuite


def _renderer_exit_hook(env_ref: weakref.ReferenceType[CanEnv]) -> Callable[[], None]:
    def hook() -> None:
        env = env_ref()
        if env is not None and env._renderer is not None:
            env._renderer.close()
            env._renderer = None

    return hook


def _quat_xyzw(q_wxyz: np.ndarray) -> np.ndarray:
    return np.array([q_wxyz[1], q_wxyz[2], q_wxyz[3], q_wxyz[0]])


def _quat_mul_wxyz(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ]
    )


def _rotate_inv(q_wxyz: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate ``v`` by the inverse of the unit quaternion ``q`` (world vector into the frame)."""
    w, x, y, z = q_wxyz
    rot = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
    return rot.T @ v


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
        _check_robosuite_installed()  # fail early, naming the extra; import on first reset
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
        robosuite = _import_robosuite()
        from robosuite.controllers import load_composite_controller_config

        config = load_composite_controller_config(controller="BASIC", robot="Panda")
        # Keep the Panda's arm part only: the other parts are for other robots and warn.
        config["body_parts"] = {"right": config["body_parts"]["right"]}
        kwargs: dict[str, Any] = {
            "robots": "Panda",
            "controller_configs": config,
            "has_renderer": False,
            "has_offscreen_renderer": False,
            "use_camera_obs": False,
            "use_object_obs": True,
            "control_freq": 20,
            "horizon": _NEVER,
            "ignore_done": True,
            "hard_reset": False,  # reset the sim in place instead of recompiling the model
            "reward_shaping": self.reward_shaping,
            "renderer": "mujoco",
            "seed": None,
        }
        kwargs.update(self.robosuite_kwargs)
        env = robosuite.make("PickPlaceCan", **kwargs)
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
            self._set_state(state)
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
        import mujoco

        model = self._rs.sim.model._model
        if self.camera_name not in [model.camera(i).name for i in range(model.ncam)]:
            names = [model.camera(i).name for i in range(model.ncam)]
            raise ValueError(
                f"camera_name {self.camera_name!r} is not in the scene; cameras: {names}"
            )
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.render_width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.render_height)
        try:
            return mujoco.Renderer(model, height=self.render_height, width=self.render_width)
        except Exception as err:  # GL failures surface as AttributeError, FatalError, ...
            raise RuntimeError(
                f"{_RENDER_HELP} MUJOCO_GL is {os.environ.get('MUJOCO_GL')!r} (robosuite sets "
                "'egl' on import unless it is 'osmesa' or 'glx'); "
                f"the renderer failed with {type(err).__name__}: {err}"
            ) from err

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

    def _set_state(self, state: np.ndarray) -> None:
        rs = self._rs
        rs.sim.set_state_from_flattened(state)
        # robosuite's controllers remember the reset state (the OSC nullspace target, and
        # kinematics cached while the fingers were still at qpos0): rebuild them exactly as
        # robot.reset() does when it lands in this arm pose, so that replaying an episode from
        # its first state reproduces it bit for bit (robomimic #230 is what happens otherwise).
        qpos, qpos0 = rs.sim.data._data.qpos, rs.sim.model._model.qpos0
        for robot in rs.robots:
            fingers = np.concatenate(
                [robot._ref_gripper_joint_pos_indexes[arm] for arm in robot.arms]
            ).astype(int)
            saved = qpos[fingers].copy()
            qpos[fingers] = qpos0[fingers]
            robot._load_controller()  # runs sim.forward() and caches the kinematics
            robot.composite_controller.update_state()
            robot.composite_controller.reset()
            qpos[fingers] = saved
        rs.sim.forward()

    def _obs(self) -> np.ndarray:
        data = self._rs.sim.data._data
        can_pos = data.xpos[self._can_body]
        can_q = data.xquat[self._can_body]  # wxyz
        eef_pos = data.site_xpos[self._eef_site]
        eef_q = data.xquat[self._eef_body]  # wxyz, the hand body (robomimic's eef_quat)
        eef_q_inv = eef_q * np.array([1.0, -1.0, -1.0, -1.0])
        rel_pos = _rotate_inv(eef_q, can_pos - eef_pos)
        rel_q = _quat_mul_wxyz(eef_q_inv, can_q)
        if rel_q[0] < 0:  # robosuite's mat2quat returns w >= 0
            rel_q = -rel_q
        obs = np.concatenate(
            [
                can_pos,
                _quat_xyzw(can_q),
                rel_pos,
                _quat_xyzw(rel_q),
                eef_pos,
                _quat_xyzw(eef_q),
                data.qpos[self._gripper_qpos_idx],
            ]
        )
        return obs.astype(np.float32)

    # ------------------------------------------------------------------ pickling
    def _hidden_state(self) -> dict[str, Any]:
        """Simulation state outside ``[time, qpos, qvel]``, carried by pickling.

        The solver's warm start, the gripper's command ramp (robosuite's
        ``gripper.current_action``) and what the controllers remember of the reset state.
        """
        robot = self._rs.robots[0]
        return {
            "qacc_warmstart": self._rs.sim.data._data.qacc_warmstart.copy(),
            "gripper_current_action": {
                arm: np.array(robot.gripper[arm].current_action) for arm in robot.arms
            },
            "controllers": {
                name: {k: np.array(getattr(c, k)) for k in _CONTROLLER_INITIALS if hasattr(c, k)}
                for name, c in robot.composite_controller.part_controllers.items()
            },
        }

    def _set_hidden_state(self, hidden: dict[str, Any]) -> None:
        robot = self._rs.robots[0]
        self._rs.sim.data._data.qacc_warmstart[:] = hidden["qacc_warmstart"]
        for arm, value in hidden["gripper_current_action"].items():
            robot.gripper[arm].current_action = np.array(value)
        for name, initials in hidden["controllers"].items():
            controller = robot.composite_controller.part_controllers[name]
            for key, value in initials.items():
                setattr(controller, key, np.array(value))
            controller.new_update = True  # as between two steps: refresh kinematics on next use

    def __getstate__(self) -> dict[str, Any]:
        running = not self._needs_reset and self._rs is not None
        return {
            "kwargs": self._kwargs,
            "sim_state": self.get_state() if running else None,
            "hidden_state": self._hidden_state() if running else None,
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
            self._set_state(state["sim_state"])
            self._set_hidden_state(state["hidden_state"])
            self._needs_reset = False
