"""Training recipes: one committed file per (task, policy) with everything a result depends on.

A recipe is a JSON file ``lnmdn_agents/recipes/<task>/<policy>.json``::

    {
      "name": "pusht/liquid_mdn",            # <task>/<policy>, the file's own path
      "version": 1,                          # bumped whenever a value changes a result
      "description": "...",                  # what the recipe is for, in a sentence or two
      "train_minutes": 30,                   # measured on the 2-core development machine
      "test_episodes": 100,                  # closed-loop test episodes of the results table
      "train": {...}                         # TrainConfig fields (policy, dataset, epochs, ...,
                                             #   policy_overrides, eval_every, ...)
    }

``lnmdn train --recipe pusht/liquid_mdn`` trains it (options given on the command line replace
the recipe's values), ``lnmdn bench --preset results`` trains every recipe and tabulates the
selected checkpoints on the test seeds, and the ``paper`` preset builds its cells from the
recipes. Recipes are data, not code: loading one runs nothing.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lnmdn_envs.suggest import did_you_mean

if TYPE_CHECKING:
    from lnmdn_agents.training.config import TrainConfig

__all__ = ["RECIPE_DIR", "Recipe", "available_recipes", "load_recipe", "recipes_command"]

RECIPE_DIR = Path(__file__).resolve().parent
"""Folder of the committed recipes (``<task>/<policy>.json``)."""


@dataclass(frozen=True)
class Recipe:
    """A named, versioned training recipe (see the module docstring for the file format).

    Attributes:
        name: ``<task>/<policy>``, e.g. ``pusht/liquid_mdn``.
        version: recipe version; bumped whenever a value that changes the result changes.
        description: what the recipe reproduces.
        train_minutes: training time measured on the 2-core development machine (one torch
            thread; the optimiser steps, without validation), or None when not measured yet.
        test_episodes: closed-loop test episodes for the results table.
        train: :class:`~lnmdn_agents.training.TrainConfig` fields.
    """

    name: str
    version: int
    description: str
    train_minutes: float | None
    test_episodes: int
    train: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> str:
        """The task part of the name (a key of ``lnmdn_agents.bench.BENCH_TASKS``)."""
        return self.name.split("/", 1)[0]

    @property
    def policy(self) -> str:
        """The registered policy the recipe trains."""
        return str(self.train["policy"])

    def train_config(self, **overrides: Any) -> TrainConfig:
        """The recipe's :class:`TrainConfig`, with ``overrides`` replacing its fields.

        The run folder defaults to ``runs/<task>_<policy>_seed<seed>``.
        """
        from lnmdn_agents.training.config import TrainConfig

        fields = {**self.train, **overrides}
        fields.setdefault("run_name", f"{self.name.replace('/', '_')}_seed{fields.get('seed', 0)}")
        return TrainConfig(**fields)


def available_recipes() -> list[str]:
    """Names of the committed recipes, sorted (``["can/diffusion", ...]``)."""
    return sorted(p.relative_to(RECIPE_DIR).with_suffix("").as_posix()
                  for p in RECIPE_DIR.glob("*/*.json"))  # fmt: skip


def load_recipe(name: str) -> Recipe:
    """Load the recipe ``<task>/<policy>``; an unknown name lists the known ones.

    Raises:
        KeyError: no such recipe.
        ValueError: the file is not a valid recipe (the message names the file and the field).
    """
    known = available_recipes()
    if name not in known:
        hint = did_you_mean(name, known)
        raise KeyError(f"unknown recipe {name!r}.{hint} Available recipes: {known}")
    path = RECIPE_DIR / f"{name}.json"
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"recipe file {path} is not valid JSON: {err}") from None
    names = {f.name for f in dataclasses.fields(Recipe)}
    unknown = sorted(set(data) - names)
    missing = sorted(names - set(data))
    if unknown or missing:
        raise ValueError(
            f"recipe file {path}: unknown field(s) {unknown}, missing field(s) {missing}; "
            f"a recipe has exactly {sorted(names)}"
        )
    recipe = Recipe(**data)
    if recipe.name != name:
        raise ValueError(f"recipe file {path} names itself {recipe.name!r}; expected {name!r}")
    if "policy" not in recipe.train or recipe.policy != name.split("/", 1)[1]:
        raise ValueError(
            f"recipe file {path}: train.policy must be {name.split('/', 1)[1]!r}, "
            f"got {recipe.train.get('policy')!r}"
        )
    recipe.train_config()  # validates every TrainConfig field now, with its own messages
    return recipe


def recipes_command() -> None:
    """List the committed recipes: name, policy, dataset, epochs, measured training minutes."""
    import typer

    rows = [load_recipe(name) for name in available_recipes()]
    width = max(len(r.name) for r in rows)
    typer.echo(f"{'recipe':<{width}}  {'dataset':<34}  epochs  train min  test episodes")
    for r in rows:
        minutes = "-" if r.train_minutes is None else f"{r.train_minutes:g}"
        typer.echo(
            f"{r.name:<{width}}  {r.train['dataset']:<34}  {r.train['epochs']:>6}  "
            f"{minutes:>9}  {r.test_episodes:>13}"
        )
    typer.echo("train one: lnmdn train --recipe NAME; all: lnmdn bench --preset results")
