"""The bench's outputs: ``results.json``, ``report.md`` and the figures under ``figures/``.

:func:`write_report` aggregates the finished cells
(:func:`lnmdn_agents.bench.aggregation.aggregate`) into the comparison table (the same columns
``lnmdn eval`` prints), draws the figures (validation NLL, the closed-loop learning curves,
best-of-K, per-horizon error, sample efficiency, sampled trajectories, latency against accuracy)
and writes the Markdown report: the table, the command, the figures with their captions, the gifs
and each cell's settings.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from lnmdn_agents.bench.aggregation import aggregate, series_name, val_nll_curves
from lnmdn_agents.bench.presets import BenchPreset
from lnmdn_agents.bench.protocol_report import (
    has_both_protocols,
    plot_protocol_ratios,
    protocol_ratios,
    protocol_table,
)
from lnmdn_agents.checkpoint import atomic_write_text
from lnmdn_agents.evaluation.figures import (
    plot_best_of_k,
    plot_curves,
    plot_latency_accuracy,
    plot_learning_curves,
    plot_per_step,
    plot_sample_efficiency,
    plot_trajectories,
)
from lnmdn_agents.evaluation.report import comparison_rows, markdown_table

__all__ = ["write_report"]


def write_report(
    out: Path,
    cells: list[dict[str, Any]],
    preset: BenchPreset,
    failed: list[dict[str, Any]] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Aggregate ``cells`` into ``results.json``, ``report.md`` and ``figures/``.

    ``failed`` (cells that failed on every attempt in this run, as
    :meth:`lnmdn_agents.bench.executors.CellFailure.to_dict` gives them) is listed in both;
    ``command`` is the command line recorded in the report (None: called from Python).
    """
    failed = failed or []
    agg = aggregate(cells)
    summary = agg["summary"]
    figures = _draw_figures(out / "figures", cells, agg, preset)
    entries = [{**e, "name": f"{task}"} for task, ps in summary.items() for e in ps.values()]
    header, rows = comparison_rows(entries, first_column="task")
    both = has_both_protocols(cells)
    protocols: dict[str, Any] | None = None
    if both:
        p_header, p_rows = protocol_table(summary)
        figures["protocol_ratios"] = plot_protocol_ratios(
            summary, out / "figures" / "protocol_ratios.png"
        )
        protocols = {"header": p_header, "rows": p_rows, "ratios": protocol_ratios(summary)}
    results = {
        "command": command,
        "preset": dataclasses.asdict(preset),
        "n_cells": len(cells),
        "summary": summary,
        "efficiency": {
            t: {p: {str(f): v for f, v in d.items()} for p, d in ps.items()}
            for t, ps in agg["efficiency"].items()
        },
        "cells": [{k: v for k, v in c.items() if k not in ("trajectories",)} for c in cells],
        "figures": {k: str(v) for k, v in figures.items() if v is not None},
        "table": {"header": header, "rows": rows},
        "protocols": protocols,
        "failed": failed,
    }
    atomic_write_text(out / "results.json", json.dumps(results, indent=1) + "\n")
    report = _markdown(preset, cells, header, rows, figures, out, command, protocols)
    if failed:
        report += (
            "\n## Failed cells\n\nNot in the tables above (their errors are in results.json); "
            "rerun the same command to retry them.\n\n| cell | attempts | last error |\n"
            "|---|---|---|\n"
        )
        report += "".join(
            f"| {f['cell']} | {f['attempts']} | {f['error'].replace('|', '/')} |\n" for f in failed
        )
    atomic_write_text(out / "report.md", report)
    return results


