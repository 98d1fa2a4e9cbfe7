"""The `lnmdn` command imports a sub-command's module only when that sub-command runs.

`lnmdn --help` and the `lnmdn datasets` commands never import torch (seconds saved on every call).
Each case runs the console-script entry point in a fresh interpreter and reports which heavy
modules it imported.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
from lnmdn_agents.cli import main
sys.argv = ["lnmdn", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as stop:
    code = stop.code
else:
    code = 0
print(json.dumps({"code": code, "torch": "torch" in sys.modules}), file=sys.stderr)
"""


def run_lnmdn(*args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))],
        capture_output=True,
        text=True,
        timeout=180,
    )
    return {**json.loads(proc.stderr.strip().splitlines()[-1]), "stdout": proc.stdout}


@pytest.mark.parametrize(
    "args", [("--help",), ("--version",), ("datasets", "--help"), ("datasets", "list")]
)
def test_root_and_datasets_commands_import_no_torch(args):
    result = run_lnmdn(*args)
    assert result["code"] == 0, result
    assert result["torch"] is False, args


def test_the_probe_sees_torch_where_a_command_needs_it():
    """The control: `lnmdn train --help` does import torch, and the probe reports it."""
    result = run_lnmdn("train", "--help")
    assert result["code"] == 0 and "--policy" in result["stdout"]
    assert result["torch"] is True


def test_help_lists_every_subcommand_without_importing_it():
    from lnmdn_agents.cli import SUBCOMMANDS

    listing = run_lnmdn("--help")["stdout"].split("Commands:")[1]
    assert [line.split()[0] for line in listing.splitlines() if line.strip()] == list(SUBCOMMANDS)
