"""The registered task ids and the factories that build their envs.

``gym.make("lnmdn/PushT-v0")`` returns ``MultiStep(TimeLimit(task_env))``: observation
``(To, Do)``, action ``(Ta, Da)``. The time limit counts single env steps (it sits inside the
chunking), so a Push-T episode is 300 steps whatever Ta is; ``max_task_steps=N`` changes it.
(Gymnasium's own ``gym.make(..., max_episode_steps=N)`` wraps the outside and so counts chunks.)

The single-step task env is one call away: ``gym.make("lnmdn/PushT-Step-v0")`` or
``make_task_env("lnmdn/PushT-v0")``, observation ``(Do,)``, action ``(Da,)``. Minari datasets
store single steps, so their env spec is the ``-Step`` id.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from gymnasium.wrappers import TimeLimit

from lnmdn_envs.suggest import did_you_mean
from lnmdn_envs.wrappers import MultiStep

__all__ = [
    "TASKS",
    "TaskSpec",
    "evaluation_kwargs",
    "make_chunked_env",
    "make_task_env",
    "register_envs",
    "step_env_id",
]


@dataclass(frozen=True)
class TaskSpec:
    """How to build one registered task.

    Attributes:
        env_id: the Gymnasium id, ``lnmdn/<Name>-v<N>``.
        entry_point: ``"module:callable"`` returning the single-step task env.
        max_episode_steps: single-step limit applied with Gymnasium's ``TimeLimit``.
        kwargs: default keyword arguments of the task env.
        extra: the pip extra the task needs (named in the ImportError).
        eval_kwargs: task keyword arguments of closed-loop evaluation (:func:`evaluation_kwargs`).
    """

    env_id: str
    entry_point: str
    max_episode_steps: int
    kwargs: dict[str, Any] = field(default_factory=dict)
    extra: str | None = None
    eval_kwargs: dict[str, Any] = field(default_factory=dict)


TASKS: dict[str, TaskSpec] = {
    spec.env_id: spec
    for spec in [
        # Evaluated as Diffusion Policy's test env is: seed s starts where its test episode s does.
        TaskSpec(
            "lnmdn/PushT-v0",
            "lnmdn_envs.pusht:PushTEnv",
            300,
            eval_kwargs={"legacy_seeding": True},
        ),
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


def step_env_id(task_id: str) -> str:
    """The single-step id of a task: ``"lnmdn/PushT-v0"`` -> ``"lnmdn/PushT-Step-v0"``."""
    head, sep, version = task_id.rpartition("-v")
    if not sep or not version.isdigit():
        raise ValueError(f"task id must end in -v<N>, got {task_id!r}")
    return f"{head}-Step-v{version}"


def evaluation_kwargs(env_id: str) -> dict[str, Any]:
    """Task keyword arguments that closed-loop evaluation applies under the caller's own.

    Push-T: ``legacy_seeding=True``, so the evaluation seeds (validation 50000+, test 100000+)
    give Diffusion Policy's initial states for the same seeds; the datasets keep the env's own
    seeding. Other tasks and non-lnmdn ids: none.
    """
    try:
        return dict(_task_spec(env_id).eval_kwargs)
    except gym.error.UnregisteredEnv:
        return {}


def _task_spec(env_id: str) -> TaskSpec:
    if env_id.startswith("lnmdn_envs:"):
        env_id = env_id.split(":", 1)[1]
    env_id = env_id.replace("-Step-v", "-v")
    try:
        return TASKS[env_id]
    except KeyError:
        hint = did_you_mean(env_id, TASKS)
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
        env_id: a registered id such as ``"lnmdn/PushT-v0"`` (or its ``-Step`` id).
        **kwargs: task keyword arguments (``obs_type``, ``render_mode``, ...), and
            ``max_episode_steps`` to change the task's single-step limit.

    Returns:
        ``TimeLimit(task_env)``: observation ``(Do,)``, action ``(Da,)``.
    """
    spec = _task_spec(env_id)
    max_episode_steps = kwargs.pop("max_episode_steps", spec.max_episode_steps)
    env = _load(spec)(**{**spec.kwargs, **kwargs})
    return TimeLimit(env, max_episode_steps=max_episode_steps)


def make_chunked_env(
    task_id: str,
    n_obs_steps: int = 2,
    n_action_steps: int = 8,
    max_task_steps: int | None = None,
    **kwargs: Any,
) -> gym.Env[Any, Any]:
    """Entry point of the chunked ids: ``MultiStep(make_task_env(task_id, **kwargs))``.

    Args:
        task_id: a registered id.
        n_obs_steps: To.
        n_action_steps: Ta.
        max_task_steps: the single-step episode limit; default: the task's (300 for Push-T).
        **kwargs: task keyword arguments.
    """
    if max_task_steps is not None:
        kwargs["max_episode_steps"] = max_task_steps
    return MultiStep(make_task_env(task_id, **kwargs), n_obs_steps, n_action_steps)


def register_envs() -> None:
    """Register the chunked and ``-Step`` ids (idempotent; called on ``import lnmdn_envs``)."""
    for env_id in TASKS:
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point="lnmdn_envs.registration:make_chunked_env",
                kwargs={"task_id": env_id},
            )
        if step_env_id(env_id) not in gym.registry:
            # make_task_env applies the task's TimeLimit itself, so the spec sets none.
            gym.register(
                id=step_env_id(env_id),
                entry_point="lnmdn_envs.registration:make_task_env",
                kwargs={"env_id": env_id},
            )
