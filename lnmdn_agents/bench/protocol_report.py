"""The bench's protocol comparison: the two protocols side by side, and the liquid/diffusion ratio.

When a run's cells cover both protocols (:mod:`lnmdn_agents.protocols`; the ``reference``
preset), :func:`protocol_table` puts each (task, policy)'s standard and reference numbers next to
each other, and :func:`plot_protocol_ratios` draws how the liquid head compares with diffusion
under each protocol: the ratio of their best-of-K MSE (below 1: the liquid head's error is
smaller) and the difference of their closed-loop success rates, per task.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = [
    "PAIR",
    "has_both_protocols",
    "plot_protocol_ratios",
    "protocol_ratios",
    "protocol_table",
]

#: The paper's comparison: the liquid head against diffusion.
PAIR = ("liquid_mdn", "diffusion")
_PROTOCOLS = ("standard", "reference")


def _entry(summary: dict[str, Any], task: str, policy: str, protocol: str) -> dict[str, Any]:
    name = policy if protocol == "standard" else f"{policy} ({protocol})"
    return summary.get(task, {}).get(name) or {}


def _k_max(entry: dict[str, Any]) -> str | None:
    bok = (entry.get("offline") or {}).get("best_of_k_mse") or {}
    return max(bok, key=int) if bok else None


def _metrics(e: dict[str, Any]) -> dict[str, float]:
    """The compared numbers of one summary entry (NaN where missing)."""
    off = e.get("offline") or {}
    k = _k_max(e)
    nan = math.nan
    return {
        "params": float((e.get("params") or {}).get("total", nan)),
        "bok": float(off["best_of_k_mse"][k]) if k is not None else nan,
        "nll": float(off["nll"]) if off.get("nll") is not None else nan,
        "latency": float((e.get("latency") or {}).get("end_to_end_ms") or nan),
        "success": float((e.get("closed_loop") or {}).get("success_rate", nan)),
        "success_data": float((e.get("closed_loop_dataset") or {}).get("success_rate", nan)),
    }


def has_both_protocols(cells: list[dict[str, Any]]) -> bool:
    """Whether the cells cover the standard and the reference protocol."""
    return {c.get("protocol", "standard") for c in cells} >= set(_PROTOCOLS)


def _f(x: float, spec: str = ".3g") -> str:
    return "-" if not math.isfinite(x) else format(x, spec)


def protocol_table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: per task and policy, each metric as ``standard / reference``."""
    header = [
        "task",
        "policy",
        "params",
        "best-of-K MSE std / ref",
        "NLL/el std / ref",
        "latency ms std / ref",
        "success random std / ref",
        "success data-start std / ref",
    ]
    rows = []
    for task in sorted(summary):
        for policy in PAIR:
            std, ref = (_metrics(_entry(summary, task, policy, p)) for p in _PROTOCOLS)
            if all(math.isnan(v) for v in (*std.values(), *ref.values())):
                continue
            rows.append(
                [
                    task,
                    policy,
                    _f(std["params"] / 1e6, ".2f") + "M",
                    f"{_f(std['bok'])} / {_f(ref['bok'])}",
                    f"{_f(std['nll'], '.3f')} / {_f(ref['nll'], '.3f')}",
                    f"{_f(std['latency'], '.1f')} / {_f(ref['latency'], '.1f')}",
                    f"{_f(std['success'], '.2f')} / {_f(ref['success'], '.2f')}",
                    f"{_f(std['success_data'], '.2f')} / {_f(ref['success_data'], '.2f')}",
                ]
            )
    return header, rows


def protocol_ratios(summary: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """``{task: {protocol: {"mse_ratio", "success_diff", "success_data_diff"}}}``.

    ``mse_ratio``: the liquid head's best-of-K MSE over diffusion's; the two ``*_diff``: the
    liquid head's success rate minus diffusion's (random / dataset starts). NaN where a number
    is missing.
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    for task in sorted(summary):
        per: dict[str, dict[str, float]] = {}
        for proto in _PROTOCOLS:
            liq, dif = (_metrics(_entry(summary, task, p, proto)) for p in PAIR)
            per[proto] = {
                "mse_ratio": liq["bok"] / dif["bok"] if dif["bok"] > 0 else math.nan,
                "success_diff": liq["success"] - dif["success"],
                "success_data_diff": liq["success_data"] - dif["success_data"],
            }
        out[task] = per
    return out


def plot_protocol_ratios(summary: dict[str, Any], path: Path) -> Path | None:
    """Draw, per task, how liquid vs diffusion moves from the standard to the reference protocol.

    Three panels: best-of-K MSE ratio (log scale; below 1 favours the liquid head), and the
    success-rate difference from random and from dataset starts (above 0 favours it).
    Returns None when no task has both heads under both protocols.
    """
    ratios = {
        t: r
        for t, r in protocol_ratios(summary).items()
        if all(math.isfinite(r[p]["mse_ratio"]) for p in _PROTOCOLS)
    }
    if not ratios:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("mse_ratio", "best-of-K MSE, liquid / diffusion", True),
        ("success_diff", "success (random starts), liquid - diffusion", False),
        ("success_data_diff", "success (dataset starts), liquid - diffusion", False),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    x = [0, 1]
    for ax, (key, title, log) in zip(axes, panels, strict=True):
        for task, r in ratios.items():
            ys = [r[p][key] for p in _PROTOCOLS]
            ax.plot(x, ys, marker="o", label=task)
        ax.axhline(1.0 if log else 0.0, color="grey", lw=0.8, ls="--")
        if log:
            ax.set_yscale("log")
        ax.set_xticks(x, ["standard", "reference\n(future obs, window split)"])
        ax.set_xlim(-0.3, 1.3)
        ax.set_title(title, fontsize=10)
    axes[0].legend(fontsize=8)
    fig.suptitle("liquid_mdn against diffusion under the two protocols")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
