"""The benchmark's figures (matplotlib, Agg): curves, best-of-K, per-step error, trajectories.

Each ``plot_*`` function takes the aggregated numbers per task and policy (its docstring gives the
layout), draws one panel per task (or per task and policy) with a stable colour per policy
(:func:`color`), saves the figure to ``path`` and returns it, or None when there is nothing to
draw. matplotlib is imported on the first figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "COLORS",
    "color",
    "plot_best_of_k",
    "plot_curves",
    "plot_latency_accuracy",
    "plot_learning_curves",
    "plot_per_step",
    "plot_sample_efficiency",
    "plot_trajectories",
]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 110, "font.size": 10, "axes.grid": True, "grid.alpha": 0.3})
    return plt


COLORS = {
    "liquid_mdn": "#1f77b4",
    "diffusion": "#d62728",
    "lwd": "#2ca02c",
    "lstm_mdn": "#9467bd",
    "gru_mdn": "#ff7f0e",
}


def color(policy: str) -> str:
    """A stable colour per policy name."""
    if policy in COLORS:
        return COLORS[policy]
    palette = ["#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
    return palette[sum(map(ord, policy)) % len(palette)]


def _plain_log(ax: Any, x: bool = False, y: bool = True) -> None:
    """Log scale with tick labels written as plain numbers (0.2, 0.5, 20), not 2 x 10^-1."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fmt = FuncFormatter(lambda v, _pos: f"{v:.3g}")
    for use, axis, setter in ((x, ax.xaxis, ax.set_xscale), (y, ax.yaxis, ax.set_yscale)):
        if not use:
            continue
        setter("log")
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(fmt)
        axis.set_minor_formatter(NullFormatter())


def _axes(plt: Any, n: int, width: float = 4.6, height: float = 3.6) -> tuple[Any, list[Any]]:
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, list(axes[0])


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def plot_curves(
    curves: dict[str, dict[str, dict[str, Any]]], path: Path, key: str = "val/nll"
) -> Path | None:
    """``curves[task][policy] = {"epoch": [...], key: [...], "kind": "exact"|"bound"}``.

    One panel per (task, policy), each with its own y axis: the mixture's exact NLL and
    diffusion's bound are on different scales and are not comparable numbers.
    """
    panels = [
        (task, policy, c)
        for task in curves
        for policy, c in sorted(curves[task].items())
        if c.get(key)
    ]
    if not panels:
        return None
    plt = _plt()
    fig, axes = _axes(plt, len(panels), width=4.0, height=3.3)
    for ax, (task, policy, c) in zip(axes, panels, strict=True):
        ep = [e + 1 for e in (c.get("epoch") or range(len(c[key])))]
        m = np.asarray(c[key], dtype=float)
        ax.plot(ep, m, marker="o", ms=3, color=color(policy), label=policy)
        if c.get(f"{key}_std"):
            sd = np.asarray(c[f"{key}_std"], dtype=float)
            ax.fill_between(ep, m - sd, m + sd, color=color(policy), alpha=0.15)
        kind = c.get("kind") or "exact"
        ax.set_title(f"{task} · {policy}", fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"val NLL / element ({kind})")
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle("Validation NLL per action element over training (normalised units)", fontsize=11)
    return _save(fig, path)


def plot_learning_curves(
    curves: dict[str, dict[str, dict[str, list[float]]]], path: Path
) -> Path | None:
    """``curves[task][policy] = {"train_minutes": [...], "success_rate": [...], ...}``.

    Closed-loop validation success against training minutes (the trainer's ``eval_every``
    episodes on the validation seeds), one panel per task, a line per policy.
    """
    data = {
        task: {p: c for p, c in per.items() if c.get("success_rate")}
        for task, per in curves.items()
    }
    data = {task: per for task, per in data.items() if per}
    if not data:
        return None
    plt = _plt()
    fig, axes = _axes(plt, len(data))
    for ax, (task, per_policy) in zip(axes, data.items(), strict=True):
        for policy, c in sorted(per_policy.items()):
            ax.plot(c["train_minutes"], c["success_rate"], marker="o", ms=3,
                    color=color(policy), label=policy)  # fmt: skip
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("training minutes (one thread)")
        ax.set_ylabel("validation success rate")
        ax.set_ylim(-0.03, 1.03)
        ax.legend(fontsize=8)
    fig.suptitle("Closed-loop validation success against training time", fontsize=11)
    return _save(fig, path)


