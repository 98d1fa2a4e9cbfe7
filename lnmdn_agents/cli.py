"""The ``lnmdn`` command: ``datasets build``, ``train``, ``eval``, ``bench``.

Each sub-command is defined next to the code it runs and wired in here.
"""

from __future__ import annotations

import logging

import typer

from lnmdn_agents.bench import bench_command
from lnmdn_agents.evaluation.cli import eval_command
from lnmdn_agents.training import train_command
from lnmdn_datasets.cli import app as datasets_app

app = typer.Typer(
    name="lnmdn",
    help="lnmdn: tasks, demonstrations and policies for imitation learning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _setup(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at DEBUG level."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


app.add_typer(datasets_app, name="datasets")
app.command("train")(train_command)
app.command("eval")(eval_command)
app.command("bench")(bench_command)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
