"""`lnmdn datasets ...` through the real `lnmdn` app, and `minari list/show` on our datasets."""

from __future__ import annotations

import minari
import numpy as np
import pytest
from typer.testing import CliRunner

from lnmdn_agents.cli import app
from lnmdn_datasets import recipes
from lnmdn_datasets.recipes import Recipe

runner = CliRunner()


class GoStraight:
    def reset(self, env, rng):
        self.gain = rng.uniform(4.0, 6.0)

    def act(self, env, obs):
        return np.clip(self.gain * (obs[4:6] - obs[:2]) - 0.5 * obs[2:4], -1.0, 1.0)


@pytest.fixture
def test_recipe(monkeypatch):
    recipe = Recipe(
        "test/pointmaze-umaze/straight-v0",
        "lnmdn/PointMaze-UMaze-v0",
        GoStraight,
        n_episodes=3,
        description="straight-line PD (test).",
    )
    monkeypatch.setitem(recipes.RECIPES, recipe.dataset_id, recipe)
    return recipe


def test_list_shows_recipes_and_status(test_recipe):
    result = runner.invoke(app, ["datasets", "list"])
    assert result.exit_code == 0, result.output
    assert "lnmdn/pusht/expert-v0" in result.output
    assert "lnmdn/pointmaze-bimodal/expert-v0" in result.output
    line = next(li for li in result.output.splitlines() if li.startswith(test_recipe.dataset_id))
    assert "missing" in line


def test_build_verify_list_and_minari_cli(test_recipe):
    result = runner.invoke(app, ["datasets", "build", test_recipe.dataset_id])
    assert result.exit_code == 0, result.output
    assert "3 episodes" in result.output and "expert success" in result.output
    again = runner.invoke(app, ["datasets", "build", test_recipe.dataset_id])
    assert again.exit_code == 0 and "already built" in again.output
    listed = runner.invoke(app, ["datasets", "list"])
    line = next(li for li in listed.output.splitlines() if li.startswith(test_recipe.dataset_id))
    assert "local" in line and " 3 " in line
    checked = runner.invoke(app, ["datasets", "verify", test_recipe.dataset_id])
    assert checked.exit_code == 0, checked.output
    assert "3/3 episodes reproduced" in checked.output
    rebuilt = runner.invoke(
        app, ["datasets", "build", test_recipe.dataset_id, "--force", "--episodes", "2"]
    )
    assert rebuilt.exit_code == 0, rebuilt.output
    assert minari.load_dataset(test_recipe.dataset_id).total_episodes == 2

    from minari.cli import app as minari_app

    shown = runner.invoke(minari_app, ["show", test_recipe.dataset_id])
    assert shown.exit_code == 0, shown.output
    assert "straight-line PD" in shown.output
    assert "lnmdn/PointMaze-UMaze-Step-v0" in shown.output
    local = runner.invoke(minari_app, ["list", "local"], env={"COLUMNS": "200"})
    assert local.exit_code == 0 and test_recipe.dataset_id in local.output


def test_bad_input_errors():
    result = runner.invoke(app, ["datasets", "build", "lnmdn/pusht/expert-v9"])
    assert result.exit_code == 1
    assert "no recipe for dataset 'lnmdn/pusht/expert-v9'" in result.output
    assert "Traceback" not in result.output
    none = runner.invoke(app, ["datasets", "build"])
    assert none.exit_code == 1 and "--all" in none.output
    missing = runner.invoke(app, ["datasets", "verify", "test/nothing-v0"])
    assert missing.exit_code == 1 and "not found" in missing.output.lower()


def test_download_offline_is_a_clear_message(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = runner.invoke(app, ["datasets", "download", "D4RL/pointmaze/umaze-v2"])
    assert result.exit_code == 1
    assert "could not download 'D4RL/pointmaze/umaze-v2'" in result.output
    assert "minari download D4RL/pointmaze/umaze-v2" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
