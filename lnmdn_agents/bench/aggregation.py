"""Combining finished cells: per (task, policy) means over seeds, intervals and curves.

:func:`aggregate` reduces the cells at each (task, policy)'s largest training fraction to one
summary entry (offline metrics and latency averaged over seeds; closed-loop successes pooled into
one Wilson interval) and keeps best-of-K MSE per fraction for the sample-efficiency figure;
:func:`val_nll_curves` averages the validation NLL curves for the learning figure. The report
(:mod:`lnmdn_agents.bench.report`) writes what they return.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

from lnmdn_agents.evaluation.rollout import wilson_interval

__all__ = ["aggregate", "series_name", "val_nll_curves"]


def series_name(cell: dict[str, Any]) -> str:
    """How tables and figures name a cell's policy, its protocol labelled.

    ``liquid_mdn`` under the standard protocol, ``liquid_mdn (reference)`` under the reference one.
    """
    protocol = cell.get("protocol", "standard")
    return cell["policy"] if protocol == "standard" else f"{cell['policy']} ({protocol})"


def _pooled(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Closed-loop results of several seeds as one: successes pooled, one Wilson interval."""
    n_succ = sum(cl["n_successes"] for cl in results)
    n_ep = sum(cl["n_episodes"] for cl in results)
    lo, hi = wilson_interval(n_succ, n_ep)
    return {
        "success_rate": n_succ / n_ep,
        "success_ci95": [lo, hi],
        "n_successes": n_succ,
        "n_episodes": n_ep,
        "mean_score": _mean_std([cl["mean_score"] for cl in results])[0],
        "mean_length": _mean_std([cl["mean_length"] for cl in results])[0],
    }


def _mean_std(values: list[float | None]) -> tuple[float, float]:
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if arr.size == 0:
        return math.nan, math.nan
    return float(arr.mean()), float(arr.std())


def aggregate(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Per (task, policy) at the largest fraction: metrics averaged over seeds; plus the curves."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for c in cells:
        groups[(c["task"], series_name(c))].append(c)
    summary: dict[str, dict[str, Any]] = defaultdict(dict)
    efficiency: dict[str, dict[str, dict[float, tuple[float, float]]]] = defaultdict(dict)
    for (task, policy), cs in sorted(groups.items()):
        top = max(c["fraction"] for c in cs)
        full = [c for c in cs if c["fraction"] == top]
        off = [c["offline"] for c in full]
        ks = sorted({k for o in off for k in o["best_of_k_mse"]}, key=int)
        entry: dict[str, Any] = {
            "task": task,
            "policy": policy,
            "protocol": full[0].get("protocol", "standard"),
            "fraction": top,
            "seeds": sorted(c["seed"] for c in full),
            "params": full[0]["params"],
            "train_minutes": _mean_std([c.get("train_minutes") for c in full])[0],
            "latency": {
                "end_to_end_ms": _mean_std([c["latency"]["end_to_end_ms"] for c in full])[0],
                "head_ms": _mean_std([c["latency"].get("head_ms") for c in full])[0],
            },
            "offline": {
                "nll": _mean_std([o.get("nll") for o in off])[0] if "nll" in off[0] else None,
                "nll_kind": off[0].get("nll_kind"),
                "mse_deterministic": _mean_std([o["mse_deterministic"] for o in off])[0],
                "mse_sample_mean": _mean_std([o["mse_sample_mean"] for o in off])[0],
                "best_of_k_mse": {
                    k: _mean_std([o["best_of_k_mse"][k] for o in off])[0] for k in ks
                },
                "best_of_k_mse_std": {
                    k: _mean_std([o["best_of_k_mse"][k] for o in off])[1] for k in ks
                },
                "per_step_mse": np.mean([o["per_step_mse"] for o in off], axis=0).tolist(),
                "diversity": _mean_std([o.get("diversity") for o in off])[0],
                "jerk": _mean_std([o.get("jerk") for o in off])[0],
                "jerk_demo": _mean_std([o.get("jerk_demo") for o in off])[0],
                "n_windows": off[0]["n_windows"],
            },
        }
        for key in ("closed_loop", "closed_loop_dataset"):
            cls = [c[key] for c in full if c.get(key)]
            if cls:
                entry[key] = _pooled(cls)
                if key == "closed_loop_dataset":
                    entry[key]["max_steps"] = cls[0].get("starts", {}).get("max_steps")
        summary[task][policy] = entry
        k_max = ks[-1] if ks else "1"
        for frac in sorted({c["fraction"] for c in cs}):
            vals = [c["offline"]["best_of_k_mse"][k_max] for c in cs if c["fraction"] == frac]
            efficiency[task].setdefault(policy, {})[frac] = _mean_std(vals)
    return {"summary": summary, "efficiency": efficiency}


def val_nll_curves(cells: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Validation NLL per epoch, per task and policy, over the seeds at the largest fraction.

    Returns:
        ``{task: {policy: {"kind", "epoch", "val/nll", "val/nll_std"}}}``: the mean curve over
        seeds (cut to the shortest), its standard deviation (empty with one seed) and ``kind``
        ``"bound"`` when the NLL is an upper bound (diffusion), else ``"exact"``.
    """
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    by: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for c in cells:
        by[(c["task"], series_name(c))].append(c)
    for (task, policy), cs in by.items():
        top = max(c["fraction"] for c in cs)
        series = [c["curves"] for c in cs if c["fraction"] == top and c["curves"].get("val/nll")]
        if not series:
            continue
        n = min(len(s["val/nll"]) for s in series)
        vals = np.array([s["val/nll"][:n] for s in series], dtype=float)
        out[task][policy] = {
            "kind": "bound"
            if any(c.get("offline", {}).get("nll_kind") == "bound" for c in cs)
            else "exact",
            "epoch": series[0]["epoch"][:n],
            "val/nll": vals.mean(0).tolist(),
            "val/nll_std": vals.std(0).tolist() if len(series) > 1 else [],
        }
    return out
