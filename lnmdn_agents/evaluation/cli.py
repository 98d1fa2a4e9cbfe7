"""``lnmdn eval RUN [RUN ...]`` and ``lnmdn runs list [DIR]``.

``lnmdn eval`` evaluates run folders, writes ``eval_info.json`` into each and prints a comparison
table; ``lnmdn runs list`` prints one line per run found under a folder.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["eval_command", "runs_app", "runs_list_command"]

logger = logging.getLogger(__name__)


def eval_command(
    runs: Annotated[
        list[Path],
        typer.Argument(
            help="Run folders (config.json + model.safetensors), e.g. runs/pusht/liquid_mdn."
        ),
    ],
    env: Annotated[
        str | None,
        typer.Option("--env", help="Env id for the rollouts; default: the run's dataset's env."),
    ] = None,
    episodes: Annotated[
        int, typer.Option("--episodes", "-n", help="Closed-loop episodes (0: none).")
    ] = 20,
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", help="Dataset for the offline metrics; default: the run's own."),
    ] = None,
    n_envs: Annotated[
        int | None, typer.Option("--n-envs", help="Vector envs (default min(N, 8)).")
    ] = None,
    max_windows: Annotated[
        int, typer.Option("--max-windows", help="Test windows for the offline metrics (0: all).")
    ] = 2000,
    offline: Annotated[
        bool, typer.Option("--offline/--no-offline", help="Offline metrics.")
    ] = True,
    videos: Annotated[
        Path | None,
        typer.Option(
            "--videos", help="Write gifs of each run's first 2 episodes under this folder."
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed.")] = 0,
    threads: Annotated[
        int, typer.Option("--threads", help="Torch threads while evaluating (0: torch default).")
    ] = 1,
    deterministic: Annotated[
        bool,
        typer.Option(
            "--deterministic",
            help="Closed loop with deterministic actions (mixture: the most likely component's "
            "mean; diffusion: no sampling noise).",
        ),
    ] = False,
    inference_steps: Annotated[
        int | None,
        typer.Option(
            "--inference-steps",
            min=1,
            help="Denoising steps at inference (diffusion, lwd); default: the run's own.",
        ),
    ] = None,
    device: Annotated[
        str, typer.Option("--device", help="cpu, cuda, cuda:N or auto (CUDA when available).")
    ] = "cpu",
    starts: Annotated[
        str,
        typer.Option(
            "--starts",
            help="Closed-loop start states, comma-separated: random (the test seeds 100000+), "
            "dataset (states of held-out windows of the run's dataset, under its protocol).",
        ),
    ] = "random",
    start_steps: Annotated[
        int | None,
        typer.Option(
            "--start-steps", min=1, help="Step limit of dataset starts (default: the task's)."
        ),
    ] = None,
    progress: Annotated[
        bool,
        typer.Option(
            "--progress/--no-progress",
            help="Progress bars on a terminal (in a log: one line per batch of episodes).",
        ),
    ] = True,
) -> None:
    """Evaluate runs (offline metrics + closed loop), write eval_info.json, print a table."""
    from lnmdn_agents.evaluation.report import comparison_rows, format_table
    from lnmdn_agents.evaluation.runs import evaluate_run
    from lnmdn_agents.evaluation.starts import check_starts

    if episodes < 0:
        raise typer.BadParameter(f"--episodes must be >= 0, got {episodes}")
    try:
        start_modes = check_starts(tuple(x.strip() for x in starts.split(",") if x.strip()))
    except ValueError as err:
        raise typer.BadParameter(f"--starts {starts!r}: {err}") from err
    infos = []
    for run in runs:
        if not (run / "config.json").is_file():
            raise typer.BadParameter(
                f"{run} is not a run folder (no config.json); pass folders written by lnmdn train"
            )
        info = evaluate_run(
            run,
            env_id=env,
            n_episodes=episodes,
            dataset_id=dataset,
            n_envs=n_envs,
            offline=offline,
            max_windows=max_windows or None,
            video_dir=(videos / run.name) if videos else None,
            seed=seed,
            threads=threads or None,
            deterministic=deterministic,
            num_inference_steps=inference_steps,
            device=device,
            progress=progress,
            starts=start_modes,
            start_steps=start_steps,
        )
        info["name"] = str(run)
        infos.append(info)
        logger.info("wrote %s", run / "eval_info.json")
    header, rows = comparison_rows(infos)
    typer.echo(format_table(header, rows))
    notes = ["ep len in env steps (SB3's evaluate_policy counts chunks)"]
    if offline:
        notes.insert(0, "errors in normalised action units; NLL* = diffusion bound")
    typer.echo("; ".join([*notes, "success: Wilson 95% CI"]))


runs_app = typer.Typer(
    name="runs",
    help="Training runs on disk: list them with their results.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@runs_app.command("list", short_help="One line per run with its results.")
def runs_list_command(
    root: Annotated[
        Path, typer.Argument(help="Folder to search for run folders (recursively).")
    ] = Path("runs"),
) -> None:
    """One line per run: policy, dataset, epochs, best validation score, test success."""
    from lnmdn_agents.evaluation.report import format_table
    from lnmdn_agents.evaluation.runs import list_runs

    runs = list_runs(root)
    if not runs:
        typer.echo(f"no runs under {root} (a run folder holds train_config.json)")
        return

    def num(x: float | None, spec: str = ".3f") -> str:
        return "-" if x is None else format(x, spec)

    header = [
        "run",
        "policy",
        "dataset",
        "epochs",
        "best val score",
        "best val NLL",
        "test success",
    ]
    rows = []
    for r in runs:
        test = "-"
        if r["test_success_rate"] is not None:
            test = f"{r['test_success_rate']:.2f} (n={r['test_episodes']})"
        rows.append(
            [
                r["run"],
                str(r["policy"]),
                str(r["dataset"]),
                f"{r['epochs_done']}/{r['epochs']}",
                num(r["best_val_score"]),
                num(r["best_val_nll"]),
                test,
            ]
        )
    typer.echo(format_table(header, rows))
    typer.echo("best val score: closed-loop validation (--eval-every); test success: lnmdn eval")
