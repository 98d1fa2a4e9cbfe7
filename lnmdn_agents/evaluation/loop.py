"""The rollout loop: a policy drives a Gymnasium vector env through one seeded episode per seed.

:func:`rollout` is the loop behind :func:`lnmdn_agents.evaluation.rollout.evaluate` (which builds
the env, picks the seeds and summarises the episodes); it can drive a caller's own vector env.

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

Each episode's record keeps Push-T's coverage score apart from success: ``success`` is whether
``info["is_success"]`` was ever true, ``score`` the episode's best ``info["score"]`` (Diffusion
Policy's convention: max over the episode).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv

from lnmdn_agents.evaluation.seeds import fork_torch_rng
from lnmdn_agents.evaluation.video import collect_frames
from lnmdn_agents.policies.base import Policy

__all__ = ["rollout"]

logger = logging.getLogger(__name__)


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
            :func:`lnmdn_envs.vector.make_eval_env`. Any ``autoreset_mode`` is handled.
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
        collect_frames(venv, slot, frames, n_videos)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        # a bar on a terminal only (disable=None); in a log, one line per batch of B episodes
        bar = tqdm(total=n_episodes, desc="rollout", unit="ep", leave=False, disable=None)
    log_batches = progress and (bar is None or bar.disable)
    t_start = time.perf_counter()
    try:
        with fork_torch_rng(policy):
            torch.manual_seed(torch_seed)
            while len(results) < n_episodes:
                with torch.no_grad():
                    action, _ = policy.predict(obs, deterministic=deterministic)
                obs, reward, terminated, truncated, infos = env.step(np.asarray(action))
                if n_videos > 0:
                    collect_frames(venv, slot, frames, n_videos)
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
                        collect_frames(venv, slot, frames, n_videos)
    finally:
        if bar is not None:
            bar.close()
    return [results[i] for i in range(n_episodes)], frames
