"""``lnmdn policies [NAME]``: the registered policies, and one policy's config fields.

::

    lnmdn policies                 # one line per registered policy
    lnmdn policies diffusion       # fields, types, defaults, the bench presets' values, help

Every field listed is what ``lnmdn train --policy NAME --set FIELD=VALUE`` sets.
"""

from __future__ import annotations

import inspect
import shutil
import textwrap
from typing import Annotated, Any

import typer

from lnmdn_agents.config_fields import field_rows, plain_help

__all__ = ["cli_value", "describe_policy", "policies_command"]

#: Set by ``lnmdn train`` from the dataset, not by ``--set``.
_FROM_DATA = {"obs_dim", "action_dim"}


def cli_value(value: Any) -> str:
    """A value as ``--set FIELD=VALUE`` takes it: ``24,48,48``, ``true``, ``none``, ``0.001``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ",".join(cli_value(v) for v in value)
    return str(value)


def _preset_values(policy: str) -> dict[str, dict[str, Any]]:
    """``{preset name: {field: value}}`` for the bench presets that change ``policy``'s fields."""
    from lnmdn_agents.bench.presets import PRESETS, make_preset

    out = {}
    for name in PRESETS:
        overrides = make_preset(name).policy_overrides.get(policy) or {}
        if overrides:
            out[name] = dict(overrides)
    return out


def describe_policy(name: str, width: int = 100) -> str:
    """The text ``lnmdn policies NAME`` prints: every config field with type, default, help."""
    from lnmdn_agents.policies import get_policy_class

    cls = get_policy_class(name).config_class
    presets = _preset_values(name)
    summary = plain_help(inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")
    lines = [
        f"{name} ({cls.__name__}): {summary}",
        f"Set a field with: lnmdn train --policy {name} --set FIELD=VALUE "
        "(lists as 24,48,48; bools as true/false).",
    ]
    if presets:
        lines.append(
            "Bench presets that change fields: "
            + "; ".join(f"{p} ({len(v)} fields, shown as [{p}: ...])" for p, v in presets.items())
        )
    lines.append("")
    for field, tp, default, doc in field_rows(cls):
        head = f"{field}: {tp} = {cli_value(default)}"
        if field in _FROM_DATA:
            head += "   (set from the dataset)"
        for preset, values in presets.items():
            if field in values:
                head += f"   [{preset}: {cli_value(values[field])}]"
        lines.append(head)
        if doc:
            lines += textwrap.wrap(
                plain_help(doc), width=width, initial_indent="    ", subsequent_indent="    "
            )
    return "\n".join(lines)


def policies_command(
    name: Annotated[
        str | None,
        typer.Argument(help="A registered policy; without it, list the registered policies."),
    ] = None,
) -> None:
    """List the registered policies, or one policy's config fields with defaults and presets."""
    from lnmdn_agents.policies import available_policies, get_policy_class

    width = min(110, shutil.get_terminal_size((100, 20)).columns)
    if name is None:
        for policy in available_policies():
            cls = get_policy_class(policy).config_class
            doc = plain_help(inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")
            doc = doc.removeprefix(f"{policy}: ")
            typer.echo(f"{policy:12} {doc}")
        typer.echo("Fields of one: lnmdn policies NAME")
        return
    typer.echo(describe_policy(name, width=width))
