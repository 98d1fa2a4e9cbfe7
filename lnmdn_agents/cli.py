"""The ``lnmdn`` command and its sub-commands, each defined next to the code it runs.

Sub-commands: ``datasets``, ``policies``, ``recipes``, ``train``, ``eval``, ``runs``, ``bench``.

They are wired in here. Every error ends the command with exit status 1 (2 for a malformed
command line) and one line on stderr, ``error: <what was wrong, the value, what to do>``;
``lnmdn --debug ...`` shows the traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from lnmdn_agents.bench.cli import bench_command
from lnmdn_agents.evaluation.cli import eval_command, runs_app
from lnmdn_agents.policy_cli import policies_command
from lnmdn_agents.recipes import recipes_command
from lnmdn_agents.training import train_command
from lnmdn_datasets.cli import app as datasets_app

__all__ = ["app", "error_line", "main"]

_debug = False


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lnmdn")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown (not installed)"


def error_line(err: BaseException) -> str:
    """One line for an exception: its message, with the type where the message alone is unclear.

    Expected kinds of failure (bad values, missing files, missing extras, no CUDA ...) print their
    own message, which names the value and the fix; anything else is an internal error and says
    how to see the traceback.
    """
    if isinstance(err, KeyError) and err.args:
        message = str(err.args[0])
    else:
        message = str(err)
    message = " ".join(message.split()) or type(err).__name__
    # A plain TypeError is usually a bug; a wrong config value is a ConfigTypeError (a ValueError).
    expected: tuple[type[BaseException], ...] = (
        ValueError,
        KeyError,
        OSError,
        RuntimeError,
        ImportError,
    )
    try:
        import gymnasium

        expected += (gymnasium.error.Error,)
    except ImportError:  # pragma: no cover - gymnasium is a dependency
        pass
    if isinstance(err, expected):
        return message
    return (
        f"internal error ({type(err).__name__}: {message}); rerun with `lnmdn --debug ...` "
        "for the traceback and report it"
    )


def _usage_error_line(err: Exception, argv: Sequence[str]) -> str:
    """One line for a command-line error, naming the option and the value given."""
    ctx = getattr(err, "ctx", None)
    command = (ctx.command_path if ctx is not None else "lnmdn").replace(
        "python -m lnmdn_agents.cli", "lnmdn"
    )
    message = " ".join(err.format_message().split())  # type: ignore[attr-defined]
    param = getattr(err, "param", None)
    opts = list(getattr(param, "opts", []) or [])
    if param is not None and opts and opts[0].startswith("-"):
        raw = None
        for i, token in enumerate(argv):
            for opt in opts:
                if token == opt and i + 1 < len(argv):
                    raw = argv[i + 1]
                elif token.startswith(opt + "="):
                    raw = token[len(opt) + 1 :]
        detail = message.split(":", 1)[1].strip() if ":" in message else message
        shown = f"{opts[0]} {raw!r}" if raw is not None else opts[0]
        message = f"{shown}: {detail}"
    else:
        message = message.removeprefix("Invalid value: ")
    return f"{message} (see `{command} --help`)"


class _Group(TyperGroup):
    """The top-level group: every failure becomes one ``error:`` line on stderr."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        global _debug
        _debug = False
        argv = list(sys.argv[1:] if args is None else args)
        code = 1
        try:
            rv = super().main(
                args=argv,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except typer.Abort:
            message = "aborted"
        except Exception as err:
            from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

            if isinstance(err, NoArgsIsHelpError):
                err.show()
                code, message = 0, ""
            elif isinstance(err, UsageError):
                code, message = err.exit_code, _usage_error_line(err, argv)
            elif isinstance(err, ClickException):
                code, message = err.exit_code, " ".join(err.format_message().split())
            elif _debug:
                raise
            else:
                message = error_line(err)
        else:
            if not standalone_mode:
                return rv
            sys.exit(rv if isinstance(rv, int) else 0)
        if message:
            typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
        if not standalone_mode:
            return code
        sys.exit(code)


app = typer.Typer(
    name="lnmdn",
    cls=_Group,
    help="lnmdn: tasks, demonstrations and policies for imitation learning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"lnmdn {_version()}")
        raise typer.Exit()


@app.callback()
def _setup(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at DEBUG level."),
    debug: bool = typer.Option(
        False, "--debug", help="On an error, show the Python traceback instead of one line."
    ),
    version: bool = typer.Option(
        False,
        "--version",
        callback=_show_version,
        is_eager=True,
        help="Print the installed lnmdn version and exit.",
    ),
) -> None:
    global _debug
    _debug = debug
    del version
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


# short_help: the one line of `lnmdn --help`, whole (Click cuts longer ones with "...").
app.add_typer(datasets_app, name="datasets", short_help="Demonstration datasets (Minari).")
app.command("policies", short_help="Registered policies and their config fields.")(policies_command)
app.command("recipes", short_help="The committed training recipes.")(recipes_command)
app.command("train", short_help="Train a policy on a dataset.")(train_command)
app.command("eval", short_help="Evaluate run folders; compare them in a table.")(eval_command)
app.add_typer(runs_app, name="runs", short_help="List training runs and their results.")
app.command("bench", short_help="The comparison protocol: train, evaluate, report.")(bench_command)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
