"""Closed-loop evaluation: roll a policy out in Gymnasium vector envs with explicit seeds.

Every episode gets its own seed (by default ``EVAL_SEED_BASE + i``, i.e. 100000, 100001, ...;
see :mod:`~lnmdn_agents.evaluation.seeds`). The vector env comes from
:func:`lnmdn_envs.vector.make_eval_env` (re-exported here as :func:`make_eval_env`), which knows
the tasks: which step in worker processes, how those start safely, how frames are recorded.
:func:`evaluate` builds it, runs the episodes through the rollout loop
(:func:`~lnmdn_agents.evaluation.loop.rollout`, re-exported here, with its timeline of envs,
seeds and resets), writes the videos (:mod:`~lnmdn_agents.evaluation.video`) and summarises the
episodes.

Results keep Push-T's coverage score apart from success: ``success_rate`` (with a 95% Wilson
interval) counts episodes where ``info["is_success"]`` was true; ``mean_score`` averages each
episode's best ``info["score"]`` (Diffusion Policy's convention: max over the episode).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lnmdn_agents.evaluation.loop import rollout
from lnmdn_agents.evaluation.seeds import (
    EVAL_SEED_BASE,
    check_seeds_disjoint,
    dataset_seeds,
    eval_seeds,
)
from lnmdn_agents.evaluation.video import write_video
from lnmdn_agents.policies.base import Policy
from lnmdn_envs.registration import evaluation_kwargs
from lnmdn_envs.vector import check_env_id, make_eval_env, spawn_is_safe

__all__ = [
    "EVAL_SEED_BASE",
    "check_env_id",
    "check_seeds_disjoint",
    "dataset_seeds",
    "eval_seeds",
    "evaluate",
    "make_eval_env",
    "rollout",
    "spawn_is_safe",
    "wilson_interval",
]


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95% by default).

    Unlike the normal approximation it stays inside [0, 1] and is not degenerate at 0 or n
    successes, which matters for the small episode counts of closed-loop evaluation.

    Args:
        successes: number of successful episodes.
        n: number of episodes (> 0).
        z: standard-normal quantile of the two-sided level (1.96 for 95%).

    Returns:
        ``(low, high)``.
    """
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes=}, {n=}")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def evaluate(
    policy: Policy,
    env_id: str,
    n_episodes: int,
    seeds: Sequence[int] | None = None,
    n_envs: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    video_dir: str | Path | None = None,
    progress: bool = True,
    *,
    n_videos: int = 2,
    video_format: str = "gif",
    video_fps: int = 10,
    deterministic: bool = False,
    vectorization_mode: str | None = None,
    dataset_id: str | None = None,
    torch_seed: int = 0,
    start_states: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Closed-loop success rate, score and episode lengths of ``policy`` on ``env_id``.

    Args:
        policy: a :class:`~lnmdn_agents.policies.base.Policy`.
        env_id: registered id, e.g. ``"lnmdn/PushT-v0"``; the env is built with the policy's
            ``n_obs_steps`` and ``n_action_steps``.
        n_episodes: episodes to run.
        seeds: one seed per episode; default :func:`eval_seeds` (100000, 100001, ...).
        n_envs: B, envs stepped together; default ``min(n_episodes, 8)``.
        env_kwargs: task keyword arguments, over the task's evaluation defaults
            (:func:`lnmdn_envs.registration.evaluation_kwargs`: Push-T's legacy seeding), which
            apply to seeded starts only, not to ``start_states``.
        video_dir: write videos of the first ``n_videos`` episodes there.
        progress: show a progress bar.
        n_videos: how many episodes to film when ``video_dir`` is given.
        video_format: ``"gif"`` or ``"mp4"`` (mp4 needs imageio-ffmpeg).
        video_fps: frames per second of the videos (control rate of the task: Push-T 10).
        deterministic: passed to ``policy.predict``.
        vectorization_mode: ``"sync"``/``"async"``; default: see :func:`make_eval_env`.
        dataset_id: when given, check that ``seeds`` are not seeds of this dataset.
        torch_seed: seed of the policy's sampling.
        start_states: one simulator state per episode (``reset_to_state``; e.g. from
            :func:`~lnmdn_agents.evaluation.starts.dataset_starts`): episode i starts there and
            ``seeds[i]`` only seeds the env's RNG. None: the seeds' own random starts.

    Returns:
        A JSON-ready dict: ``success_rate``, ``success_ci95`` (Wilson), ``n_successes``,
        ``mean_score``/``std_score`` (best per-episode ``info["score"]``), ``mean_length`` (in
        single env steps), ``mean_chunks`` (policy calls per episode: what SB3's
        ``evaluate_policy`` reports as the episode length),
        ``mean_return``, ``wall_time_s``, ``env_steps_per_sec``, ``seeds``, ``episodes`` (one
        dict per episode), ``videos`` (paths) and the settings used.
    """
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes=}")
    seeds = eval_seeds(n_episodes) if seeds is None else [int(s) for s in seeds]
    if len(seeds) != n_episodes:
        raise ValueError(f"need one seed per episode: got {len(seeds)} seeds for {n_episodes=}")
    if len(set(seeds)) != len(seeds):
        raise ValueError("evaluation seeds must be distinct (each episode a new initial state)")
    if video_format not in ("gif", "mp4"):
        raise ValueError(f"video_format must be 'gif' or 'mp4', got {video_format!r}")
    check_env_id(env_id)
    seeds_checked = False
    wrappers: list[Any] = []
    if start_states is not None:
        from lnmdn_agents.evaluation.starts import ResetToState

        if len(start_states) != n_episodes:
            raise ValueError(
                f"need one start state per episode: got {len(start_states)} for {n_episodes=}"
            )
        table = {s: np.asarray(x).tolist() for s, x in zip(seeds, start_states, strict=True)}
        wrappers.append(functools.partial(ResetToState, states=table))
    elif dataset_id is not None:
        seeds_checked = check_seeds_disjoint(seeds, dataset_id)
    n_envs = min(n_episodes, 8) if n_envs is None else int(n_envs)
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs=}")
    n_envs = min(n_envs, n_episodes)
    n_videos = min(n_videos, n_episodes) if video_dir is not None else 0
    cfg = policy.config
    # The task's evaluation defaults say how seeds become starts (Push-T: DP's legacy order);
    # given start states were recorded by the env's own order and are restored with it.
    defaults = evaluation_kwargs(env_id) if start_states is None else {}
    env_kwargs = {**defaults, **(env_kwargs or {})}
    env = make_eval_env(
        env_id,
        n_envs,
        n_obs_steps=cfg.n_obs_steps,
        n_action_steps=cfg.n_action_steps,
        env_kwargs=env_kwargs,
        vectorization_mode=vectorization_mode,
        record_frames=n_videos > 0,
        wrappers=wrappers,
    )
    t0 = time.perf_counter()
    was_training = bool(getattr(policy, "training", False))
    if hasattr(policy, "eval"):
        policy.eval()
    try:
        episodes, frames = rollout(
            policy,
            env,
            seeds,
            deterministic=deterministic,
            n_videos=n_videos,
            progress=progress,
            torch_seed=torch_seed,
        )
    finally:
        env.close()
        if was_training and hasattr(policy, "train"):
            policy.train()
    wall = time.perf_counter() - t0
    videos: list[str] = []
    if video_dir is not None:
        for ep, fr in sorted(frames.items()):
            path = Path(video_dir) / f"episode_{ep:03d}_seed_{seeds[ep]}.{video_format}"
            write_video(path, fr, video_fps)
            videos.append(str(path))
    succ = np.array([e["success"] for e in episodes], dtype=bool)
    scores = np.array([e["score"] for e in episodes], dtype=float)
    lengths = np.array([e["length"] for e in episodes], dtype=float)
    lo, hi = wilson_interval(int(succ.sum()), n_episodes)
    return {
        "env_id": env_id,
        "env_kwargs": env_kwargs,
        "n_episodes": n_episodes,
        "n_envs": n_envs,
        "deterministic": deterministic,
        "success_rate": float(succ.mean()),
        "success_ci95": [lo, hi],
        "n_successes": int(succ.sum()),
        "mean_score": float(scores.mean()),
        "std_score": float(scores.std()),
        "mean_length": float(lengths.mean()),
        "mean_chunks": float(np.mean([e["chunks"] for e in episodes])),
        "mean_return": float(np.mean([e["return"] for e in episodes])),
        "wall_time_s": wall,
        "env_steps_per_sec": float(lengths.sum() / wall) if wall > 0 else float("nan"),
        "seeds": seeds,
        "seeds_checked_against": dataset_id if seeds_checked else None,
        "episodes": episodes,
        "videos": videos,
    }
