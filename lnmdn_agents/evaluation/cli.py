"""``lnmdn eval RUN [RUN ...]``: evaluate run folders, write ``eval_info.json``, print a table."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["eval_command"]

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
) -> None:
    """Evaluate one or several runs (offline + closed loop) and print a comparison table."""
    from lnmdn_agents.evaluation.report import comparison_rows, format_table
    from lnmdn_agents.evaluation.runs import evaluate_run

    if episodes < 0:
        raise typer.BadParameter(f"--episodes must be >= 0, got {episodes}")
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
        )
        info["name"] = str(run)
        infos.append(info)
        logger.info("wrote %s", run / "eval_info.json")
    header, rows = comparison_rows(infos)
    typer.echo(format_table(header, rows))
    typer.echo("errors in normalised action units; NLL* = diffusion bound; success: Wilson 95% CI")
