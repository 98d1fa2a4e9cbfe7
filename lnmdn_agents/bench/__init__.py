"""``lnmdn bench``: the comparison protocol in one command (results.json, report.md, figures).

The protocol is a grid of *cells* ``(task, policy, training fraction, seed)``. Each cell trains a
policy from scratch (``lnmdn_agents.training.train``), then measures on the task's held-out test
episodes and in closed loop, through the same function as ``lnmdn eval``
(:func:`lnmdn_agents.evaluation.runs.measure_run`)::

    cell = train -> offline metrics (test split), latency, params, closed loop (seeds 100000+)
                 -> sampled chunks for the trajectory figure -> diffusion step sweep (if any)

Each finished cell is written atomically to ``<out>/cells/<cell>.json``; a later run skips the
cells whose file exists (resumable), and cells computed elsewhere merge by copying their files
into ``cells/`` (runnable in parts: ``--task``, ``--policy``, ``--cell`` filters). Whatever cells
are present are then aggregated into ``results.json``, ``report.md`` and ``figures/*.png``.
``--executor ray`` runs the missing cells as Ray tasks on one machine or a cluster, with retries;
the default runs them one after the other in this process, or ``--jobs N`` at a time in worker
processes of this machine (the demo: one per core).

One job per module:

* :mod:`~lnmdn_agents.bench.presets`: the tasks, :class:`BenchPreset` and the presets ``demo``,
  ``quick``, ``results`` and ``paper``.
* :mod:`~lnmdn_agents.bench.cells`: cell ids and files, planning a preset's cells, running one
  (train or reuse, then evaluate).
* :mod:`~lnmdn_agents.bench.trajectories` and :mod:`~lnmdn_agents.bench.sweep`: what a cell
  measures for the trajectory and latency-accuracy figures.
* :mod:`~lnmdn_agents.bench.aggregation`: per (task, policy) means over seeds, intervals, curves.
* :mod:`~lnmdn_agents.bench.report`: ``results.json``, ``report.md`` and the figures.
* :mod:`~lnmdn_agents.bench.executors`: the local and Ray executors.
* :mod:`~lnmdn_agents.bench.run`: :func:`run_bench`, the whole protocol from Python.
* :mod:`~lnmdn_agents.bench.cli`: the typer command ``lnmdn bench``.

Example::

    from lnmdn_agents.bench import make_preset, run_bench

    results = run_bench(make_preset("demo"))        # runs/bench/demo/report.md
"""

from lnmdn_agents.bench.aggregation import aggregate
from lnmdn_agents.bench.cells import cell_id, load_cells, plan_cells, run_cell
from lnmdn_agents.bench.cli import bench_command
from lnmdn_agents.bench.executors import CellFailure, CellsFailedError
from lnmdn_agents.bench.presets import (
    BENCH_TASKS,
    PRESETS,
    SHIPPED_RUNS,
    BenchPreset,
    BenchTask,
    make_preset,
)
from lnmdn_agents.bench.report import write_report
from lnmdn_agents.bench.run import run_bench

__all__ = [
    "BENCH_TASKS",
    "PRESETS",
    "SHIPPED_RUNS",
    "BenchPreset",
    "BenchTask",
    "CellFailure",
    "CellsFailedError",
    "aggregate",
    "bench_command",
    "cell_id",
    "load_cells",
    "make_preset",
    "plan_cells",
    "run_bench",
    "run_cell",
    "write_report",
]
