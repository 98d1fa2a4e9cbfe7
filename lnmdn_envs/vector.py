"""Vector envs of the lnmdn tasks for closed-loop evaluation, and when their workers may start.

:func:`make_eval_env` builds ``n_envs`` chunked envs stepped together, with auto-reset disabled
(the caller resets each finished env with its next seed). The MuJoCo tasks (Can, PointMaze) step
in ``forkserver`` worker processes when that is safe, since MuJoCo / EGL state does not survive
``fork()``; Push-T steps in-process. ``record_frames=True`` puts a
:class:`~lnmdn_envs.wrappers.FrameRecorder` under the chunking of every env, for videos.

Worker processes started with ``forkserver``/``spawn`` import the parent's ``__main__`` script
again; :func:`spawn_is_safe` tells whether that would re-run the call that starts them (a script
without an ``if __name__ == "__main__":`` guard), and :func:`make_eval_env` then steps the envs
in-process instead. No torch here: the policy that drives the envs lives in ``lnmdn_agents``.
"""

from __future__ import annotations

import ast
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeGuard

import gymnasium as gym
from gymnasium.vector import AutoresetMode, VectorEnv

from lnmdn_envs.registration import TASKS, make_task_env
from lnmdn_envs.suggest import did_you_mean
from lnmdn_envs.wrappers import FrameRecorder, MultiStep

__all__ = ["check_env_id", "is_mujoco_task", "make_eval_env", "spawn_is_safe"]

logger = logging.getLogger(__name__)


def check_env_id(env_id: str) -> None:
    """Raise a ``ValueError`` naming the close matches when ``env_id`` is not a registered env."""
    import lnmdn_envs  # noqa: F401  (registers the lnmdn/* ids)

    try:
        gym.spec(env_id)
    except gym.error.Error as err:
        known = sorted(k for k in gym.registry if k.startswith("lnmdn/"))
        hint = did_you_mean(env_id, known)
        raise ValueError(f"unknown env id {env_id!r} ({err}).{hint} lnmdn ids: {known}") from None


def is_mujoco_task(env_id: str) -> bool:
    """Whether ``env_id`` (``"lnmdn/Can-v0"``, ``"lnmdn_envs:lnmdn/Can-v0"``) is a MuJoCo task."""
    spec = TASKS.get(env_id.split(":", 1)[-1])
    return spec is not None and spec.extra == "mujoco"


