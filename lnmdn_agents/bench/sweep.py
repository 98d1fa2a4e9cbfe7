"""Diffusion's speed against accuracy: a cell's sweep over inference step counts.

For a policy with ``num_inference_steps`` (diffusion, lwd), :func:`step_sweep` measures best-of-K
MSE and latency at each step count of the preset's ``diffusion_steps``; the latency-accuracy
figure draws the points.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lnmdn_agents.bench.presets import BenchPreset
from lnmdn_agents.evaluation.latency import policy_latency
from lnmdn_agents.evaluation.offline import offline_metrics, window_index
from lnmdn_agents.evaluation.runs import set_inference_steps

__all__ = ["step_sweep"]


def step_sweep(
    policy: Any,
    windows: Any,
    preset: BenchPreset,
    seed: int,
    table_offline: dict[str, Any],
    table_latency: dict[str, Any],
) -> list[dict[str, Any]]:
    """Best-of-K MSE and latency for each inference step count (diffusion's speed/accuracy).

    One source of numbers: at the policy's own step count the point *is* the table's
    (``table_offline``, ``table_latency``), not a second measurement. The other counts are
    measured with the same latency protocol on up to ``sweep_max_windows`` of the table's test
    windows (each point says how many: ``n_windows``).
    """
    table_index = window_index(len(windows), preset.max_windows, seed)
    idx = table_index
    if len(idx) > preset.sweep_max_windows:
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(idx, size=preset.sweep_max_windows, replace=False))
    items = [windows[int(i)] for i in idx]
    obs = torch.stack([torch.as_tensor(it["obs"]) for it in items])
    act = torch.stack([torch.as_tensor(it["action"]) for it in items])
    original = int(policy.config.num_inference_steps)
    limit = int(getattr(policy.config, "num_train_timesteps", max(preset.diffusion_steps)))
    points = []
    k_max = str(max(preset.ks))
    try:
        for steps in sorted({*preset.diffusion_steps, original}):
            if steps > limit:
                continue
            if steps == original:
                points.append(
                    {
                        "steps": steps,
                        "latency_ms": table_latency["end_to_end_ms"],
                        "mse": table_offline["best_of_k_mse"][k_max],
                        "mse_deterministic": table_offline["mse_deterministic"],
                        "k": int(k_max),
                        "n_windows": int(table_offline["n_windows"]),
                        "source": "table",
                    }
                )
                continue
            set_inference_steps(policy, steps)
            m = offline_metrics(policy, obs, act, ks=preset.ks, seed=seed)
            lat = policy_latency(policy, n_calls=preset.latency_calls, seed=seed)
            points.append(
                {
                    "steps": steps,
                    "latency_ms": lat["end_to_end_ms"],
                    "mse": m["best_of_k_mse"][k_max],
                    "mse_deterministic": m["mse_deterministic"],
                    "k": int(k_max),
                    "n_windows": len(items),
                    "source": "sweep",
                }
            )
    finally:
        set_inference_steps(policy, original)
    return points
