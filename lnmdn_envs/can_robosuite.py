"""robosuite behind lnmdn/Can-v0: its import, the model, the renderer, the controllers' state.

robosuite belongs to the ``mujoco`` extra: :func:`check_robosuite_installed` fails early with an
ImportError naming it (without importing robosuite), and :func:`import_robosuite` imports it with
its INFO/WARNING chatter filtered out. :func:`make_pick_place_can` builds robomimic's Can set-up
(Panda, ``BASIC`` composite controller: OSC_POSE deltas at 20 Hz, no cameras);
:func:`make_renderer` makes MuJoCo's offscreen renderer, with a message naming ``MUJOCO_GL`` when
no GL backend works.

The simulator state beyond ``[time, qpos, qvel]``: :func:`set_sim_state` restores a flattened
state and rebuilds the controllers as a reset into that arm pose would (robomimic's ``reset_to``
plus what it misses), and :func:`hidden_state` / :func:`set_hidden_state` carry the solver's warm
start, the gripper's command ramp and the controllers' reset targets through pickling.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "check_robosuite_installed",
    "hidden_state",
    "import_robosuite",
    "make_pick_place_can",
    "make_renderer",
    "missing_extra",
    "set_hidden_state",
    "set_sim_state",
]

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


def missing_extra(err: Exception | str) -> ImportError:
    """The ImportError of a missing robosuite: it names the ``mujoco`` extra and how to install."""
    return ImportError(
        f"lnmdn/Can-v0 needs robosuite, part of the 'mujoco' extra ({err}). "
        "Install it with: pip install -c constraints.txt -e '.[mujoco]'"
    )


def check_robosuite_installed() -> None:
    """Raise the extra-naming ImportError now if robosuite is absent (without importing it)."""
    if importlib.util.find_spec("robosuite") is None:
        raise missing_extra("No module named 'robosuite'")


def import_robosuite() -> Any:
    """Import robosuite quietly, or raise an ImportError naming the ``mujoco`` extra."""
    rs_logger = logging.getLogger(_ROBOSUITE_LOGGER)
    if not any(isinstance(f, _QuietRobosuite) for f in rs_logger.filters):
        rs_logger.addFilter(_QuietRobosuite())
    try:
        import robosuite
        from robosuite.controllers import load_composite_controller_config  # noqa: F401
    except ImportError as err:
        raise missing_extra(err) from err
    return robosuite


def make_pick_place_can(reward_shaping: bool, robosuite_kwargs: Mapping[str, Any]) -> Any:
    """The robosuite ``PickPlaceCan`` env of robomimic's Can datasets.

    Panda with its ``BASIC`` composite controller (arm part only), no renderer and no camera
    observations, 20 Hz control, a horizon that never ends an episode, the sim reset in place.
    ``robosuite_kwargs`` override these keyword arguments of ``robosuite.make``.
    """
    robosuite = import_robosuite()
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
        "reward_shaping": reward_shaping,
        "renderer": "mujoco",
        "seed": None,
    }
    kwargs.update(robosuite_kwargs)
    return robosuite.make("PickPlaceCan", **kwargs)


def make_renderer(model: Any, camera_name: str, width: int, height: int) -> Any:
    """MuJoCo's offscreen renderer of ``model`` (``MjModel``) for ``camera_name`` frames.

    Raises:
        ValueError: no such camera in the scene (the message lists the cameras).
        RuntimeError: no OpenGL backend works; the message says how to choose one (``MUJOCO_GL``).
    """
    import mujoco

    if camera_name not in [model.camera(i).name for i in range(model.ncam)]:
        names = [model.camera(i).name for i in range(model.ncam)]
        raise ValueError(f"camera_name {camera_name!r} is not in the scene; cameras: {names}")
    model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
    model.vis.global_.offheight = max(model.vis.global_.offheight, height)
    try:
        return mujoco.Renderer(model, height=height, width=width)
    except Exception as err:  # GL failures surface as AttributeError, FatalError, ...
        raise RuntimeError(
            f"{_RENDER_HELP} MUJOCO_GL is {os.environ.get('MUJOCO_GL')!r} (robosuite sets "
            "'egl' on import unless it is 'osmesa' or 'glx'); "
            f"the renderer failed with {type(err).__name__}: {err}"
        ) from err


def set_sim_state(rs: Any, state: np.ndarray) -> None:
    """Restore the flattened MuJoCo state ``[time, qpos, qvel]`` into the robosuite env ``rs``."""
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


def hidden_state(rs: Any) -> dict[str, Any]:
    """Simulation state outside ``[time, qpos, qvel]``, carried by pickling.

    The solver's warm start, the gripper's command ramp (robosuite's
    ``gripper.current_action``) and what the controllers remember of the reset state.
    """
    robot = rs.robots[0]
    return {
        "qacc_warmstart": rs.sim.data._data.qacc_warmstart.copy(),
        "gripper_current_action": {
            arm: np.array(robot.gripper[arm].current_action) for arm in robot.arms
        },
        "controllers": {
            name: {k: np.array(getattr(c, k)) for k in _CONTROLLER_INITIALS if hasattr(c, k)}
            for name, c in robot.composite_controller.part_controllers.items()
        },
    }


def set_hidden_state(rs: Any, hidden: dict[str, Any]) -> None:
    """Put back what :func:`hidden_state` took."""
    robot = rs.robots[0]
    rs.sim.data._data.qacc_warmstart[:] = hidden["qacc_warmstart"]
    for arm, value in hidden["gripper_current_action"].items():
        robot.gripper[arm].current_action = np.array(value)
    for name, initials in hidden["controllers"].items():
        controller = robot.composite_controller.part_controllers[name]
        for key, value in initials.items():
            setattr(controller, key, np.array(value))
        controller.new_update = True  # as between two steps: refresh kinematics on next use
