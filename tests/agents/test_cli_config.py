"""`--config FILE` of `lnmdn train` and `lnmdn bench`: defaults < recipe/preset < file < options.

Nothing trains here except one tiny run whose own train_config.json is read back: `train` and
`run_bench` are replaced by stand-ins that keep the config they are given.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import lnmdn_agents.bench.cli as bench_cli
import lnmdn_agents.training.cli as train_cli
from lnmdn_agents.bench import BenchPreset, make_preset
from lnmdn_agents.cli import app
from lnmdn_agents.config_fields import ConfigTypeError, read_config_file
from lnmdn_agents.data import Episode
from lnmdn_agents.recipes import load_recipe
from lnmdn_agents.training import TrainConfig, train
from lnmdn_agents.training.config import config_diff

SHIPPED = Path(__file__).resolve().parents[2] / "checkpoints"


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def write(path: Path, fields: dict) -> str:
    path.write_text(json.dumps(fields))
    return str(path)


@pytest.fixture
def trained(monkeypatch) -> list[TrainConfig]:
    """The configs `lnmdn train` would train, in order (nothing is trained)."""
    seen: list[TrainConfig] = []
    monkeypatch.setattr(train_cli, "train", lambda config, **kw: seen.append(config))
    return seen


def error_line(result) -> str:
    """The one `error:` line of a failed command (no traceback)."""
    assert result.exit_code != 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


# -- lnmdn train --------------------------------------------------------------------------------
def test_train_config_file_sets_the_fields_it_names(tmp_path, trained):
    fields = {"policy": "diffusion", "epochs": 3, "lr": 2e-3, "policy_overrides": {"d_model": 32}}
    result = invoke("train", "--config", write(tmp_path / "c.json", fields))
    assert result.exit_code == 0, result.output
    (config,) = trained
    assert (config.policy, config.epochs, config.lr) == ("diffusion", 3, 2e-3)
    assert config.policy_overrides == {"d_model": 32}
    assert config.batch_size == TrainConfig().batch_size  # not in the file: the default


def test_train_options_given_beat_the_file_and_the_file_beats_the_recipe(tmp_path, trained):
    fields = {"policy": "diffusion", "epochs": 7, "lr": 5e-4, "batch_size": 17}
    path = write(tmp_path / "c.json", {**fields, "policy_overrides": {"d_model": 40}})
    args = ["--config", path, "--epochs", "3", "--set", "sampler=ddpm"]
    assert invoke("train", *args).exit_code == 0
    assert invoke("train", "--recipe", "can/diffusion", *args).exit_code == 0
    plain, from_recipe = trained
    recipe = load_recipe("can/diffusion")
    assert (plain.epochs, plain.lr, plain.batch_size) == (3, 5e-4, 17)
    assert plain.policy_overrides == {"d_model": 40, "sampler": "ddpm"}
    assert (from_recipe.epochs, from_recipe.lr, from_recipe.batch_size) == (3, 5e-4, 17)
    assert from_recipe.dataset == recipe.train["dataset"]  # not in the file: the recipe's
    assert from_recipe.policy_overrides == {
        **recipe.train["policy_overrides"],
        "d_model": 40,
        "sampler": "ddpm",
    }
    assert from_recipe.run_name == "can_diffusion_seed0"  # the recipe's run folder


@pytest.mark.parametrize(
    ("fields", "needles"),
    [
        ({"epoch": 3}, ["'epoch' is not a TrainConfig field", "Did you mean 'epochs'?", "lr"]),
        ({"epochs": "ten"}, ["TrainConfig.epochs must be an integer (int)", "'ten'"]),
        ({"policy_overrides": [1]}, ["TrainConfig.policy_overrides must be a mapping"]),
    ],
)
def test_train_config_file_errors_name_the_key_and_the_file(tmp_path, trained, fields, needles):
    path = write(tmp_path / "bad.json", fields)
    line = error_line(invoke("train", "--config", path))
    for needle in [path, *needles]:
        assert needle in line, (needle, line)
    assert trained == []


def test_train_config_file_that_is_missing_or_not_an_object(tmp_path, trained):
    assert "does not exist" in error_line(invoke("train", "--config", str(tmp_path / "no.json")))
    (tmp_path / "list.json").write_text("[1, 2]")
    assert "holds a list" in error_line(invoke("train", "--config", str(tmp_path / "list.json")))
    (tmp_path / "text.json").write_text("epochs: 3")
    assert "not valid JSON" in error_line(invoke("train", "--config", str(tmp_path / "text.json")))


def test_a_runs_own_train_config_reproduces_it(tmp_path, trained):
    """`lnmdn train --config RUN/train_config.json --run-name Y`: the run's settings, a new name."""
    rng = np.random.default_rng(0)
    episodes = []
    for _ in range(6):
        obs = np.cumsum(rng.normal(size=(21, 5)), axis=0).astype(np.float32)
        episodes.append(Episode(obs, obs[:-1, :2].copy()))
    tiny = {"d_model": 8, "n_layers": 1, "n_heads": 2, "rnn_layers": 1, "rnn_hidden": 8}
    tiny.update(decoder_hidden=8, action_embed_dim=4, horizon=8, n_action_steps=4)
    original = TrainConfig(
        policy="gru_mdn", dataset="synthetic", epochs=1, batch_size=16, warmup_epochs=0.0,
        output_dir=str(tmp_path), run_name="first", progress=False, val_max_windows=16,
        num_threads=1, policy_overrides=tiny, split_seed=3,
    )  # fmt: skip
    run = train(original, episodes=episodes)
    saved_path = run / "train_config.json"
    saved = json.loads(saved_path.read_text())
    result = invoke("train", "--config", str(saved_path), "--run-name", "again")
    assert result.exit_code == 0, result.output
    (config,) = trained
    assert config.run_name == "again"
    assert {**json.loads(json.dumps(config.to_dict())), "run_name": "first"} == saved
    assert config.to_dict() == {**original.to_dict(), "run_name": "again"}


