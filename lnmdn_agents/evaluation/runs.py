"""Evaluate a training run folder: offline metrics, closed loop, latency and size in one dict.

A run folder (written by ``lnmdn train``) holds ``config.json`` + ``model.safetensors`` and, when
it came from training, ``train_config.json`` (dataset, seed) and ``metrics.jsonl``.
:func:`evaluate_run` writes ``eval_info.json`` next to them (atomically). Reading a run folder
back (its ``train_config.json``, its metrics, every run under a folder) is
:mod:`~lnmdn_agents.evaluation.run_folders`, whose names are re-exported here.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from lnmdn_agents.checkpoint import load_policy
from lnmdn_agents.evaluation.latency import count_parameters, policy_latency, torch_threads
from lnmdn_agents.evaluation.offline import evaluate_offline
from lnmdn_agents.evaluation.rollout import evaluate
from lnmdn_agents.evaluation.run_folders import list_runs, read_metrics, read_train_config
from lnmdn_agents.evaluation.starts import check_starts, dataset_starts, describe_starts
from lnmdn_agents.policies.base import PolicyBase
from lnmdn_envs.atomic import atomic_write_text
from lnmdn_envs.vector import check_env_id

__all__ = [
    "env_for_dataset",
    "env_kwargs_for",
    "evaluate_run",
    "list_runs",
    "measure_run",
    "read_metrics",
    "read_train_config",
]

logger = logging.getLogger(__name__)


def env_for_dataset(dataset_id: str) -> tuple[str, dict[str, Any]]:
    """The env ``dataset_id`` was recorded in: its id and task keyword arguments.

    From the env spec the dataset stores (:func:`lnmdn_datasets.provision.dataset_env`), e.g.
    ``lnmdn/pusht/expert-v2`` -> ``("lnmdn/PushT-v0", {"obs_type": "keypoints"})``.
    """
    from lnmdn_datasets.provision import dataset_env

    return dataset_env(dataset_id)


def env_kwargs_for(env_id: str, dataset_id: str | None) -> dict[str, Any]:
    """Task keyword arguments for evaluating in ``env_id`` a policy trained on ``dataset_id``.

    The dataset's recorded ones (``obs_type``...) when ``env_id`` is the env it was recorded
    in, so ``--env lnmdn/PushT-v0`` evaluates a keypoint-trained policy on keypoints; none for
    another env or when no dataset is known.
    """
    if dataset_id is None:
        return {}
    try:
        recorded, kwargs = env_for_dataset(dataset_id)
    except ValueError:
        return {}
    return kwargs if recorded == env_id else {}


def evaluate_run(
    run_dir: str | Path,
    env_id: str | None = None,
    n_episodes: int = 20,
    dataset_id: str | None = None,
    *,
    n_envs: int | None = None,
    offline: bool = True,
    closed_loop: bool = True,
    max_windows: int | None = 2000,
    ks: tuple[int, ...] = (1, 2, 5, 10),
    latency_calls: int = 30,
    video_dir: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
    write: bool = True,
    threads: int | None = 1,
    deterministic: bool = False,
    num_inference_steps: int | None = None,
    device: str = "cpu",
    starts: tuple[str, ...] = ("random",),
    start_steps: int | None = None,
) -> dict[str, Any]:
    """Evaluate one run folder and write ``eval_info.json`` into it.

    Args:
        run_dir: folder with ``config.json`` + ``model.safetensors``.
        env_id: closed-loop env; default: the env of the run's dataset.
        n_episodes: closed-loop episodes (seeds 100000, 100001, ...).
        dataset_id: offline evaluation data (test split); default: the run's training dataset.
        n_envs: vector envs for the rollouts.
        offline: compute the offline metrics.
        closed_loop: run the rollouts.
        max_windows: cap on test windows for the offline metrics (None: all).
        ks: best-of-K values.
        latency_calls: timed calls per latency measurement (0: skip).
        video_dir: videos of the first episodes.
        seed: sampling seed (offline and closed loop).
        progress: progress bars.
        write: write ``eval_info.json``.
        threads: torch threads while evaluating (None: leave torch's setting).
        deterministic: closed-loop actions with ``deterministic=True`` (mixture: the most
            likely component's mean; diffusion: no noise).
        num_inference_steps: denoising steps at inference (diffusion, lwd); None: the run's.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``: where the policy runs.
        starts: closed-loop start states (``"random"``, ``"dataset"``; see :func:`measure_run`).
        start_steps: step limit of the dataset starts' episodes (None: the task's).

    Returns:
        ``{"name", "run_dir", "policy", "dataset", "env_id", "env_kwargs", "params", "latency",
        "offline", "closed_loop", "closed_loop_dataset", "wall_time_s"}``.
    """
    with torch_threads(threads):
        _, info = measure_run(
            run_dir,
            env_id,
            n_episodes,
            dataset_id,
            n_envs=n_envs,
            offline=offline,
            closed_loop=closed_loop,
            max_windows=max_windows,
            ks=ks,
            latency_calls=latency_calls,
            video_dir=video_dir,
            seed=seed,
            progress=progress,
            deterministic=deterministic,
            num_inference_steps=num_inference_steps,
            device=device,
            starts=starts,
            start_steps=start_steps,
        )
    if write:
        atomic_write_text(Path(run_dir) / "eval_info.json", json.dumps(info, indent=2) + "\n")
    return info


def _resolve_eval_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} but CUDA is not available; use --device cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}")
    return device


def set_inference_steps(policy: Any, steps: int) -> None:
    """Set a diffusion-type policy's denoising steps at inference.

    Raises:
        ValueError: the policy has no inference steps, or ``steps`` is out of its range.
    """
    cfg = policy.config
    if not hasattr(cfg, "num_inference_steps"):
        raise ValueError(
            f"policy {cfg.name!r} has no inference steps (it samples in one pass); drop "
            "--inference-steps"
        )
    limit = int(getattr(cfg, "num_train_timesteps", steps))
    if not 1 <= steps <= limit:
        raise ValueError(
            f"--inference-steps must be in [1, {limit}] (the policy's num_train_timesteps), "
            f"got {steps}"
        )
    setter = getattr(policy, "set_num_inference_steps", None)
    if callable(setter):
        setter(steps)
    else:
        cfg.num_inference_steps = steps


def measure_run(
    run_dir: str | Path,
    env_id: str | None,
    n_episodes: int,
    dataset_id: str | None,
    *,
    weights: str | Path | None = None,
    n_envs: int | None,
    offline: bool,
    closed_loop: bool,
    max_windows: int | None,
    ks: tuple[int, ...],
    latency_calls: int,
    latency_warmup: int = 3,
    video_dir: str | Path | None,
    n_videos: int = 2,
    seed: int,
    progress: bool,
    offline_progress: bool | None = None,
    deterministic: bool,
    num_inference_steps: int | None,
    device: str,
    starts: tuple[str, ...] = ("random",),
    start_steps: int | None = None,
) -> tuple[PolicyBase, dict[str, Any]]:
    """Load one run's policy and measure it: size, latency, offline metrics, closed loop.

    The one evaluation of a run, behind ``lnmdn eval`` (:func:`evaluate_run`, which sets the
    torch threads and writes ``eval_info.json``) and each ``lnmdn bench`` cell (which loads the
    checkpoint its run selected, ``weights``, and keeps the policy for its figures). It runs on
    the caller's torch threads and writes nothing.

    Args:
        run_dir: the run folder; its ``train_config.json`` (if any) gives the dataset and the
            split seed.
        env_id: closed-loop env; None: the env of the dataset. The dataset's recorded task
            keyword arguments (``obs_type``) apply when it is that env (:func:`env_kwargs_for`).
        n_episodes: closed-loop episodes (seeds 100000, 100001, ...).
        dataset_id: offline evaluation data (test split); None: the run's training dataset.
        weights: folder of the ``config.json`` + ``model.safetensors`` to load (``run_dir/best``
            for the checkpoint validation selected); None: ``run_dir``.
        n_envs: vector envs for the rollouts.
        offline: compute the offline metrics.
        closed_loop: run the rollouts.
        max_windows: cap on test windows for the offline metrics (None: all).
        ks: best-of-K values.
        latency_calls: timed calls per latency measurement (0: skip).
        latency_warmup: untimed calls before the timed ones.
        video_dir: videos of the first episodes.
        n_videos: how many episodes to film when ``video_dir`` is given.
        seed: sampling seed (latency, offline and closed loop).
        progress: progress bars.
        offline_progress: a bar for the offline metrics; None: as ``progress``.
        deterministic: closed-loop actions with ``deterministic=True``.
        num_inference_steps: denoising steps at inference (diffusion, lwd); None: the run's.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``: where the policy runs.
        starts: closed-loop start states, ``"random"`` (the seeds' resets: ``closed_loop``)
            and/or ``"dataset"`` (states of held-out windows of the run's dataset, under the
            run's protocol: ``closed_loop_dataset``); :mod:`lnmdn_agents.evaluation.starts`.
        start_steps: step limit of the dataset starts' episodes (None: the task's own).

    Returns:
        The loaded policy, and ``{"name", "run_dir", "policy", "dataset", "env_id",
        "env_kwargs", "params", "settings", "protocol", "latency", "offline", "closed_loop",
        "closed_loop_dataset", "wall_time_s"}`` (``latency``, ``offline`` and the closed-loop
        results only when measured).

    Raises:
        ValueError: no env can be told (no ``env_id`` and no dataset), or an unknown env id.
    """
    t0 = time.perf_counter()
    device = _resolve_eval_device(device)
    run_dir = Path(run_dir)
    policy = load_policy(run_dir if weights is None else weights, map_location=device)
    if num_inference_steps is not None:
        set_inference_steps(policy, num_inference_steps)
    train_cfg = read_train_config(run_dir)
    dataset_id = dataset_id or train_cfg.get("dataset")
    if env_id is None:
        if dataset_id is None:
            raise ValueError(
                f"{run_dir} has no train_config.json naming its dataset; pass --env (and "
                "--dataset for the offline metrics)"
            )
        env_id, env_kwargs = env_for_dataset(dataset_id)
    else:
        env_kwargs = env_kwargs_for(env_id, dataset_id)
    if closed_loop and n_episodes > 0:
        check_env_id(env_id)
    split_seed = int(train_cfg.get("split_seed", train_cfg.get("seed", 0)))
    protocol = str(train_cfg.get("protocol", "standard"))
    starts = check_starts(starts)
    info: dict[str, Any] = {
        "name": run_dir.name,
        "run_dir": str(run_dir),
        "policy": policy.config.name,
        "dataset": dataset_id,
        "env_id": env_id,
        "env_kwargs": env_kwargs,
        "params": count_parameters(policy),
        "settings": {
            "deterministic": deterministic,
            "num_inference_steps": getattr(policy.config, "num_inference_steps", None),
            "device": device,
            "seed": seed,
        },
        "protocol": protocol,
    }
    if latency_calls > 0:
        info["latency"] = policy_latency(
            policy, n_calls=latency_calls, warmup=latency_warmup, seed=seed
        )
    if offline:
        if dataset_id is None:
            logger.warning("no dataset for %s: offline metrics skipped (pass --dataset)", run_dir)
        else:
            info["offline"] = evaluate_offline(
                policy,
                dataset_id,
                ks=ks,
                seed=seed,
                max_windows=max_windows,
                split_seed=split_seed,
                progress=progress if offline_progress is None else offline_progress,
                protocol=protocol,
            )
    if closed_loop and n_episodes > 0 and "random" in starts:
        info["closed_loop"] = evaluate(
            policy,
            env_id,
            n_episodes,
            env_kwargs=env_kwargs,
            n_envs=n_envs,
            video_dir=video_dir,
            progress=progress,
            n_videos=n_videos,
            dataset_id=dataset_id if dataset_id and dataset_id.startswith("lnmdn/") else None,
            torch_seed=seed,
            deterministic=deterministic,
        )
    if closed_loop and n_episodes > 0 and "dataset" in starts:
        if dataset_id is None:
            raise ValueError(f"dataset starts need the run's dataset; {run_dir} names none")
        drawn = dataset_starts(
            dataset_id, policy.config, n_episodes, protocol=protocol, split_seed=split_seed,
            seed=seed,
        )  # fmt: skip
        kwargs = dict(env_kwargs)
        if start_steps is not None:
            kwargs["max_episode_steps"] = int(start_steps)
        result = evaluate(
            policy,
            env_id,
            n_episodes,
            env_kwargs=kwargs,
            n_envs=n_envs,
            progress=progress,
            torch_seed=seed,
            deterministic=deterministic,
            start_states=drawn["states"],
        )
        info["closed_loop_dataset"] = {**result, "starts": describe_starts(drawn, start_steps)}
    info["wall_time_s"] = time.perf_counter() - t0
    return policy, info
