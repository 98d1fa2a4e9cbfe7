"""``run_bench``: run the cells of a preset not yet done, then write the report.

The cells to compute are the preset's (:func:`lnmdn_agents.bench.cells.plan_cells`, filtered)
whose result file is missing (all of them with ``force``). The ``local`` executor computes them
one after the other in this process, or, with the preset's ``jobs`` above 1, in worker processes
(:func:`lnmdn_agents.bench.executors.run_cells_processes`); ``ray`` hands them to
:func:`lnmdn_agents.bench.executors.run_cells_ray`. Then every finished cell under
``<out>/cells/``, computed now or before or elsewhere, goes into the report
(:func:`lnmdn_agents.bench.report.write_report`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lnmdn_agents.bench.cells import cell_file, cell_id, load_cells, plan_cells, run_cell
from lnmdn_agents.bench.executors import (
    EXECUTORS,
    CellFailure,
    CellsFailedError,
    local_jobs,
    run_cells_processes,
    run_cells_ray,
)
from lnmdn_agents.bench.presets import BenchPreset
from lnmdn_agents.bench.report import write_report

__all__ = ["run_bench"]

logger = logging.getLogger(__name__)


def run_bench(
    preset: BenchPreset,
    out: str | Path | None = None,
    *,
    task: str | None = None,
    policy: str | None = None,
    cell: str | None = None,
    force: bool = False,
    report_only: bool = False,
    executor: str = "local",
    address: str | None = None,
    max_retries: int = 2,
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Run the cells of ``preset`` not yet done, then aggregate every finished cell.

    Args:
        preset: what to run (see :class:`BenchPreset` and :func:`make_preset`).
        out: output folder; default ``runs/bench/<preset.name>``.
        task: only cells of this task.
        policy: only cells of this policy.
        cell: only cells whose id matches this fnmatch pattern (``pusht/*/frac1/seed0``).
        force: recompute cells (training from scratch) even when their result file exists.
        report_only: compute nothing; aggregate the cells present.
        executor: ``local`` (one cell after the other in this process, or ``preset.jobs`` at a
            time in worker processes; the first error stops the run) or ``ray`` (cells as Ray
            tasks, see :func:`lnmdn_agents.bench.executors.run_cells_ray`).
        address: Ray cluster address for ``executor="ray"`` (None: start Ray on this machine,
            or use ``RAY_ADDRESS``).
        max_retries: with ``executor="ray"``, resubmissions of a failed cell before it is
            reported in ``failed``.
        progress: progress bars on a terminal, log lines otherwise (False: fewer log lines).
        command: the command line, recorded in each computed cell and in the report.

    Returns:
        The ``results.json`` content plus ``out``, ``report``, ``computed`` (cell ids) and
        ``failed`` (cells that failed on every attempt, also in ``results.json``).

    Raises:
        CellsFailedError: every cell to compute failed and no cell is finished.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; known: {list(EXECUTORS)}")
    out = Path(out) if out is not None else Path("runs") / "bench" / preset.name
    out.mkdir(parents=True, exist_ok=True)
    todo = [] if report_only else plan_cells(preset, task, policy, cell)
    if not report_only and not todo:
        raise ValueError(
            f"no cell of preset {preset.name!r} matches task={task!r}, policy={policy!r}, "
            f"cell={cell!r}; cells look like {cell_id(preset.tasks[0], 'liquid_mdn', 1.0, 0)}"
        )
    missing = []
    for c in todo:
        cid = cell_id(*c)
        if cell_file(out, cid).is_file() and not force:
            logger.info("bench cell %s already done; skipped", cid)
            continue
        missing.append(c)
    computed: list[str] = []
    failed: list[CellFailure] = []
    if executor == "ray":
        computed, failed = run_cells_ray(
            preset,
            missing,
            out,
            force=force,
            address=address,
            max_retries=max_retries,
            command=command,
        )
    elif local_jobs(preset.jobs, len(missing)) > 1:
        computed = run_cells_processes(
            preset, missing, out, jobs=preset.jobs, force=force, command=command
        )
    else:
        for t, p, f, s, proto in missing:
            run_cell(
                preset, t, p, f, s, out, retrain=force, progress=progress, command=command,
                protocol=proto,
            )  # fmt: skip
            computed.append(cell_id(t, p, f, s, proto))
    cells = load_cells(out)
    if not cells and failed:
        raise CellsFailedError(failed)
    if not cells:
        raise FileNotFoundError(f"no finished cells under {out / 'cells'}; run the bench first")
    results = write_report(
        out, cells, preset, failed=[f.to_dict() for f in failed], command=command
    )
    results.update({"out": str(out), "report": str(out / "report.md"), "computed": computed})
    return results