def _draw_figures(
    fig_dir: Path, cells: list[dict[str, Any]], agg: dict[str, Any], preset: BenchPreset
) -> dict[str, Path | None]:
    """Draw the report's figures into ``fig_dir``; each key maps to its file (None: not drawn).

    Per (task, policy), the learning curve, the sampled trajectories and the step sweep are
    those of the first cell that has them, in order of seed and then of decreasing fraction.
    """
    summary = agg["summary"]
    figures: dict[str, Path | None] = {}
    figures["val_nll"] = plot_curves(val_nll_curves(cells), fig_dir / "val_nll.png")
    learning: dict[str, dict[str, Any]] = defaultdict(dict)
    for c in sorted(cells, key=lambda c: (c["seed"], -c["fraction"])):
        if c.get("learning_curve") and series_name(c) not in learning[c["task"]]:
            learning[c["task"]][series_name(c)] = c["learning_curve"]
    figures["learning_curves"] = plot_learning_curves(
        dict(learning), fig_dir / "learning_curves.png"
    )
    figures["best_of_k"] = plot_best_of_k(
        {t: {p: e["offline"]["best_of_k_mse"] for p, e in ps.items()} for t, ps in summary.items()},
        fig_dir / "best_of_k.png",
    )
    cfg0 = cells[0].get("policy_config", {})
    figures["per_horizon"] = plot_per_step(
        {t: {p: e["offline"]["per_step_mse"] for p, e in ps.items()} for t, ps in summary.items()},
        fig_dir / "per_horizon.png",
        executed=(cfg0["n_obs_steps"] - 1, cfg0["n_action_steps"]) if cfg0 else None,
    )
    figures["sample_efficiency"] = plot_sample_efficiency(
        agg["efficiency"],
        fig_dir / "sample_efficiency.png",
        ylabel=f"best-of-{max(preset.ks)} MSE (normalised)",
    )
    traj: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    sweep: dict[str, dict[str, list[dict[str, float]]]] = defaultdict(dict)
    for c in sorted(cells, key=lambda c: (c["seed"], -c["fraction"])):
        name = series_name(c)
        if c.get("trajectories") and name not in traj[c["task"]]:
            traj[c["task"]][name] = c["trajectories"]
        if name in sweep[c["task"]]:
            continue
        if c.get("step_sweep"):
            sweep[c["task"]][name] = c["step_sweep"]
        elif c["fraction"] == max(x["fraction"] for x in cells if x["task"] == c["task"]):
            k = str(max(int(k) for k in c["offline"]["best_of_k_mse"]))
            sweep[c["task"]][name] = [
                {
                    "latency_ms": c["latency"]["end_to_end_ms"],
                    "mse": c["offline"]["best_of_k_mse"][k],
                }
            ]
    figures["trajectories"] = plot_trajectories(
        dict(traj), fig_dir / "trajectories.png", n_windows=preset.trajectory_windows
    )
    has_sweep = any(len(v) > 1 for ps in sweep.values() for v in ps.values())
    figures["latency_accuracy"] = (
        plot_latency_accuracy(
            dict(sweep),
            fig_dir / "latency_accuracy.png",
            ylabel=f"best-of-{max(preset.ks)} MSE (normalised)",
        )
        if has_sweep
        else None
    )
    return figures


