"""Every Python block of the README runs as written when pasted into a file.

Each block is written to its own file and run in a fresh interpreter, in README order, in one
working folder (so the evaluation block finds the run the training block wrote) with its own
Minari root. Blocks that need what a test machine may lack are listed with the reason; the
costly ones run with ``-m slow``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"

#: A substring of the block -> why it is skipped everywhere.
SKIP = {
    'load_dataset("D4RL/pointmaze/umaze-v2"': "downloads a D4RL dataset from the network",
}
#: A substring of the block -> why it runs only with -m slow.
SLOW = {
    'gym.make("lnmdn/Can-v0")': "robosuite start-up and 4 forkserver Can workers",
    'gym.make_vec("lnmdn/Can-v0"': "4 forkserver Can workers that build robosuite",
    "TrainConfig(policy=": "trains a model on the full Push-T data (the next block needs it)",
    'load_policy("runs/': "needs the training block's run; 50 closed-loop episodes with gifs",
}


def python_blocks() -> list[tuple[int, str]]:
    text = README.read_text()
    return [
        (text[: m.start()].count("\n") + 2, m.group(1))
        for m in re.finditer(r"```python\n(.*?)```", text, re.S)
    ]


def _params() -> list:
    params = []
    for line, code in python_blocks():
        marks = []
        for needle, reason in SKIP.items():
            if needle in code:
                marks.append(pytest.mark.skip(reason=reason))
        if any(needle in code for needle in SLOW):
            marks.append(pytest.mark.slow)
        params.append(pytest.param(line, code, id=f"README.md:{line}", marks=marks))
    return params


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("readme")


def test_the_lists_name_existing_blocks():
    codes = [code for _, code in python_blocks()]
    for needle in [*SKIP, *SLOW]:
        assert any(needle in code for code in codes), f"no README block contains {needle!r}"


@pytest.mark.parametrize(("line", "code"), _params())
def test_readme_block_runs_as_written(workdir: Path, line: int, code: str):
    script = workdir / f"readme_{line}.py"
    script.write_text(code)
    env = {
        **os.environ,
        "MINARI_DATASETS_PATH": str(workdir / "minari"),
        "OMP_NUM_THREADS": "1",
        "PYTHONWARNINGS": "ignore",
    }
    proc = subprocess.run(
        [sys.executable, script.name],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, f"README.md:{line} failed:\n{proc.stderr[-4000:]}"
