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


def test_download_offline_is_a_clear_message(hub_offline):
    result = runner.invoke(app, ["datasets", "download", "D4RL/pointmaze/umaze-v2"])
    assert result.exit_code == 1
    assert "could not download 'D4RL/pointmaze/umaze-v2'" in result.output
    assert "minari download D4RL/pointmaze/umaze-v2" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_download_of_a_local_only_id_says_build_without_trying_the_network(hub_offline):
    import time

    t0 = time.perf_counter()
    result = runner.invoke(app, ["datasets", "download", "lnmdn/pointmaze-umaze/expert-v0"])
    assert time.perf_counter() - t0 < 5  # no retries against a remote that never hosts it
    assert result.exit_code == 1
    assert "lnmdn datasets build lnmdn/pointmaze-umaze/expert-v0" in result.output
    assert "minari download" not in result.output
    embedded = runner.invoke(app, ["datasets", "download", "lnmdn/pusht/expert-v0"])
    assert "ships inside the package" in embedded.output
    unknown = runner.invoke(app, ["datasets", "download", "lnmdn/pusht/mine-v0"])
    assert "lnmdn datasets convert" in unknown.output and "minari download" not in unknown.output


def test_verify_of_a_missing_id_says_how_to_make_it():
    result = runner.invoke(app, ["datasets", "verify", "lnmdn/pointmaze-umaze/expert-v0"])
    assert result.exit_code == 1
    assert "lnmdn datasets build lnmdn/pointmaze-umaze/expert-v0" in result.output
    assert "download=True" not in result.output


def test_content_checksum_is_recorded_reproduced_and_checked(test_recipe):
    import h5py

    from lnmdn_datasets.minari_io import CHECKSUM_KEY, minari_root

    dataset_id = test_recipe.dataset_id
    assert runner.invoke(app, ["datasets", "build", dataset_id]).exit_code == 0
    recorded = minari.load_dataset(dataset_id).storage.metadata[CHECKSUM_KEY]
    assert len(recorded) == 64
    checked = runner.invoke(app, ["datasets", "verify", dataset_id])
    assert checked.exit_code == 0, checked.output
    assert f"content sha256 {recorded} (matches" in checked.output
    # the same recipe on the same machine: bit-identical arrays, the same checksum
    rebuilt = runner.invoke(app, ["datasets", "build", dataset_id, "--force"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert minari.load_dataset(dataset_id).storage.metadata[CHECKSUM_KEY] == recorded
    # arrays changed after writing: verify says so and fails
    path = minari_root() / dataset_id / "data" / "main_data.hdf5"
    with h5py.File(path, "r+") as f:
        f["episode_0"]["rewards"][0] += 1.0
    tampered = runner.invoke(app, ["datasets", "verify", dataset_id])
    assert tampered.exit_code == 1
    assert "DIFFERS" in tampered.output and "--force" in tampered.output
