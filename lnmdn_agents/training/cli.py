"""``lnmdn train``: the command, its options generated from :class:`TrainConfig`'s fields.

Each field becomes an option with its type, default and help (from the ``Attributes:`` section of
the docstring); ``--set FIELD=VALUE`` sets a policy config field, parsed as that field's type;
``--recipe`` starts from a committed recipe and ``--config FILE`` from a JSON file of
:class:`TrainConfig` fields (a run's own ``train_config.json`` reproduces the run): recipe < file <
the options given on the command line.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import typing
from typing import Any

from lnmdn_agents.config_fields import (
    attribute_docs,
    parse_field_value,
    plain_help,
    read_config_file,
)
from lnmdn_agents.policies import available_policies, get_policy_class
from lnmdn_agents.training.config import TrainConfig
from lnmdn_agents.training.loop import train

__all__ = ["train_command"]

logger = logging.getLogger(__name__)


def _attribute_docs(cls: type) -> dict[str, str]:
    """``{field: help}`` from the Google-style ``Attributes:`` section, as plain terminal text."""
    return {k: plain_help(v) for k, v in attribute_docs(cls).items()}


def _parse_overrides(items: list[str], policy: str | None = None) -> dict[str, Any]:
    """``--set`` items -> policy config overrides.

    With ``policy``, each value is parsed as its field's type (``down_dims=24,48,48`` -> a tuple,
    ``clip_sample=false`` -> False) and unknown fields are refused; without it, values are JSON
    or bare strings (``["d_model=128", "down_dims=[64,128]"]`` -> ``{"d_model": 128,
    "down_dims": [64, 128]}``).
    """
    cfg_cls = get_policy_class(policy).config_class if policy is not None else None
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(
                f"--set expects FIELD=VALUE, e.g. --set d_model=128, got {item!r} "
                "(`lnmdn policies NAME` lists the fields)"
            )
        if cfg_cls is not None:
            out[key] = parse_field_value(cfg_cls, key, raw)
            continue
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw  # a bare string, e.g. sampler=ddim
    return out


def _layered_config(
    options: dict[str, Any],
    ctx: Any,
    set_items: list[str],
    recipe_name: str | None,
    config_file: str | None,
) -> TrainConfig:
    """The run's config in layers: the recipe, then the ``--config`` file, then the options given.

    Each layer replaces the fields it sets; ``policy_overrides`` are merged key by key, with the
    ``--set`` items last. Options left at their defaults on the command line replace nothing.
    """
    recipe = None
    if recipe_name is not None:
        from lnmdn_agents.recipes import load_recipe

        recipe = load_recipe(recipe_name)
    from_file = read_config_file(TrainConfig, config_file) if config_file is not None else {}
    # By name: typer bundles its own click, whose ParameterSource is another enum class.
    given = {
        k: v
        for k, v in options.items()
        if getattr(ctx.get_parameter_source(k), "name", None) == "COMMANDLINE"
    }
    fields = {**(recipe.train if recipe is not None else {}), **from_file, **given}
    policy = str(fields.get("policy", options["policy"]))
    overrides = _parse_overrides(set_items, policy)
    merged = {
        **(recipe.train.get("policy_overrides", {}) if recipe is not None else {}),
        **from_file.get("policy_overrides", {}),
        **overrides,
    }
    chosen = {**from_file, **given, "policy_overrides": merged}
    return recipe.train_config(**chosen) if recipe is not None else TrainConfig(**chosen)


def _make_train_command() -> Any:
    """The ``lnmdn train`` command, its options generated from :class:`TrainConfig`'s fields."""
    import typer

    helps = _attribute_docs(TrainConfig)
    hints = typing.get_type_hints(TrainConfig)
    params = []
    for f in dataclasses.fields(TrainConfig):
        if f.name == "policy_overrides":
            continue
        flag = f.name.replace("_", "-")
        tp = hints[f.name]
        decls = [f"--{flag}/--no-{flag}"] if tp is bool else [f"--{flag}"]
        option = typer.Option(f.default, *decls, help=helps.get(f.name, ""))
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                        annotation=tp))  # fmt: skip
    extra = [
        (
            "set_",
            typer.Option(
                [],
                "--set",
                metavar="FIELD=VALUE",
                help="Set a policy config field; repeat for more: --set d_model=128 --set "
                "down_dims=24,48,48 --set clip_sample=false. lnmdn policies NAME lists the "
                "fields, their types and defaults.",
            ),
            list[str],
        ),
        (
            "recipe",
            typer.Option(
                None,
                "--recipe",
                help="Start from a committed recipe, e.g. pusht/liquid_mdn (lnmdn recipes); "
                "options given here replace its values.",
            ),
            str | None,
        ),
        (
            "config_file",
            typer.Option(
                None,
                "--config",
                metavar="FILE",
                help="Start from a JSON file of TrainConfig fields, e.g. a run's "
                "train_config.json (with --recipe: over the recipe's values); options given here "
                "replace its values, --set adds to its policy_overrides.",
            ),
            str | None,
        ),
        (
            "resume",
            typer.Option(
                False,
                "--resume",
                help="Continue the run folder's checkpoint; with a larger --epochs, extend a "
                "finished run.",
            ),
            bool,
        ),
        (
            "overwrite",
            typer.Option(
                False, "--overwrite", help="Delete the run already in the run folder and retrain."
            ),
            bool,
        ),
    ]
    for name, option, annotation in extra:
        params.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation
            )
        )
    params.append(
        inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
    )

    def train_command(**kwargs: Any) -> None:
        set_items = kwargs.pop("set_")
        resume = kwargs.pop("resume")
        overwrite = kwargs.pop("overwrite")
        recipe_name = kwargs.pop("recipe")
        config_file = kwargs.pop("config_file")
        ctx = kwargs.pop("ctx")
        if recipe_name is None and config_file is None:
            get_policy_class(kwargs["policy"])  # an unknown policy is named before its --set
            overrides = _parse_overrides(set_items, kwargs["policy"])
            config = TrainConfig(**kwargs, policy_overrides=overrides)
        else:
            config = _layered_config(kwargs, ctx, set_items, recipe_name, config_file)
        run_dir = train(config, resume=resume, overwrite=overwrite)
        logger.info("run folder: %s", run_dir)

    train_command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    train_command.__annotations__ = {p.name: p.annotation for p in params}
    train_command.__doc__ = (
        "Train a policy on a Minari dataset; writes config.json, model.safetensors, "
        "metrics.jsonl and checkpoints/ to the run folder. Policies: "
        + ", ".join(available_policies())
        + "."
    )
    return train_command


train_command = _make_train_command()