def _is_main_guard(node: ast.AST) -> TypeGuard[ast.If]:
    """``if __name__ == "__main__":`` (either operand order)."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    test = node.test
    sides = [test.left, *test.comparators]
    names = [s.id for s in sides if isinstance(s, ast.Name)]
    consts = [s.value for s in sides if isinstance(s, ast.Constant)]
    return names == ["__name__"] and consts == ["__main__"] and len(test.ops) == 1


def spawn_is_safe() -> bool:
    """Whether ``forkserver``/``spawn`` worker processes can start from the current call.

    Such workers import the parent's ``__main__`` script again (as ``__mp_main__``). A script
    that reaches this call from its top level, outside an ``if __name__ == "__main__":`` block,
    would run again in every worker and fail in multiprocessing's bootstrapping. Safe: an
    interactive session, ``python -c``, a package's ``__main__``, or a call made inside such a
    guard (also through functions it calls).
    """
    main = sys.modules.get("__main__")
    spec_name = getattr(getattr(main, "__spec__", None), "name", None)
    if spec_name is not None:
        if spec_name == "__main__" or spec_name.endswith(".__main__"):
            return True  # multiprocessing does not re-run a package's __main__
    elif not getattr(main, "__file__", None):
        return True  # interactive, notebook, python -c: nothing is re-run
    frame = sys._getframe(1)
    while frame is not None and not (
        frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == "__main__"
    ):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return True  # not under the script's top level (a thread, a callback)
    try:
        tree = ast.parse(Path(frame.f_code.co_filename).read_text())
    except (OSError, SyntaxError, ValueError):
        return False
    line = frame.f_lineno
    return any(
        _is_main_guard(node) and node.lineno <= line <= (node.end_lineno or node.lineno)
        for node in ast.walk(tree)
    )


def _recording_env_fn(
    env_id: str,
    n_obs_steps: int,
    n_action_steps: int,
    kwargs: dict[str, Any],
    wrappers: tuple[Callable[[gym.Env[Any, Any]], gym.Wrapper[Any, Any, Any, Any]], ...] = (),
) -> Callable[[], gym.Env[Any, Any]]:
    """A chunked env whose single steps are rendered and kept (for videos)."""

    def make() -> gym.Env[Any, Any]:
        task = make_task_env(env_id, **{"render_mode": "rgb_array", **kwargs})
        env: gym.Env[Any, Any] = MultiStep(FrameRecorder(task), n_obs_steps, n_action_steps)
        for wrap in wrappers:
            env = wrap(env)
        return env

    return make


def make_eval_env(
    env_id: str,
    n_envs: int,
    *,
    n_obs_steps: int,
    n_action_steps: int,
    env_kwargs: dict[str, Any] | None = None,
    vectorization_mode: str | None = None,
    record_frames: bool = False,
    wrappers: Sequence[Callable[[gym.Env[Any, Any]], gym.Wrapper[Any, Any, Any, Any]]] = (),
) -> VectorEnv:
    """A vector env for evaluation, with auto-reset disabled (the rollout resets explicitly).

    Args:
        env_id: a registered id (``"lnmdn/PushT-v0"``).
        n_envs: B, envs stepped together.
        n_obs_steps: To, must match the policy.
        n_action_steps: Ta, must match the policy.
        env_kwargs: extra task keyword arguments.
        vectorization_mode: ``"sync"`` or ``"async"``; default: async (forkserver) for the
            MuJoCo tasks when ``n_envs > 1`` and workers can start safely
            (:func:`spawn_is_safe`), sync otherwise.
        record_frames: render every single step (needs an lnmdn id with ``rgb_array`` rendering).
            ``env_kwargs["max_episode_steps"]`` counts single steps (the task's time limit).
        wrappers: applied to each chunked env, innermost first (picklable for async workers;
            the evaluation's start-state wrapper, for instance).
    """
    import lnmdn_envs  # noqa: F401  (registers the lnmdn/* ids)

    kwargs = dict(env_kwargs or {})
    if vectorization_mode is None:
        vectorization_mode = "sync"
        if is_mujoco_task(env_id) and n_envs > 1:
            if spawn_is_safe():
                vectorization_mode = "async"
            else:
                logger.info(
                    "%s: sync vector envs, since the calling script has no `if __name__ == "
                    "'__main__':` guard around this call (async workers would re-run it); add one "
                    "or pass vectorization_mode='async' to step the %d envs in parallel",
                    env_id,
                    n_envs,
                )
    if vectorization_mode not in ("sync", "async"):
        raise ValueError(
            f"vectorization_mode must be 'sync' or 'async', got {vectorization_mode!r}"
        )
    vector_kwargs: dict[str, Any] = {"autoreset_mode": AutoresetMode.DISABLED}
    if vectorization_mode == "async":
        # MuJoCo / EGL state does not survive fork(): start workers fresh.
        vector_kwargs["context"] = "forkserver"
    task_id = env_id.split(":", 1)[-1]
    if record_frames:
        # Built by hand: frames are recorded inside the chunking, at every single step.
        if not task_id.startswith("lnmdn/"):
            raise ValueError(f"videos need an lnmdn task id, got {env_id!r}")
        fns = [
            _recording_env_fn(task_id, n_obs_steps, n_action_steps, kwargs, tuple(wrappers))
            for _ in range(n_envs)
        ]
        if vectorization_mode == "async":
            return gym.vector.AsyncVectorEnv(fns, **vector_kwargs)
        return gym.vector.SyncVectorEnv(fns, **vector_kwargs)
    if "max_episode_steps" in kwargs:
        # gym.make would apply its own max_episode_steps outside the chunking (counting chunks).
        kwargs["max_task_steps"] = kwargs.pop("max_episode_steps")
    return gym.make_vec(
        env_id,
        num_envs=n_envs,
        vectorization_mode=vectorization_mode,
        vector_kwargs=vector_kwargs,
        wrappers=list(wrappers) or None,
        n_obs_steps=n_obs_steps,
        n_action_steps=n_action_steps,
        **kwargs,
    )
