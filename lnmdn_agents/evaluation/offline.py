"""Offline evaluation: how well a policy's action chunks match held-out demonstrations.

Every metric is computed in *normalised action units* (the policy's own min-max scaling to
[-1, 1] per action dimension, fitted on the training split), so numbers are comparable across
tasks and policies. Shapes: N windows, To observations, T predicted actions, Da action size,
K samples per window.

Metrics (all means are over windows, horizon steps and action dimensions unless said otherwise):

* ``nll``: negative log-likelihood of the demonstrated chunk per action element,
  ``-log_prob / (T * Da)``. Exact for mixture density heads; an upper bound for policies that set
  ``log_prob_is_bound = True`` (diffusion: ``nll_kind == "bound"``). Absent when the policy has
  no ``log_prob``.
* ``mse_deterministic``: mean squared error of ``predict_chunk(obs, deterministic=True)``.
* ``mse_sample_mean``: mean squared error of the average of the K drawn samples.
* ``best_of_k_mse[k]``: per window, the smallest MSE among the first k drawn samples, then
  averaged over windows (the samples for smaller k are a prefix of those for larger k).
* ``per_step_mse``: (T,) squared error of the deterministic chunk at each horizon step.
* ``diversity``: standard deviation across the K samples per action element (root of the mean
  unbiased variance): 0 for a deterministic policy, sigma for Gaussian samples of std sigma.
* ``jerk``: mean squared third finite difference along the horizon,
  ``a[t+3] - 3 a[t+2] + 3 a[t+1] - a[t]``, of the sampled chunks (``jerk_deterministic`` for
  the deterministic chunk, ``jerk_demo`` for the demonstrations: the reference to compare with).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lnmdn_agents.evaluation.seeds import fork_torch_rng
from lnmdn_agents.policies.base import Policy

__all__ = ["evaluate_offline", "offline_metrics", "window_index"]

logger = logging.getLogger(__name__)


def _normalizer(policy: Policy) -> Any:
    return getattr(policy, "normalizer", None)


def _to_norm(policy: Policy, actions: Tensor) -> Tensor:
    norm = _normalizer(policy)
    return actions if norm is None else norm.normalize_action(actions)


def _check_ks(ks: Sequence[int]) -> list[int]:
    out = sorted({int(k) for k in ks})
    if not out or out[0] < 1:
        raise ValueError(f"ks must be a non-empty sequence of integers >= 1, got {ks=}")
    return out


def _third_difference(chunks: Tensor) -> Tensor:
    """(..., T, Da) -> (..., T - 3, Da) third finite difference along the horizon."""
    return (
        chunks[..., 3:, :]
        - 3 * chunks[..., 2:-1, :]
        + 3 * chunks[..., 1:-2, :]
        - chunks[..., :-3, :]
    )


def window_index(n: int, max_windows: int | None, seed: int) -> np.ndarray:
    """Indices of the windows :func:`evaluate_offline` evaluates.

    All ``n``, or a sorted seeded subset of ``max_windows``, so that other measurements (the
    bench's inference-step sweep) can use exactly the same windows.
    """
    if max_windows is None or max_windows >= n:
        if max_windows is not None and max_windows < 1:
            raise ValueError(f"max_windows must be >= 1 or None, got {max_windows=}")
        return np.arange(n)
    if max_windows < 1:
        raise ValueError(f"max_windows must be >= 1 or None, got {max_windows=}")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=max_windows, replace=False))


@torch.no_grad()
def offline_metrics(
    policy: Policy,
    obs: Tensor | np.ndarray,
    actions: Tensor | np.ndarray,
    *,
    ks: Sequence[int] = (1, 2, 5, 10),
    seed: int = 0,
    batch_size: int = 256,
    progress: bool = False,
) -> dict[str, Any]:
    """Offline metrics of ``policy`` on windows ``obs`` (N, To, Do) / ``actions`` (N, T, Da).

    Inputs are raw units (what the dataset stores); errors are reported in normalised action
    units (see the module docstring for each metric's definition).

    Args:
        policy: any object implementing :class:`~lnmdn_agents.policies.base.Policy`; if it has a
            ``normalizer`` (the built-in policies do), errors use its action scaling.
        obs: (N, To, Do) observation windows, raw units.
        actions: (N, T, Da) demonstrated action chunks, raw units.
        ks: the K values of best-of-K; max(ks) samples are drawn per window.
        seed: seeds torch's RNG for the sampling (the global RNG state is restored afterwards).
        batch_size: windows per forward pass.
        progress: show a tqdm bar over batches.

    Returns:
        A JSON-ready dict: ``n_windows``, ``action_units`` ("normalised"), the metrics above
        (``best_of_k_mse`` keyed by ``str(k)``, ``per_step_mse`` as a list of T floats).

    Raises:
        ValueError: shapes that do not match the policy's config, or bad ``ks``/``batch_size``.
    """
    cfg = policy.config
    obs_t = torch.as_tensor(np.asarray(obs) if not isinstance(obs, Tensor) else obs)
    act_t = torch.as_tensor(np.asarray(actions) if not isinstance(actions, Tensor) else actions)
    obs_t, act_t = obs_t.float(), act_t.float()
    n = obs_t.shape[0]
    # A policy's windows may hold more observations than its input (lwd trains on one per
    # action); the metrics condition on what the config says the model reads: the To history,
    # or the whole window for a config whose input is the window (the reference protocol).
    n_in = getattr(cfg, "input_obs_steps", cfg.n_obs_steps)
    if obs_t.ndim == 3 and obs_t.shape[1] == len(cfg.observation_delta_indices) > n_in:
        obs_t = obs_t[:, :n_in]
    if obs_t.ndim != 3 or obs_t.shape[1:] != (n_in, cfg.obs_dim):
        raise ValueError(
            f"obs must have shape (N, To, Do) = (N, {n_in}, {cfg.obs_dim}), "
            f"got {tuple(obs_t.shape)}"
        )
    if act_t.shape != (n, cfg.horizon, cfg.action_dim):
        raise ValueError(
            f"actions must have shape (N, T, Da) = ({n}, {cfg.horizon}, {cfg.action_dim}), "
            f"got {tuple(act_t.shape)}"
        )
    if n == 0:
        raise ValueError("offline_metrics needs at least one window, got N=0")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size=}")
    ks_sorted = _check_ks(ks)
    k_max = ks_sorted[-1]
    horizon, da = cfg.horizon, cfg.action_dim
    log_prob = getattr(policy, "log_prob", None)
    has_log_prob = callable(log_prob)

    sums: dict[str, float] = {
        "nll": 0.0,
        "mse_deterministic": 0.0,
        "mse_sample_mean": 0.0,
        "variance": 0.0,
        "jerk": 0.0,
        "jerk_deterministic": 0.0,
        "jerk_demo": 0.0,
    }
    best_sums = dict.fromkeys(ks_sorted, 0.0)
    per_step = torch.zeros(horizon, dtype=torch.float64)

    was_training = bool(getattr(policy, "training", False))
    if hasattr(policy, "eval"):
        policy.eval()
    starts: Iterable[int] = range(0, n, batch_size)
    if progress:
        from tqdm.auto import tqdm

        # a bar on a terminal only (disable=None): redraws flood a log file
        starts = tqdm(starts, desc="offline eval", unit="batch", leave=False, disable=None)
    device = torch.device(getattr(policy, "device", "cpu"))  # the windows go where it runs
    try:
        with fork_torch_rng(policy):
            torch.manual_seed(seed)
            for s in starts:
                o = obs_t[s : s + batch_size].to(device)
                a = act_t[s : s + batch_size].to(device)
                b = o.shape[0]
                a_n = _to_norm(policy, a).double()

                policy.reset(None)
                det = _to_norm(policy, policy.predict_chunk(o, deterministic=True).float()).double()
                policy.reset(None)
                samples = policy.sample_chunks(o, k_max)
                if tuple(samples.shape) != (b, k_max, horizon, da):
                    raise ValueError(
                        f"sample_chunks returned shape {tuple(samples.shape)}, expected "
                        f"(B, K, T, Da) = {(b, k_max, horizon, da)}"
                    )
                samp = _to_norm(policy, samples.float()).double()

                sq_det = (det - a_n) ** 2  # (B, T, Da)
                sums["mse_deterministic"] += sq_det.mean(dim=(1, 2)).sum().item()
                per_step += sq_det.mean(dim=2).sum(dim=0).cpu()
                mean_chunk = samp.mean(dim=1)
                sums["mse_sample_mean"] += ((mean_chunk - a_n) ** 2).mean(dim=(1, 2)).sum().item()
                per_sample = ((samp - a_n[:, None]) ** 2).mean(dim=(2, 3))  # (B, K)
                for k in ks_sorted:
                    best_sums[k] += per_sample[:, :k].min(dim=1).values.sum().item()
                if k_max > 1:
                    sums["variance"] += samp.var(dim=1, unbiased=True).mean(dim=(1, 2)).sum().item()
                if horizon >= 4:
                    sums["jerk"] += (_third_difference(samp) ** 2).mean(dim=(1, 2, 3)).sum().item()
                    sums["jerk_deterministic"] += (
                        (_third_difference(det) ** 2).mean(dim=(1, 2)).sum().item()
                    )
                    sums["jerk_demo"] += (_third_difference(a_n) ** 2).mean(dim=(1, 2)).sum().item()
                if log_prob is not None:
                    lp = log_prob(o, a)
                    sums["nll"] += (-lp.double() / (horizon * da)).sum().item()
    finally:
        if was_training and hasattr(policy, "train"):
            policy.train()

    out: dict[str, Any] = {"n_windows": int(n), "action_units": "normalised", "k_max": k_max}
    if has_log_prob:
        out["nll"] = sums["nll"] / n
        out["nll_kind"] = "bound" if getattr(policy, "log_prob_is_bound", False) else "exact"
    out["mse_deterministic"] = sums["mse_deterministic"] / n
    out["mse_sample_mean"] = sums["mse_sample_mean"] / n
    out["best_of_k_mse"] = {str(k): best_sums[k] / n for k in ks_sorted}
    out["per_step_mse"] = (per_step / n).tolist()
    out["diversity"] = math.sqrt(sums["variance"] / n) if k_max > 1 else None
    if horizon >= 4:
        out["jerk"] = sums["jerk"] / n
        out["jerk_deterministic"] = sums["jerk_deterministic"] / n
        out["jerk_demo"] = sums["jerk_demo"] / n
    return out


def evaluate_offline(
    policy: Policy,
    dataset_id: str,
    split: str = "test",
    ks: Sequence[int] = (1, 2, 5, 10),
    seed: int = 0,
    max_windows: int | None = None,
    batch_size: int = 256,
    split_seed: int = 0,
    progress: bool = True,
    protocol: str = "standard",
) -> dict[str, Any]:
    """Offline metrics of ``policy`` on one split of a Minari dataset's windows.

    The windows are cut by :func:`lnmdn_agents.data.make_splits` with the policy's own window
    (its config's ``observation_delta_indices`` and ``horizon``), from the same split as
    training (``split_seed`` and ``protocol`` must be the training run's).

    Args:
        policy: a policy (see :func:`offline_metrics`).
        dataset_id: Minari id, e.g. ``"lnmdn/pusht/expert-v0"``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        ks: K values for best-of-K MSE.
        seed: sampling seed (also picks the ``max_windows`` subset).
        max_windows: evaluate on a seeded random subset of at most this many windows.
        batch_size: windows per forward pass.
        split_seed: seed of the episode-level train/val/test split.
        progress: show a progress bar.
        protocol: ``"standard"`` (split by episode) or ``"reference"`` (split by window, the
            policy's window over the horizon); :mod:`lnmdn_agents.protocols`.

    Returns:
        :func:`offline_metrics`' dict plus ``dataset``, ``split``, ``seed`` and ``protocol``.

    Raises:
        ValueError: an unknown split or protocol, or a policy whose window is not the
            protocol's (train it with ``--protocol``).
    """
    from lnmdn_agents.data import make_splits
    from lnmdn_agents.protocols import get_protocol

    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split=}")
    proto = get_protocol(protocol)
    window = getattr(policy.config, "obs_window", "history")
    if window != proto.obs_window:
        raise ValueError(
            f"protocol {protocol!r} evaluates policies with obs_window={proto.obs_window!r}, but "
            f"this policy has obs_window={window!r}; evaluate it under the protocol it was "
            "trained with (lnmdn train --protocol ...)"
        )
    splits = make_splits(dataset_id, policy.config, seed=split_seed, split_unit=proto.split_unit)
    windows = getattr(splits, split)
    n = len(windows)
    if n == 0:
        raise ValueError(
            f"the {split!r} split of {dataset_id!r} has no windows; the dataset has too few "
            "episodes for a held-out split"
        )
    index = window_index(n, max_windows, seed)
    items = [windows[int(i)] for i in index]
    obs = torch.stack([torch.as_tensor(it["obs"]) for it in items])
    actions = torch.stack([torch.as_tensor(it["action"]) for it in items])
    logger.info("offline eval on %d %s windows of %s", len(items), split, dataset_id)
    result = offline_metrics(
        policy, obs, actions, ks=ks, seed=seed, batch_size=batch_size, progress=progress
    )
    return {"dataset": dataset_id, "split": split, "seed": seed, "protocol": protocol, **result}
