"""The ``lnmdn`` command and its sub-commands, each defined next to the code it runs.

Sub-commands: ``datasets``, ``policies``, ``recipes``, ``train``, ``eval``, ``runs``, ``bench``.

They are named here (:data:`SUBCOMMANDS`) and imported only when one runs, so ``lnmdn --help``
and ``lnmdn datasets ...`` never import torch. Every error ends the command with exit status 1
(2 for a malformed command line) and one line on stderr, ``error: <what was wrong, the value,
what to do>``; ``lnmdn --debug ...`` shows the traceback.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterator, MutableMapping, Sequence
from typing import Any, NamedTuple

import typer
from typer.core import TyperGroup

__all__ = ["SUBCOMMANDS", "Subcommand", "app", "error_line", "main"]

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


class Subcommand(NamedTuple):
    """Where a sub-command of ``lnmdn`` lives, and its line in ``lnmdn --help``."""

    module: str
    """The module that defines it, imported when the sub-command runs."""
    attribute: str
    """A typer command function, or a ``typer.Typer`` for a group of commands."""
    short_help: str
    """The one line of ``lnmdn --help``, whole (Click cuts longer ones with "...")."""


#: The sub-commands of ``lnmdn``, in the order ``lnmdn --help`` lists them.
SUBCOMMANDS: dict[str, Subcommand] = {
    "policies": Subcommand(
        "lnmdn_agents.policy_cli",
        "policies_command",
        "Registered policies and their config fields.",
    ),
    "recipes": Subcommand(
        "lnmdn_agents.recipes", "recipes_command", "The committed training recipes."
    ),
    "train": Subcommand(
        "lnmdn_agents.training.cli", "train_command", "Train a policy on a dataset."
    ),
    "eval": Subcommand(
        "lnmdn_agents.evaluation.cli",
        "eval_command",
        "Evaluate run folders; compare them in a table.",
    ),
    "bench": Subcommand(
        "lnmdn_agents.bench.cli",
        "bench_command",
        "The comparison protocol: train, evaluate, report.",
    ),
    "datasets": Subcommand("lnmdn_datasets.cli", "app", "Demonstration datasets (Minari)."),
    "runs": Subcommand(
        "lnmdn_agents.evaluation.cli", "runs_app", "List training runs and their results."
    ),
}


def _load_subcommand(name: str, rich_markup_mode: Any) -> Any:
    """The Click command of sub-command ``name``, its module imported now."""
    spec = SUBCOMMANDS[name]
    target = getattr(importlib.import_module(spec.module), spec.attribute)
    if isinstance(target, typer.Typer):
        command: Any = typer.main.get_group(target)
    else:
        single = typer.Typer(rich_markup_mode=rich_markup_mode, add_completion=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    command.short_help = spec.short_help
    return command


class _LazyCommands(MutableMapping[str, Any]):
    """The group's ``commands``: every name of :data:`SUBCOMMANDS`, each imported when looked up."""

    def __init__(self, rich_markup_mode: Any) -> None:
        self._rich_markup_mode = rich_markup_mode
        self._loaded: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            if name not in SUBCOMMANDS:
                raise KeyError(name)
            self._loaded[name] = _load_subcommand(name, self._rich_markup_mode)
        return self._loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        raise TypeError(f"add sub-command {name!r} to lnmdn_agents.cli.SUBCOMMANDS instead")

    def __delitem__(self, name: str) -> None:
        raise TypeError(f"the sub-commands of lnmdn are fixed (SUBCOMMANDS); {name!r} stays")

    def __iter__(self) -> Iterator[str]:
        return iter(SUBCOMMANDS)

    def __len__(self) -> int:
        return len(SUBCOMMANDS)

    def __contains__(self, name: object) -> bool:
        return name in SUBCOMMANDS


class _Group(TyperGroup):
    """The top-level group: lazy sub-commands; every failure becomes one ``error:`` line."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _LazyCommands(self.rich_markup_mode)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The command list of ``lnmdn --help``, from :data:`SUBCOMMANDS` (nothing imported)."""
        rows = [(name, spec.short_help) for name, spec in SUBCOMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

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


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
