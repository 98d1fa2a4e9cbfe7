"""Every bad input to `lnmdn`: one `error:` line naming the value, exit != 0, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from lnmdn_agents import make_policy, save_policy
from lnmdn_agents.cli import app

TINY = {"d_model": 8, "n_layers": 1, "n_heads": 2, "rnn_layers": 1, "rnn_hidden": 8}
TINY.update({"decoder_hidden": 8, "action_embed_dim": 4, "horizon": 8, "n_action_steps": 4})


def one_error_line(result, *needles: str) -> str:
    """The command failed with exactly one `error:` line that contains every needle."""
    assert result.exit_code != 0, result.output
    # an exception escaping the command would be a traceback in a terminal
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


@pytest.fixture
def run_folder(tmp_path: Path) -> Path:
    """A policy folder (config.json + model.safetensors), as lnmdn train writes it."""
    torch.manual_seed(0)
    return save_policy(make_policy("gru_mdn", **TINY), tmp_path / "run")


def test_eval_truncated_checkpoint(run_folder):
    weights = run_folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    one_error_line(invoke("eval", str(run_folder), "--env", "lnmdn/PushT-v0"), "truncated")


def test_eval_config_with_unknown_field(run_folder):
    cfg = json.loads((run_folder / "config.json").read_text())
    (run_folder / "config.json").write_text(json.dumps({**cfg, "d_modle": 8}))
    one_error_line(invoke("eval", str(run_folder), "--env", "lnmdn/PushT-v0"), "'d_modle'")


def test_eval_config_with_wrong_typed_field(run_folder):
    cfg = json.loads((run_folder / "config.json").read_text())
    (run_folder / "config.json").write_text(json.dumps({**cfg, "d_model": "8"}))
    one_error_line(
        invoke("eval", str(run_folder), "--env", "lnmdn/PushT-v0"), "d_model", "'8'", "int"
    )


def test_eval_unknown_env(run_folder):
    one_error_line(
        invoke("eval", str(run_folder), "--env", "lnmdn/PushT-v9", "--no-offline"),
        "unknown env id 'lnmdn/PushT-v9'",
        "lnmdn/PushT-v0",
    )


def test_eval_inference_steps_on_a_policy_without_them(run_folder):
    one_error_line(
        invoke("eval", str(run_folder), "--env", "lnmdn/PushT-v0", "--inference-steps", "5"),
        "gru_mdn",
        "--inference-steps",
    )


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--set", "noequals"], ["'noequals'", "FIELD=VALUE"]),
        (["--set", "dropout=x"], ["dropout='x'", "float"]),
        (["--set", "d_modle=8"], ["'d_modle'", "Did you mean 'd_model'"]),
        (["--policy", "diffusion", "--set", "down_dims=a,b"], ["down_dims='a,b'", "24,48,48"]),
        (["--policy", "nope"], ["unknown policy 'nope'"]),
        (["--epochs", "x"], ["--epochs 'x'", "lnmdn train --help"]),
        (["--fraction", "2"], ["fraction must be in (0, 1]"]),
    ],
)
def test_train_bad_inputs(tmp_path, args, needles):
    one_error_line(invoke("train", "--output-dir", str(tmp_path), *args), *needles)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_train_cuda_without_cuda(tmp_path):
    one_error_line(
        invoke("train", "--device", "cuda", "--output-dir", str(tmp_path)),
        "CUDA is not available",
        "--device cpu",
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_eval_cuda_without_cuda(run_folder):
    one_error_line(
        invoke("eval", str(run_folder), "--env", "lnmdn/PushT-v0", "--device", "cuda"),
        "CUDA is not available",
        "--device cpu",
    )


def test_debug_shows_the_traceback(tmp_path):
    result = invoke("--debug", "train", "--set", "noequals", "--output-dir", str(tmp_path))
    assert isinstance(result.exception, ValueError)


def test_console_script_prints_one_line_and_exits_1(tmp_path):
    """The real entry point (not the test runner): stderr is one line, status 1."""
    proc = subprocess.run(
        [sys.executable, "-m", "lnmdn_agents.cli", "train", "--set", "dropout=x"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: dropout='x': LiquidMDNConfig.dropout must be a number (float)"
    ]


def test_version():
    from importlib.metadata import version

    result = invoke("--version")
    assert result.exit_code == 0 and result.output.strip() == f"lnmdn {version('lnmdn')}"


def test_help_is_plain_and_whole():
    """No reST backticks, no `<bool>` on flags, no text cut with an ellipsis."""
    for command in (["--help"], ["train", "--help"], ["eval", "--help"], ["bench", "--help"]):
        result = CliRunner().invoke(app, command, env={"COLUMNS": "80"})
        assert result.exit_code == 0, result.output
        assert "`" not in result.output, command
        assert "<bool>" not in result.output and "…" not in result.output, command
    for group in (["--help"], ["datasets", "--help"], ["runs", "--help"]):
        listing = CliRunner().invoke(app, group, env={"COLUMNS": "80"}).output
        commands = listing.split("Commands:")[1].splitlines()
        assert commands and not any(line.rstrip().endswith("...") for line in commands), listing
    train_help = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "80"}).output
    assert "--progress / --no-progress" in train_help
    assert "<dataset>_<policy>_frac<f>_seed<s>" in train_help.replace("\n", "").replace(" ", "")


def test_policies_lists_fields_defaults_and_preset_widths():
    listed = invoke("policies")
    assert listed.exit_code == 0 and "diffusion" in listed.output and "liquid_mdn" in listed.output
    shown = invoke("policies", "diffusion")
    assert shown.exit_code == 0, shown.output
    line = next(x for x in shown.output.splitlines() if x.startswith("down_dims:"))
    assert line.startswith("down_dims: tuple[int, ...] = 80,160,304")
    assert "[quick: 24,48,48]" in line
    one_error_line(invoke("policies", "difusion"), "Did you mean 'diffusion'")


def test_unknown_subcommand_suggests_the_close_one():
    result = invoke("trian")
    assert result.exit_code == 2
    one_error_line(result, "No such command 'trian'", "Did you mean 'train'?", "lnmdn --help")