def _markdown(
    preset: BenchPreset,
    cells: list[dict[str, Any]],
    header: list[str],
    rows: list[list[str]],
    figures: dict[str, Path | None],
    out: Path,
    command: str | None = None,
    protocols: dict[str, Any] | None = None,
) -> str:
    training = (
        "each trained by its committed recipe (`lnmdn_agents/recipes/<task>/<policy>.json`) and "
        "evaluated at the checkpoint its closed-loop validation selected."
        if preset.recipes
        else f"{preset.epochs} epoch(s) each."
    )
    lines = [
        f"# lnmdn bench: preset `{preset.name}`",
        "",
        "Command: " + (f"`{command}`" if command else "run from Python (`run_bench`)"),
        "",
        f"{len(cells)} cell(s): tasks {sorted({c['task'] for c in cells})}, policies "
        f"{sorted({c['policy'] for c in cells})}, fractions "
        f"{sorted({c['fraction'] for c in cells})}, seeds {sorted({c['seed'] for c in cells})}; "
        f"{training}",
        "",
        "## Comparison (largest training fraction, mean over seeds)",
        "",
        markdown_table(header, rows),
        "",
        "Errors are mean squared errors in normalised action units ([-1, 1] per action "
        "dimension). NLL/el: negative log-likelihood per action element (`*`: an upper bound, "
        "for diffusion). best-of-K: per test window, the best of K sampled chunks. Success: "
        "closed-loop episodes with `is_success`, 95% Wilson interval; score: mean of each "
        "episode's best task score (Push-T coverage / 0.95, clipped). Latency: median per "
        "chunk at batch 1, end to end / head alone (backbone cached).",
        "",
    ]
    if any(c.get("closed_loop_dataset") for c in cells):
        lines += [
            "success data-start: episodes started at the simulator states of held-out "
            f"demonstration windows (at most {preset.start_steps or 'the task limit of'} steps); "
            "the success column beside it starts from the random test seeds "
            "(`lnmdn_agents.evaluation.starts`).",
            "",
        ]
    if protocols is not None:
        lines += [
            "## Protocols side by side",
            "",
            "`(reference)` marks the liquid-MDN paper's protocol: the observation window spans "
            "the horizon (future observations included) and train/val/test are a random split "
            "of windows; the other rows are the standard protocol (To past observations, split "
            "by episode). In closed loop the reference policies get their past observations "
            "with the later steps filled by the current one (`lnmdn_agents.protocols`).",
            "",
            markdown_table(protocols["header"], protocols["rows"]),
            "",
        ]
    captions = {
        "val_nll": "Validation NLL per action element over training epochs.",
        "learning_curves": "Closed-loop validation success (validation seeds 50000+) against "
        "training minutes, for the runs that validate in closed loop (the recipes).",
        "best_of_k": "Best-of-K MSE against the number of samples K.",
        "per_horizon": "Error of the deterministic chunk at each step of the horizon.",
        "sample_efficiency": "Best-of-K MSE against the share of training episodes used.",
        "trajectories": "Sampled chunks (colour) against the demonstration (black), in each "
        "task's own plane: Push-T as the agent's target positions (px); PointMaze as the "
        "ball's x-y path in the maze (m, walls grey), simulated from the window's state by "
        "executing each chunk's actions. The star marks the current step.",
        **(
            {
                "protocol_ratios": "liquid_mdn against diffusion under each protocol, per task: "
                "the ratio of their best-of-K MSE (below 1: the liquid head's error is smaller) "
                "and the difference of their success rates from random and dataset starts."
            }
            if protocols is not None
            else {}
        ),
        "latency_accuracy": "Accuracy against latency: diffusion at several inference step "
        "counts, other policies as single points. Each policy's point at its own step count "
        "is the table's (same windows, same latency measurement)"
        + _sweep_windows_note(cells)
        + ".",
    }
    lines += ["## Figures", ""]
    for key, cap in captions.items():
        path = figures.get(key)
        if path is None:
            lines += [f"- {cap} (not drawn: this run has too few cells for it)", ""]
        else:
            lines += [f"![{key}]({path.relative_to(out)})", "", cap, ""]
    videos = [(c["cell"], v) for c in cells for v in (c.get("closed_loop") or {}).get("videos", [])]
    if videos:
        lines += ["## Closed-loop episodes", ""]
        for cid, video in videos:
            rel = os.path.relpath(Path(video).resolve(), out.resolve())
            lines += [f"![{cid}: {Path(video).stem}]({rel})", "", f"{cid}: {Path(video).stem}", ""]
    lines += [
        "## Cells",
        "",
        "Each cell's training settings and its policy's fields that differ from the defaults "
        "(`lnmdn policies NAME` lists the defaults).",
        "",
        "| cell | policy config (non-default) | epochs | batch | lr | train s | test windows | "
        "wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        tc = c.get("train_config") or {}
        lines.append(
            f"| {c['cell']} | {_config_changes(c)} | {tc.get('epochs', '-')} "
            f"| {tc.get('batch_size', '-')} | {tc.get('lr', '-')} | {c['train_wall_time_s']:.0f} "
            f"| {c['offline']['n_windows']} | {c['wall_time_s']:.0f} |"
        )
    commands = sorted({c["command"] for c in cells if c.get("command")})
    if commands:
        lines += ["", "Cells computed by: " + "; ".join(f"`{x}`" for x in commands)]
    return "\n".join(lines) + "\n"


def _config_changes(cell: dict[str, Any]) -> str:
    """``d_model=64, down_dims=24,48,48``: the cell's policy fields that differ from defaults."""
    from lnmdn_agents.policies import get_policy_class
    from lnmdn_agents.policy_cli import cli_value

    cfg = cell.get("policy_config") or {}
    try:
        default = get_policy_class(cell["policy"]).config_class().to_dict()
    except KeyError:
        return "-"
    changed = [
        f"{k}={cli_value(v)}"
        for k, v in cfg.items()
        if k not in ("name", "obs_dim", "action_dim")
        and k in default
        and (tuple(v) if isinstance(v, list) else v)
        != (tuple(default[k]) if isinstance(default[k], list) else default[k])
    ]
    return ", ".join(changed) or "(defaults)"


def _sweep_windows_note(cells: list[dict[str, Any]]) -> str:
    counts = sorted(
        {
            p["n_windows"]
            for c in cells
            for p in c.get("step_sweep") or []
            if p.get("source") == "sweep" and "n_windows" in p
        }
    )
    if not counts:
        return ""
    return f"; the other step counts are measured on {'/'.join(map(str, counts))} of those windows"