@pytest.mark.parametrize("run", sorted(p.parent.name for p in SHIPPED.glob("*/train_config.json")))
def test_the_shipped_runs_train_configs_are_valid_config_files(run, trained):
    saved_path = SHIPPED / run / "train_config.json"
    saved = json.loads(saved_path.read_text())
    assert invoke("train", "--config", str(saved_path), "--run-name", "again").exit_code == 0
    (config,) = trained
    assert config_diff(saved, config, ignored={"run_name"}) == {}


# -- lnmdn bench --------------------------------------------------------------------------------
def test_bench_config_file_sets_preset_fields_and_options_replace_them(tmp_path, monkeypatch):
    path = write(tmp_path / "b.json", {"seeds": [0, 1], "policies": ["diffusion"], "epochs": 7})
    listed = invoke(
        "bench", "--preset", "quick", "--config", path, "--list", "--out", str(tmp_path)
    )
    assert listed.exit_code == 0, listed.output
    cells = listed.output.split()[1::2]
    assert cells == ["pusht/diffusion/frac1/seed0", "pusht/diffusion/frac1/seed1"]

    seen = []

    def fake_run_bench(preset, out, **kw):
        seen.append((preset, kw["command"]))
        table = {"header": ["cell"], "rows": []}
        return {"table": table, "computed": [], "n_cells": 0, "report": "r", "out": str(out),
                "failed": []}  # fmt: skip

    monkeypatch.setattr(bench_cli, "run_bench", fake_run_bench)
    args = ["bench", "--preset", "quick", "--config", path, "--epochs", "3", "--seeds", "5"]
    result = invoke(*args, "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    ((preset, command),) = seen
    quick = make_preset("quick")
    assert (preset.epochs, preset.seeds, preset.policies) == (3, (5,), ("diffusion",))
    assert (preset.lr, preset.batch_size) == (quick.lr, quick.batch_size)  # the preset's
    assert f"--config {path}" in command


def test_bench_config_file_errors_name_the_key_and_the_file(tmp_path):
    path = write(tmp_path / "b.json", {"seed": [1]})
    line = error_line(invoke("bench", "--preset", "quick", "--config", path, "--list"))
    assert path in line and "'seed' is not a BenchPreset field" in line
    assert "Did you mean 'seeds'?" in line
    path = write(tmp_path / "b.json", {"seeds": "0,1"})
    line = error_line(invoke("bench", "--preset", "quick", "--config", path, "--list"))
    assert path in line and "BenchPreset.seeds must be a list of int values" in line


def test_a_config_files_null_replaces_the_presets_value(tmp_path):
    """make_preset applies a file's fields as given (None included); options only when set."""
    path = write(tmp_path / "b.json", {"recipes": True, "epochs": None})
    preset = make_preset("quick", read_config_file(BenchPreset, path), epochs=None)
    assert preset.recipes and preset.epochs is None
    with pytest.raises(ConfigTypeError, match=r"BenchPreset\.epochs"):
        read_config_file(BenchPreset, write(tmp_path / "c.json", {"epochs": 1.5}))
