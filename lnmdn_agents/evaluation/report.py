"""Comparison tables, in plain text and Markdown, of evaluated runs.

Inputs are the JSON-ready dicts that :func:`~lnmdn_agents.evaluation.evaluate_offline`,
:func:`~lnmdn_agents.evaluation.evaluate` and :func:`~lnmdn_agents.evaluation.policy_latency`
return, grouped per run as ``{"name", "policy", "offline", "closed_loop", "latency", "params"}``.
The benchmark's figures are :mod:`~lnmdn_agents.evaluation.figures` (``plot_trajectories``, which
used to live here, is re-exported).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from lnmdn_agents.evaluation.figures import plot_trajectories

__all__ = ["comparison_rows", "format_table", "markdown_table", "plot_trajectories"]

logger = logging.getLogger(__name__)


def _fmt(x: Any, spec: str = ".3g") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return format(x, spec)


def comparison_rows(
    entries: Sequence[dict[str, Any]], first_column: str = "run"
) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the comparison table, one row per evaluated run.

    ``first_column`` names the column that holds each entry's ``name``.

    Columns: run, policy, parameters, NLL/element (``*`` = bound), deterministic MSE, best-of-1
    and best-of-K_max MSE, diversity, success rate [95% CI], mean score, mean episode length,
    latency (end to end / head, ms). Errors are in normalised action units. The offline
    columns (NLL to diversity) are left out when no entry has offline metrics. When some entry
    has ``closed_loop_dataset`` (episodes from held-out demonstration states), a column
    ``success data-start`` follows the success column (which is then the random starts').
    """
    k_max = 1
    for e in entries:
        bok = (e.get("offline") or {}).get("best_of_k_mse") or {}
        if bok:
            k_max = max(k_max, max(int(k) for k in bok))
    header = [
        first_column,
        "policy",
        "params",
        "NLL/el",
        "MSE det",
        "best-of-1",
        f"best-of-{k_max}",
        "diversity",
        "success [95% CI]",
        "score",
        "ep len",
        "train min",
        "latency ms e2e/head",
    ]
    data_starts = any(e.get("closed_loop_dataset") for e in entries)
    if data_starts:
        header.insert(header.index("success [95% CI]") + 1, "success data-start")
    rows = []
    for e in entries:
        off = e.get("offline") or {}
        cl = e.get("closed_loop") or {}
        cld = e.get("closed_loop_dataset") or {}
        lat = e.get("latency") or {}
        params = (e.get("params") or {}).get("total")
        nll = off.get("nll")
        nll_s = (
            "-"
            if nll is None
            else _fmt(nll, ".3f") + ("*" if off.get("nll_kind") == "bound" else "")
        )
        bok = off.get("best_of_k_mse") or {}
        succ = _success(cl)
        rows.append(
            [
                str(e.get("name", "")),
                str(e.get("policy", "")),
                "-" if params is None else f"{params / 1e6:.2f}M",
                nll_s,
                _fmt(off.get("mse_deterministic")),
                _fmt(bok.get("1")),
                _fmt(bok.get(str(k_max))),
                _fmt(off.get("diversity")),
                succ,
                *([_success(cld)] if data_starts else []),
                _fmt(cl.get("mean_score"), ".3f"),
                _fmt(cl.get("mean_length"), ".0f"),
                _fmt(e.get("train_minutes"), ".1f"),
                f"{_fmt(lat.get('end_to_end_ms'), '.1f')}/{_fmt(lat.get('head_ms'), '.1f')}",
            ]
        )
    if not any(e.get("offline") for e in entries):
        offline_cols = {"NLL/el", "MSE det", "best-of-1", f"best-of-{k_max}", "diversity"}
        keep = [i for i, h in enumerate(header) if h not in offline_cols]
        header = [header[i] for i in keep]
        rows = [[r[i] for i in keep] for r in rows]
    return header, rows


def _success(cl: dict[str, Any]) -> str:
    """``0.40 [0.22, 0.61] (n=20)``, or ``-`` when there is no closed-loop result."""
    if not cl:
        return "-"
    lo, hi = cl.get("success_ci95", [math.nan, math.nan])
    return f"{cl['success_rate']:.2f} [{lo:.2f}, {hi:.2f}] (n={cl['n_episodes']})"


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Fixed-width text table."""
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([line, sep, *body])


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """GitHub-flavoured Markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)
