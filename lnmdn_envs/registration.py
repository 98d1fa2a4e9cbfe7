"""The registered task ids and the factory that builds their chunked envs.

``gym.make(env_id)`` returns ``MultiStep(TimeLimit(task_env))``: observation ``(To, Do)``, action
``(Ta, Da)``. The time limit counts single env steps (it sits inside the chunking), so a Push-T
episode is 300 steps whatever Ta is. ``make_task_env(env_id)`` returns the single-step env.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from gymnasium.wrappers import TimeLimit

from lnmdn_envs.wrappers import MultiStep

__all__ = ["TASKS", "TaskSpec", "make_chunked_env", "make_task_env", "register_envs"]


@dataclass(frozen=True)
class TaskSpec:
    """How to build one registered task.

    Attributes:
        env_id: the Gymnasium id, ``lnmdn/<Name>-v<N>``.
        entry_point: ``"module:callable"`` returning the single-step task env.
        max_episode_steps: single-step limit applied with Gymnasium's ``TimeLimit``.
        kwargs: default keyword arguments of the task env.
        extra: the pip extra the task needs (named in the ImportError).
    """

    env_id: str
    entry_point: str
    max_episode_steps: int
    kwargs: dict[str, Any] = field(default_factory=dict)
    extra: str | None = None


TASKS: dict[str, TaskSpec] = {
    spec.env_id: spec
    for spec in [
        TaskSpec("lnmdn/PushT-v0", "lnmdn_envs.pusht:PushTEnv", 300),
        TaskSpec("lnmdn/Can-v0", "lnmdn_envs.can:CanEnv", 400, extra="mujoco"),
        TaskSpec(
            "lnmdn/PointMaze-UMaze-v0",
            "lnmdn_envs.pointmaze:PointMazeEnv",
            300,
            {"maze": "UMaze"},
            extra="mujoco",
        ),
        TaskSpec(
            "lnmdn/PointMaze-Medium-v0",
            "lnmdn_envs.pointmaze:PointMazeEnv",
            600,
            {"maze": "Medium"},
            extra="mujoco",
        ),
        TaskSpec(
            "lnmdn/PointMaze-Large-v0",
            "lnmdn_envs.pointmaze:PointMazeEnv",
            800,
            {"maze": "Large"},
            extra="mujoco",
        ),
        TaskSpec(
            "lnmdn/PointMaze-Bimodal-v0",
            "lnmdn_envs.pointmaze:PointMazeEnv",
            300,
            {"maze": "Bimodal"},
            extra="mujoco",
        ),
    ]
}


def _task_spec(env_id: str) -> TaskSpec:
    if env_id.startswith("lnmdn_envs:"):
        env_id = env_id.split(":", 1)[1]
    try:
        return TASKS[env_id]
    except KeyError:
        close = difflib.get_close_matches(env_id, TASKS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise gym.error.UnregisteredEnv(
            f"unknown lnmdn task {env_id!r}.{hint} Known ids: {sorted(TASKS)}"
        ) from None


def _load(spec: TaskSpec) -> Any:
    module_name, attr = spec.entry_point.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        if spec.extra is None:
            raise
        raise ImportError(
            f"{spec.env_id} needs the '{spec.extra}' extra ({err}). "
            f"Install it with: pip install -c constraints.txt -e '.[{spec.extra}]'"
        ) from err
    return getattr(module, attr)


def make_task_env(env_id: str, **kwargs: Any) -> gym.Env[Any, Any]:
    """Build the single-step task env of ``env_id`` (with its time limit, without chunking).

    Args:
        env_id: a registered id such as ``"lnmdn/PushT-v0"``.
        **kwargs: task keyword arguments (``obs_type``, ``render_mode``, ...).

    Returns:
        ``TimeLimit(task_env)``: observation ``(Do,)``, action ``(Da,)``.
    """
    spec = _task_spec(env_id)
    max_episode_steps = kwargs.pop("max_episode_steps", spec.max_episode_steps)
    env = _load(spec)(**{**spec.kwargs, **kwargs})
    return TimeLimit(env, max_episode_steps=max_episode_steps)


def make_chunked_env(
    task_id: str, n_obs_steps: int = 2, n_action_steps: int = 8, **kwargs: Any
) -> gym.Env[Any, Any]:
    """Entry point of every registered id: ``MultiStep(make_task_env(task_id, **kwargs))``."""
    return MultiStep(make_task_env(task_id, **kwargs), n_obs_steps, n_action_steps)


def register_envs() -> None:
    """Register every lnmdn id with Gymnasium (idempotent; called on ``import lnmdn_envs``)."""
    for env_id in TASKS:
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point="lnmdn_envs.registration:make_chunked_env",
            kwargs={"task_id": env_id},
            disable_env_checker=False,
        )
