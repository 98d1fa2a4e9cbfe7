"""Closed-loop evaluation: roll a policy out in Gymnasium vector envs with explicit seeds.

Every episode gets its own seed (by default ``EVAL_SEED_BASE + i``, i.e. 100000, 100001, ...;
see :mod:`~lnmdn_agents.evaluation.seeds`). The vector env comes from
:func:`lnmdn_envs.vector.make_eval_env` (re-exported here as :func:`make_eval_env`), which knows
the tasks: which step in worker processes, how those start safely, how frames are recorded. This
module has the loop that drives it with a policy and the summary of the episodes.

How a batch of ``n_envs`` vector envs runs ``n_episodes`` episodes::

    env 0 : |--- ep 0 (seed s0) ---|--- ep 3 (s3) ---|### frozen ###|
    env 1 : |------ ep 1 (s1) ------------|--- ep 4 (s4) ----------|
    env 2 : |- ep 2 (s2) -|--- ep 5 (s5) ---|####### frozen #######|

* The vector env runs with ``autoreset_mode=DISABLED``: when an env's episode ends, it is reset
  explicitly with the next queued seed (``reset(seed=..., options={"reset_mask": ...})``), so no
  auto-reset with an unseeded RNG ever leaks into the results. A caller's vector env in
  ``NEXT_STEP`` or ``SAME_STEP`` mode is handled too (finished envs are re-seeded at once; in
  ``SAME_STEP`` the episode's last info is read from ``final_info``).
* When the queue is empty a finished env is *frozen*: it is re-parked (reset with its own seed) and
  keeps stepping with the rest of the batch, but nothing it does is recorded.
* The policy always sees the full batch (recurrent state is indexed by env), and
  ``policy.reset(done_mask)`` clears the state of exactly the envs that start a new episode.

Results keep Push-T's coverage score apart from success: ``success_rate`` (with a 95% Wilson
interval) counts episodes where ``info["is_success"]`` was true; ``mean_score`` averages each
episode's best ``info["score"]`` (Diffusion Policy's convention: max over the episode).
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv

from lnmdn_agents.evaluation.seeds import (
    EVAL_SEED_BASE,
    check_seeds_disjoint,
    dataset_seeds,
    eval_seeds,
)
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

logger = logging.getLogger(__name__)


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


# -- the rollout loop ---------------------------------------------------------------------------
def _info_at(infos: dict[str, Any], key: str, i: int) -> Any:
    """Env ``i``'s value of ``key`` in a vector env's info dict (None where it has none)."""
    if key not in infos:
        return None
    mask = infos.get(f"_{key}")
    if mask is not None and not bool(np.asarray(mask)[i]):
        return None
    return np.asarray(infos[key])[i]


def _check_spaces(env: VectorEnv, policy: Policy) -> None:
    c = policy.config
    obs_shape = tuple(env.single_observation_space.shape or ())
    act_shape = tuple(env.single_action_space.shape or ())
    if obs_shape != (c.n_obs_steps, c.obs_dim):
        raise ValueError(
            f"env observations have shape {obs_shape} but the policy needs (To, Do) = "
            f"({c.n_obs_steps}, {c.obs_dim}); build the env with n_obs_steps={c.n_obs_steps} "
            "and the task the policy was trained on"
        )
    if act_shape != (c.n_action_steps, c.action_dim):
        raise ValueError(
            f"env action chunks have shape {act_shape} but the policy executes (Ta, Da) = "
            f"({c.n_action_steps}, {c.action_dim}); build the env with "
            f"n_action_steps={c.n_action_steps}"
        )


def _new_episode_record() -> dict[str, Any]:
    """What ``rollout`` accumulates per running episode, before its first step."""
    return {
        "success": False,
        "score": -math.inf,
        "final_score": float("nan"),
        "length": 0,
        "chunks": 0,
        "ret": 0.0,
    }


def rollout(
    policy: Policy,
    env: VectorEnv,
    seeds: Sequence[int],
    *,
    deterministic: bool = False,
    n_videos: int = 0,
    progress: bool = True,
    torch_seed: int = 0,
) -> tuple[list[dict[str, Any]], dict[int, list[np.ndarray]]]:
    """Run one episode per seed in ``env`` (a vector env of B envs) and return what happened.

    Args:
        policy: a :class:`~lnmdn_agents.policies.base.Policy`; ``predict`` maps observations
            (B, To, Do) to executed chunks (B, Ta, Da).
        env: a vector env whose single spaces are (To, Do) / (Ta, Da), e.g. from
            :func:`make_eval_env`. Any ``autoreset_mode`` is handled.
        seeds: one reset seed per episode; episode i uses ``seeds[i]``.
        deterministic: passed to ``policy.predict``.
        n_videos: record frames of the first ``n_videos`` episodes (the env must come from
            ``make_eval_env(..., record_frames=True)``).
        progress: report progress: a tqdm bar over finished episodes on a terminal, otherwise
            one log line each time a batch of ``B`` episodes has finished.
        torch_seed: seeds torch's RNG for the policy's sampling (global state restored after).

    Returns:
        ``(episodes, frames)``: per-episode dicts ordered by episode index (``episode``, ``seed``,
        ``success``, ``score``, ``final_score``, ``length`` in single env steps, ``chunks``: policy
        calls, i.e. vector-env steps, which is what SB3's ``evaluate_policy`` counts as the
        episode length, ``return``), and
        ``{episode index: frames}`` for the recorded episodes.
    """
    seeds = [int(s) for s in seeds]
    n_episodes = len(seeds)
    if n_episodes == 0:
        raise ValueError("rollout needs at least one seed")
    _check_spaces(env, policy)
    venv: Any = env  # Sync/AsyncVectorEnv: call, set_attr and per-env seeds
    b = venv.num_envs
    mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    mode = AutoresetMode(mode) if isinstance(mode, str) else mode

    def set_recording(slot_episode: list[int]) -> None:
        if n_videos > 0:
            venv.set_attr("recording", [0 <= e < n_videos for e in slot_episode])

    # which episode each env is running (-1: frozen), and the per-episode accumulators
    slot = [i if i < n_episodes else -1 for i in range(b)]
    next_episode = min(b, n_episodes)
    park_seed = [seeds[min(i, n_episodes - 1)] for i in range(b)]
    acc = [_new_episode_record() for _ in range(b)]
    results: dict[int, dict[str, Any]] = {}
    frames: dict[int, list[np.ndarray]] = {}

    set_recording(slot)
    obs, _ = venv.reset(seed=park_seed)
    policy.reset(None)
    if n_videos > 0:
        _collect_frames(venv, slot, frames, n_videos)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        # a bar on a terminal only (disable=None); in a log, one line per batch of B episodes
        bar = tqdm(total=n_episodes, desc="rollout", unit="ep", leave=False, disable=None)
    log_batches = progress and (bar is None or bar.disable)
    t_start = time.perf_counter()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch_seed)
            while len(results) < n_episodes:
                with torch.no_grad():
                    action, _ = policy.predict(obs, deterministic=deterministic)
                obs, reward, terminated, truncated, infos = env.step(np.asarray(action))
                if n_videos > 0:
                    _collect_frames(venv, slot, frames, n_videos)
                done = np.logical_or(terminated, truncated)
                for i in range(b):
                    ep = slot[i]
                    if ep < 0:
                        continue
                    info_src = infos
                    if done[i] and mode == AutoresetMode.SAME_STEP and "final_info" in infos:
                        info_src = infos["final_info"]
                    a = acc[i]
                    a["ret"] += float(reward[i])
                    n_steps = _info_at(info_src, "n_steps", i)
                    a["length"] += int(n_steps) if n_steps is not None else 1
                    a["chunks"] += 1
                    succ = _info_at(info_src, "is_success", i)
                    if succ is not None and bool(succ):
                        a["success"] = True
                    score = _info_at(info_src, "score", i)
                    if score is not None:
                        a["score"] = max(a["score"], float(score))
                        a["final_score"] = float(score)
                    if done[i]:
                        best = a["score"] if a["score"] > -math.inf else float(a["success"])
                        final = a["final_score"]
                        results[ep] = {
                            "episode": ep,
                            "seed": seeds[ep],
                            "success": bool(a["success"]),
                            "score": float(best),
                            "final_score": float(final if not math.isnan(final) else best),
                            "length": int(a["length"]),
                            "chunks": int(a["chunks"]),
                            "return": float(a["ret"]),
                            "terminated": bool(terminated[i]),
                        }
                        rate = float(np.mean([r["success"] for r in results.values()]))
                        if bar is not None:
                            bar.update(1)
                            bar.set_postfix(success=f"{rate:.2f}")
                        if log_batches and (len(results) % b == 0 or len(results) == n_episodes):
                            logger.info(
                                "rollout: %d/%d episodes, success so far %.2f, %.0f s",
                                len(results),
                                n_episodes,
                                rate,
                                time.perf_counter() - t_start,
                            )
                        acc[i] = _new_episode_record()
                        if next_episode < n_episodes:
                            slot[i] = next_episode
                            park_seed[i] = seeds[next_episode]
                            next_episode += 1
                        else:
                            slot[i] = -1  # frozen: re-parked, stepped, never recorded
                reset_mask = np.asarray(done, dtype=bool)
                if reset_mask.any() and len(results) < n_episodes:
                    set_recording(slot)
                    new_obs, _ = venv.reset(
                        seed=[park_seed[i] if reset_mask[i] else None for i in range(b)],
                        options={"reset_mask": reset_mask},
                    )
                    obs = np.where(reset_mask[:, None, None], new_obs, obs)
                    policy.reset(reset_mask)
                    if n_videos > 0:
                        _collect_frames(venv, slot, frames, n_videos)
    finally:
        if bar is not None:
            bar.close()
    return [results[i] for i in range(n_episodes)], frames


def _collect_frames(
    env: Any, slot: list[int], frames: dict[int, list[np.ndarray]], n_videos: int
) -> None:
    popped = env.call("pop_frames")
    for i, fr in enumerate(popped):
        ep = slot[i]
        if 0 <= ep < n_videos and fr:
            frames.setdefault(ep, []).extend(fr)


def _write_video(path: Path, frames: list[Any], fps: int) -> None:
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError as err:
            raise ImportError(
                "mp4 videos need imageio-ffmpeg: pip install imageio-ffmpeg (or use gif)"
            ) from err
        imageio.mimsave(path, frames, fps=fps)
    else:
        imageio.mimsave(path, frames, duration=1000 / fps, loop=0)


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
            _write_video(path, fr, video_fps)
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
