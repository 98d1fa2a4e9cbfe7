"""Inference latency (batch 1, median over many calls) and parameter counts by component.

Two latencies per policy, as the reference paper reports them:

* ``end_to_end_ms``: ``policy.predict(obs)`` on one raw observation window (To, Do) up to the
  executed actions (Ta, Da) as numpy: normalisation, backbone, head, unnormalisation.
* ``head_ms``: the same call with the observation backbone's output precomputed (the policy's
  ``backbone`` module answers from a cache), i.e. what the action head itself costs. None when the
  policy has no ``backbone`` attribute to separate.

Numbers are wall-clock medians on the current process's torch threads; compare policies measured
in the same run on the same machine, not across machines.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lnmdn_agents.evaluation.seeds import fork_torch_rng
from lnmdn_agents.policies.base import Policy

__all__ = ["count_parameters", "measure_latency", "policy_latency", "torch_threads"]


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` (None: leave it), then restore.

    Small-batch inference gains little from intra-op threads, and on a busy CPU extra threads
    cost far more than they give (spinning OpenMP workers): evaluation defaults to one thread.
    """
    if n is None:
        yield
        return
    if n < 1:
        raise ValueError(f"threads must be >= 1 or None, got {n}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def measure_latency(fn: Callable[[], Any], n_calls: int = 50, warmup: int = 5) -> dict[str, float]:
    """Time ``fn()``: ``warmup`` untimed calls, then ``n_calls`` timed ones.

    Returns:
        ``{"median_ms", "p10_ms", "p90_ms", "mean_ms", "n_calls"}``.
    """
    return _summary(_timed(fn, n_calls, warmup))


def _timed(fn: Callable[[], Any], n_calls: int, warmup: int) -> list[float]:
    if n_calls < 1 or warmup < 0:
        raise ValueError(f"need n_calls >= 1 and warmup >= 0, got {n_calls=}, {warmup=}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n_calls):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def _summary(times: list[float]) -> dict[str, float]:
    q = np.percentile(times, [10, 90])
    return {
        "median_ms": float(statistics.median(times)),
        "p10_ms": float(q[0]),
        "p90_ms": float(q[1]),
        "mean_ms": float(np.mean(times)),
        "n_calls": float(len(times)),
    }


@contextmanager
def cached_backbone(policy: Any, obs: Tensor) -> Iterator[bool]:
    """Inside the block, ``policy.backbone`` returns its outputs for ``obs`` without computing.

    Yields:
        True when the policy has a backbone (it is patched), False otherwise (nothing changed).
    """
    backbone = getattr(policy, "backbone", None)
    if not isinstance(backbone, nn.Module):
        yield False
        return
    check = getattr(policy, "check_obs", None)
    if callable(check):  # the window the backbone reads (a longer config window is completed)
        obs = check(obs)
    norm = getattr(policy, "normalizer", None)
    obs_n = norm.normalize_obs(obs) if norm is not None else obs
    patched: list[str] = []
    with torch.no_grad():
        cache = {"forward": backbone(obs_n)}
        tokens = getattr(backbone, "tokens", None)
        if callable(tokens):
            cache["tokens"] = tokens(obs_n)
    try:
        for name, value in cache.items():
            setattr(backbone, name, lambda *a, _v=value, **k: _v)
            patched.append(name)
        yield True
    finally:
        for name in patched:
            delattr(backbone, name)  # back to the class's method


def policy_latency(
    policy: Policy,
    n_calls: int = 50,
    warmup: int = 5,
    batch_size: int = 1,
    seed: int = 0,
    deterministic: bool = False,
) -> dict[str, Any]:
    """Median latency of one policy call, end to end and head alone (see the module doc).

    Args:
        policy: a policy; the observation is random in the normalised range [-1, 1].
        n_calls: timed calls per measurement.
        warmup: untimed calls first.
        batch_size: B (1 = the closed-loop case).
        seed: seed of the observation and of the policy's sampling.
        deterministic: passed to ``predict``.

    Returns:
        ``{"end_to_end_ms", "head_ms", "batch_size", "threads", "n_calls",
        "end_to_end": {...}, "head": {...}}`` (the nested dicts hold p10/p90/mean).
    """
    c = policy.config
    g = torch.Generator().manual_seed(seed)
    obs_n = torch.rand(batch_size, c.n_obs_steps, c.obs_dim, generator=g) * 2 - 1
    norm = getattr(policy, "normalizer", None)
    if norm is not None:
        lo, hi = norm.obs_min.cpu(), norm.obs_max.cpu()  # the observation is built on the CPU
        obs = (obs_n + 1) * 0.5 * (hi - lo) + lo
    else:
        obs = obs_n
    obs_np = obs.numpy()
    if hasattr(policy, "eval"):
        policy.eval()

    def call() -> Any:
        policy.reset(None)
        return policy.predict(obs_np, deterministic=deterministic)

    # Interleave the two measurements in rounds so that a change of machine load between them
    # (other processes, CPU frequency) does not bias one against the other.
    rounds = min(5, n_calls)
    per_round = [n_calls // rounds + (1 if r < n_calls % rounds else 0) for r in range(rounds)]
    e2e_ms: list[float] = []
    head_ms: list[float] = []
    has_backbone = False
    with fork_torch_rng(policy), torch.no_grad():
        torch.manual_seed(seed)
        for r, n in enumerate(per_round):
            e2e_ms += _timed(call, n, warmup if r == 0 else 0)
            with cached_backbone(policy, obs) as has_backbone:
                if has_backbone:
                    head_ms += _timed(call, n, warmup if r == 0 else 0)
    e2e = _summary(e2e_ms)
    head = _summary(head_ms) if has_backbone else None
    out: dict[str, Any] = {
        "end_to_end_ms": e2e["median_ms"],
        "head_ms": head["median_ms"] if head else None,
        "batch_size": batch_size,
        "threads": torch.get_num_threads(),
        "n_calls": n_calls,
        "end_to_end": e2e,
        "head": head,
    }
    return out


def count_parameters(policy: nn.Module | Any) -> dict[str, int]:
    """Trainable parameters by top-level component, plus ``"total"``.

    Components are the policy's direct sub-modules (``backbone``, ``encoder``, ``decoder``, ...);
    parameters registered directly on the policy are under ``"other"``. Frozen copies (EMA weights
    with ``requires_grad=False``) and buffers (normaliser statistics) are not counted.
    When the policy has a ``backbone``, ``"head_total"`` is everything else.
    """
    if not isinstance(policy, nn.Module):
        raise TypeError(f"count_parameters needs a torch nn.Module, got {type(policy).__name__}")
    out: dict[str, int] = {}
    counted = 0
    for name, child in policy.named_children():
        n = sum(p.numel() for p in child.parameters() if p.requires_grad)
        if n:
            out[name] = n
            counted += n
    total = sum(p.numel() for p in policy.parameters() if p.requires_grad)
    if total - counted:
        out["other"] = total - counted
    if "backbone" in out:
        out["head_total"] = total - out["backbone"]
    out["total"] = total
    return out
