"""Every committed training recipe loads, trains for a few steps with a falling loss, and loads."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pytest

from lnmdn_agents import load_policy
from lnmdn_agents.bench import BENCH_TASKS
from lnmdn_agents.data import Episode
from lnmdn_agents.recipes import Recipe, available_recipes, load_recipe
from lnmdn_agents.training import train
from lnmdn_datasets.recipes import RECIPES, build

RECIPE_NAMES = available_recipes()


@cache
def demonstrations(dataset_id: str) -> list[Episode]:
    """A few of the dataset's expert episodes, made by its own dataset recipe (not written)."""
    report = build(dataset_id, n_episodes=8, write=False, progress=False)
    return [Episode(r.observations, r.actions) for r in report.episodes]


def test_recipes_are_committed_for_every_bench_task():
    tasks = {name.split("/")[0] for name in RECIPE_NAMES}
    assert tasks <= set(BENCH_TASKS)
    assert {"pusht", "pointmaze-bimodal"} <= tasks
    for task in tasks:
        assert {f"{task}/liquid_mdn", f"{task}/diffusion"} <= set(RECIPE_NAMES)


@pytest.mark.parametrize("name", RECIPE_NAMES)
def test_recipe_is_complete_and_consistent(name):
    recipe = load_recipe(name)
    task = BENCH_TASKS[recipe.task]
    cfg = recipe.train_config()
    assert cfg.dataset == task.dataset and cfg.dataset in RECIPES
    assert cfg.policy == name.split("/")[1]
    assert cfg.run_dir.name == f"{name.replace('/', '_')}_seed0"
    assert cfg.eval_every > 0, "recipes select their checkpoint in closed loop"
    assert recipe.test_episodes >= 50
    assert recipe.version >= 1 and recipe.description


def test_unknown_and_malformed_recipes_are_refused(tmp_path, monkeypatch):
    with pytest.raises(KeyError, match=r"Did you mean .pointmaze-umaze/liquid_mdn."):
        load_recipe("pointmaze-umaze/liquid_mnd")
    import lnmdn_agents.recipes as recipes_mod

    (tmp_path / "pusht").mkdir()
    (tmp_path / "pusht" / "liquid_mdn.json").write_text(json.dumps({"name": "pusht/liquid_mdn"}))
    monkeypatch.setattr(recipes_mod, "RECIPE_DIR", tmp_path)
    with pytest.raises(ValueError, match="missing field"):
        load_recipe("pusht/liquid_mdn")
    good = {f: None for f in Recipe.__dataclass_fields__}
    good.update(name="pusht/liquid_mdn", version=1, description="x", test_episodes=10)
    good["train"] = {"policy": "diffusion", "dataset": "lnmdn/pusht/expert-v0"}
    (tmp_path / "pusht" / "liquid_mdn.json").write_text(json.dumps(good))
    with pytest.raises(ValueError, match=r"train\.policy must be 'liquid_mdn'"):
        load_recipe("pusht/liquid_mdn")


@pytest.mark.parametrize("name", RECIPE_NAMES)
def test_recipe_trains_a_few_steps_and_the_run_loads(name, tmp_path):
    """The recipe's own model, optimiser and schedule on a few demonstrations: the loss falls."""
    recipe = load_recipe(name)
    cfg = recipe.train_config(
        epochs=4, output_dir=str(tmp_path), eval_every=0, val_max_windows=16, progress=False
    )
    eps = demonstrations(cfg.dataset)
    run = train(cfg, episodes=eps)
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    # compare epochs of the same training phase (LWD switches from auto-encoder to diffusion)
    phase = [r.get("train/phase", 0.0) for r in records]
    first = [r["train/loss"] for r, p in zip(records, phase, strict=True) if p == phase[0]]
    assert len(first) >= 2 and np.isfinite(first).all()
    assert first[-1] < first[0], first
    policy = load_policy(run)
    assert policy.config.to_dict()["name"] == recipe.policy


def test_recipes_command_lists_every_recipe():
    from typer.testing import CliRunner

    from lnmdn_agents.cli import app

    result = CliRunner().invoke(app, ["recipes"])
    assert result.exit_code == 0, result.output
    listed = [line.split()[0] for line in result.output.splitlines()[1:-1]]
    assert listed == RECIPE_NAMES
    assert "lnmdn train --recipe NAME" in result.output


def test_train_recipe_options_given_on_the_command_line_replace_the_recipes(monkeypatch):
    from typer.testing import CliRunner

    import lnmdn_agents.training.cli as train_cli
    from lnmdn_agents.cli import app

    seen = []
    monkeypatch.setattr(train_cli, "train", lambda config, **kw: seen.append(config))
    args = ["train", "--recipe", "can/diffusion", "--output-dir", "elsewhere", "--epochs", "3"]
    result = CliRunner().invoke(app, [*args, "--no-progress", "--set", "d_model=32"])
    assert result.exit_code == 0, result.output
    (config,) = seen
    recipe = load_recipe("can/diffusion")
    assert (config.output_dir, config.epochs, config.progress) == ("elsewhere", 3, False)
    assert config.policy_overrides["d_model"] == 32
    assert config.lr == recipe.train["lr"] and config.dataset == recipe.train["dataset"]
