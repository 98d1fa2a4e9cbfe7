"""``lnmdn bench``: the comparison protocol in one command (results.json, report.md, figures).

The typer command: it builds the preset from ``--preset``, a ``--config`` file of
:class:`~lnmdn_agents.bench.presets.BenchPreset` fields over it and the options over both, lists
the cells (``--list``) or runs them (:func:`lnmdn_agents.bench.run.run_bench`), then prints the
comparison table and any failed cells (exit status 1 when a cell failed).
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from lnmdn_agents.bench.cells import cell_file, cell_id, plan_cells
from lnmdn_agents.bench.executors import EXECUTORS, CellsFailedError
from lnmdn_agents.bench.presets import BENCH_TASKS, BenchPreset, make_preset
from lnmdn_agents.bench.run import run_bench
from lnmdn_agents.config_fields import read_config_file
from lnmdn_agents.evaluation.report import format_table

__all__ = ["bench_command"]


def bench_command(
    preset: Annotated[
        str,
        typer.Option(
            "--preset",
            help="demo (minutes), quick (a smoke run), results (every recipe, hours) or "
            "paper (days).",
        ),
    ] = "demo",
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="FILE",
            help='A JSON file of BenchPreset fields over the preset\'s, e.g. {"seeds": [0, 1], '
            '"n_envs": 4}; the options below replace its values.',
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default runs/bench/PRESET).")
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            help=f"Only this task (any of {sorted(BENCH_TASKS)}, also one the preset lacks).",
        ),
    ] = None,
    policy: Annotated[
        str | None, typer.Option("--policy", help="Only this policy's cells.")
    ] = None,
    cell: Annotated[
        str | None,
        typer.Option(
            "--cell", help="Only cells matching this pattern, e.g. 'pusht/*/frac1/seed0'."
        ),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", help="Override training epochs.")
    ] = None,
    episodes: Annotated[
        int | None, typer.Option("--episodes", help="Override closed-loop episodes per cell.")
    ] = None,
    seeds: Annotated[
        str | None, typer.Option("--seeds", help="Override seeds, comma-separated: 0,1,2.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Recompute finished cells.")] = False,
    report_only: Annotated[
        bool, typer.Option("--report-only", help="Only aggregate the finished cells.")
    ] = False,
    list_cells: Annotated[
        bool, typer.Option("--list", help="List the preset's cells and whether they are done.")
    ] = False,
    device: Annotated[
        str | None,
        typer.Option("--device", help="Training device: cpu, cuda or auto (default: cpu)."),
    ] = None,
    executor: Annotated[
        str,
        typer.Option(
            "--executor",
            help="local: cells one after the other here; ray: cells as Ray tasks on a cluster "
            "(pip install 'lnmdn[distributed]').",
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="Ray cluster to use with --executor ray: 'auto' (the one 'ray start' made "
            "here), host:port or ray://host:10001; default: start Ray on this machine.",
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            min=0,
            help="With --executor local: cells computed at once, each in a worker process "
            "(0: one per CPU core; default: the preset's, demo 0, the others 1).",
        ),
    ] = None,
    max_retries: Annotated[
        int | None,
        typer.Option(
            "--max-retries",
            min=0,
            help="With --executor ray: times a failed cell is resubmitted before it is "
            "reported (default 2).",
        ),
    ] = None,
    progress: Annotated[
        bool,
        typer.Option(
            "--progress/--no-progress",
            help="Progress bars on a terminal (in a log: one line per epoch and episode batch).",
        ),
    ] = True,
) -> None:
    """Run the comparison protocol: train, evaluate, write results.json, report.md, figures."""
    if executor not in EXECUTORS:
        raise typer.BadParameter(f"--executor {executor!r}; use one of {list(EXECUTORS)}")
    if executor != "ray" and (address is not None or max_retries is not None):
        raise typer.BadParameter(
            f"--address and --max-retries apply to --executor ray, not --executor {executor}"
        )
    if executor == "ray" and jobs is not None:
        raise typer.BadParameter(
            "--jobs applies to --executor local; Ray runs as many cells at once as its "
            "cluster has CPUs for"
        )
    try:
        p = make_preset(
            preset,
            read_config_file(BenchPreset, config) if config is not None else None,
            # --task runs the preset's protocol on that task alone, listed in the preset or not.
            tasks=(task,) if task else None,
            epochs=epochs,
            episodes=episodes,
            seeds=tuple(int(s) for s in seeds.split(",")) if seeds else None,
            device=device,
            jobs=jobs,
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    out_dir = out if out is not None else Path("runs") / "bench" / p.name
    if list_cells:
        for c in plan_cells(p, task, policy, cell):
            cid = cell_id(*c)
            done = "done" if cell_file(out_dir, cid).is_file() else "todo"
            typer.echo(f"{done}  {cid}")
        return
    given = {
        "--preset": preset,
        "--config": str(config) if config is not None else None,
        "--out": str(out) if out is not None else None,
        "--task": task,
        "--policy": policy,
        "--cell": cell,
        "--epochs": epochs,
        "--episodes": episodes,
        "--seeds": seeds,
        "--jobs": jobs,
    }
    command = shlex.join(
        ["lnmdn", "bench", *(x for k, v in given.items() if v is not None for x in (k, str(v)))]
        + ["--force"] * force
        + ["--report-only"] * report_only
    )
    t0 = time.perf_counter()
    try:
        results = run_bench(
            p,
            out_dir,
            task=task,
            policy=policy,
            cell=cell,
            force=force,
            report_only=report_only,
            executor=executor,
            address=address,
            max_retries=2 if max_retries is None else max_retries,
            progress=progress,
            command=command,
        )
    except CellsFailedError as err:
        _echo_failures([f.to_dict() for f in err.failures])
        raise typer.Exit(1) from err
    table = results["table"]
    typer.echo("")
    typer.echo(format_table(table["header"], table["rows"]))
    typer.echo(
        "errors: MSE in normalised action units; NLL* = diffusion bound; success: Wilson 95% CI"
    )
    if results.get("protocols"):
        proto = results["protocols"]
        typer.echo("")
        typer.echo("protocols side by side ((reference): future obs in the window, window split):")
        typer.echo(format_table(proto["header"], proto["rows"]))
    typer.echo(
        f"{len(results['computed'])} cell(s) computed, {results['n_cells']} in the report, "
        f"{time.perf_counter() - t0:.0f} s"
    )
    typer.echo(f"report: {results['report']}  (figures in {Path(results['out']) / 'figures'})")
    if results["failed"]:
        _echo_failures(results["failed"])
        raise typer.Exit(1)


def _echo_failures(failed: list[dict[str, Any]]) -> None:
    typer.echo(f"{len(failed)} cell(s) FAILED (errors in results.json; a rerun retries them):")
    for f in failed:
        typer.echo(f"  {f['cell']}: {f['attempts']} attempt(s), last: {f['error']}")