def plot_best_of_k(data: dict[str, dict[str, dict[str, float]]], path: Path) -> Path | None:
    """``data[task][policy] = {"1": mse, "2": ..., ...}`` -> best-of-K MSE against K (log y)."""
    if not data:
        return None
    plt = _plt()
    fig, axes = _axes(plt, len(data))
    for ax, (task, per_policy) in zip(axes, data.items(), strict=True):
        for policy, bok in sorted(per_policy.items()):
            ks = sorted(int(k) for k in bok)
            ax.plot(ks, [bok[str(k)] for k in ks], marker="o", color=color(policy), label=policy)
        _plain_log(ax, x=True, y=True)
        ax.set_xticks(ks)
        ax.set_xticklabels([str(k) for k in ks])
        ax.set_title(f"{task}: best-of-K MSE (lower is better)")
        ax.set_xlabel("K (samples drawn)")
        ax.set_ylabel("MSE (normalised action units)")
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_per_step(
    data: dict[str, dict[str, list[float]]],
    path: Path,
    executed: tuple[int, int] | None = None,
) -> Path | None:
    """``data[task][policy] = per-step MSE (T,)`` -> error against the horizon step.

    ``executed = (To - 1, Ta)`` shades the steps a closed-loop rollout executes.
    """
    if not data:
        return None
    plt = _plt()
    fig, axes = _axes(plt, len(data))
    for ax, (task, per_policy) in zip(axes, data.items(), strict=True):
        for policy, err in sorted(per_policy.items()):
            ax.plot(range(len(err)), err, marker="o", ms=3, color=color(policy), label=policy)
        _plain_log(ax)
        if executed is not None:
            start, ta = executed
            ax.axvspan(start - 0.5, start + ta - 0.5, color="grey", alpha=0.12, label="executed")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_title(f"{task}: error along the predicted chunk")
        ax.set_xlabel("horizon step t (0 = first observed step)")
        ax.set_ylabel("MSE of the deterministic chunk")
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_sample_efficiency(
    data: dict[str, dict[str, dict[float, tuple[float, float]]]],
    path: Path,
    ylabel: str = "best-of-10 MSE (normalised)",
) -> Path | None:
    """``data[task][policy][fraction] = (mean, std over seeds)`` -> metric against data fraction."""
    tasks = [t for t in data if any(len(v) > 1 for v in data[t].values())]
    if not tasks:
        return None
    plt = _plt()
    fig, axes = _axes(plt, len(tasks))
    for ax, task in zip(axes, tasks, strict=True):
        for policy, per_frac in sorted(data[task].items()):
            fr = sorted(per_frac)
            m = np.array([per_frac[f][0] for f in fr])
            s = np.array([per_frac[f][1] for f in fr])
            ax.errorbar(
                [100 * f for f in fr],
                m,
                yerr=s,
                marker="o",
                capsize=3,
                color=color(policy),
                label=policy,
            )
        _plain_log(ax, x=True, y=True)
        ax.set_title(f"{task}: sample efficiency")
        ax.set_xlabel("training episodes used (%)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_trajectories(
    data: dict[str, dict[str, dict[str, Any]]], path: Path, n_windows: int = 2
) -> Path | None:
    """Sampled chunks against the demonstration, in each task's plane.

    ``data[task][policy] = {"demo": (W, T, Da), "samples": (W, K, T, Da), "obs": (W, To, Do)}``
    in raw units, drawn as the first two action dimensions, named by ``"labels"`` (x, y) when
    given. With ``"xy_demo"`` (W, L, 2) and ``"xy_samples"`` (W, K, L, 2) (positions, e.g. the
    ball's path in a maze) those are drawn instead, over ``"walls"`` (cell centres, 1 x 1).
    One row per task, one column per (window, policy).
    """
    if not data:
        return None
    plt = _plt()
    tasks = list(data)
    policies = sorted({p for t in tasks for p in data[t]})
    n_cols = n_windows * len(policies)
    fig, grid = plt.subplots(
        len(tasks), n_cols, figsize=(3.3 * n_cols, 3.3 * len(tasks)), squeeze=False
    )
    for r, task in enumerate(tasks):
        for w in range(n_windows):
            for p_i, policy in enumerate(policies):
                ax = grid[r][w * len(policies) + p_i]
                d = data[task].get(policy)
                if d is None or len(d["demo"]) <= w:
                    ax.axis("off")
                    continue
                if "xy_demo" in d:
                    demo = np.asarray(d["xy_demo"][w], dtype=float)
                    samples = [np.asarray(s, dtype=float) for s in d["xy_samples"][w]]
                    for wx, wy in d.get("walls", []):
                        ax.add_patch(
                            plt.Rectangle((wx - 0.5, wy - 0.5), 1, 1, color="0.8", zorder=0)
                        )
                else:
                    demo = np.asarray(d["demo"])[w]
                    samples = list(np.asarray(d["samples"])[w])
                for k, s in enumerate(samples):
                    ax.plot(
                        s[:, 0],
                        s[:, 1] if s.shape[1] > 1 else np.arange(len(s)),
                        color=color(policy),
                        alpha=0.45,
                        lw=1,
                        label="samples" if k == 0 else None,
                    )
                ax.plot(
                    demo[:, 0],
                    demo[:, 1] if demo.shape[1] > 1 else np.arange(len(demo)),
                    color="black",
                    lw=2.2,
                    marker="o",
                    ms=2.5,
                    label="demonstration",
                )
                ax.plot(demo[0, 0], demo[0, 1] if demo.shape[1] > 1 else 0, "k*", ms=10)
                ax.set_title(f"{task} · {policy} · window {w}", fontsize=9)
                xlabel, ylabel = d.get("labels") or ("action dim 0", "action dim 1")
                ax.set_xlabel(xlabel)
                ax.set_ylabel(ylabel)
                ax.set_aspect("equal", adjustable="datalim")
                if w == 0 and p_i == 0:
                    ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def plot_latency_accuracy(
    data: dict[str, dict[str, list[dict[str, float]]]],
    path: Path,
    ylabel: str = "best-of-10 MSE (normalised)",
) -> Path | None:
    """``data[task][policy] = [{"steps", "latency_ms", "mse"}, ...]`` -> MSE against latency."""
    if not data:
        return None
    plt = _plt()
    fig, axes = _axes(plt, len(data), width=5.2, height=3.9)
    for ax, (task, per_policy) in zip(axes, data.items(), strict=True):
        for policy, points in sorted(per_policy.items()):
            pts = sorted(points, key=lambda p: p["latency_ms"])
            xs = [p["latency_ms"] for p in pts]
            ys = [p["mse"] for p in pts]
            ax.plot(xs, ys, marker="o", color=color(policy), label=policy)
            for p in pts:
                if "steps" in p:
                    ax.annotate(
                        f"{int(p['steps'])} step{'s' if int(p['steps']) != 1 else ''}",
                        (p["latency_ms"], p["mse"]),
                        textcoords="offset points",
                        xytext=(4, 4),
                        fontsize=7,
                    )
        _plain_log(ax, x=True, y=True)
        ax.margins(x=0.18, y=0.12)
        ax.set_title(f"{task}: accuracy against latency")
        ax.set_xlabel("latency per chunk, batch 1 (ms, median)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    return _save(fig, path)
