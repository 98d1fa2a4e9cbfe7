"""`lnmdn bench --executor ray` on a local Ray (2 CPUs) with tiny cells on a tiny Push-T dataset."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_bench import TINY_MODELS, build_tiny_pusht, tiny_preset
from typer.testing import CliRunner

import lnmdn_agents.bench as bench
from lnmdn_agents.bench import cell_id, run_bench
from lnmdn_agents.bench.cells import cell_numbers
from lnmdn_agents.bench.executors import cell_resources, require_ray
from lnmdn_agents.cli import app

ray = pytest.importorskip("ray", reason="the 'distributed' extra (Ray) is not installed")

TESTS_DIR = Path(__file__).parent


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-episode Push-T dataset made by the suite's own expert, built once for this module."""
    return build_tiny_pusht(tmp_path_factory.mktemp("minari_tiny_pusht_ray"))


@pytest.fixture(scope="module")
def ray_cluster(tiny_root: Path) -> Any:
    """A local Ray of 2 CPUs; its workers (of every job) read the tiny dataset root."""
    with pytest.MonkeyPatch.context() as mp:
        # Ray's processes inherit the environment of ray.init: every worker sees the tiny data.
        mp.setenv("MINARI_DATASETS_PATH", str(tiny_root))
        ctx = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ctx
    ray.shutdown()


@pytest.fixture
def tiny_data(tiny_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tiny_root))
    return tiny_root


def test_ray_executor_gives_the_local_executor_results(
    tiny_data, ray_cluster, tmp_path, monkeypatch, caplog
):
    preset = tiny_preset()
    # The local executor needs no Ray: with `import ray` failing, it still runs.
    with monkeypatch.context() as mp:
        mp.setitem(sys.modules, "ray", None)
        local = run_bench(preset, tmp_path / "local")
    monkeypatch.setitem(bench.PRESETS, "tiny", lambda: tiny_preset())
    out = tmp_path / "ray"
    with caplog.at_level("INFO", logger="lnmdn_agents.bench.executors"):
        result = CliRunner().invoke(
            app, ["bench", "--preset", "tiny", "--executor", "ray", "--out", str(out)]
        )
    assert result.exit_code == 0, result.output
    assert "2 cell(s) computed, 2 in the report" in result.output
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("bench [")]
    assert sorted(p[:12] for p in progress) == ["bench [1/2] ", "bench [2/2] "], progress

    remote = json.loads((out / "results.json").read_text())
    assert remote["failed"] == [] and remote["n_cells"] == local["n_cells"] == 2
    by_cell = {c["cell"]: c for c in remote["cells"]}
    for cell in local["cells"]:
        other = by_cell[cell["cell"]]
        assert other["run_dir"].startswith(str(out.resolve()))
        # Same training and evaluation: every number but the timings is identical.
        assert cell_numbers(other) == cell_numbers(cell), cell["cell"]
        assert cell["offline"]["best_of_k_mse"] and cell["closed_loop"]["n_episodes"] == 2
    assert remote["table"]["rows"][0][:8] == local["table"]["rows"][0][:8]
    # The cell files (with the sampled trajectories results.json leaves out) match too.
    names = sorted(p.name for p in (tmp_path / "local" / "cells").glob("*.json"))
    assert names == sorted(p.name for p in (out / "cells").glob("*.json")) and len(names) == 2
    for name in names:
        mine = json.loads((tmp_path / "local" / "cells" / name).read_text())
        theirs = json.loads((out / "cells" / name).read_text())
        assert mine["trajectories"]["samples"]
        assert cell_numbers(theirs) == cell_numbers(mine), name


def test_a_failing_cell_is_retried_then_reported_and_the_others_finish(
    tiny_data, ray_cluster, tmp_path, monkeypatch, caplog
):
    broken = {**TINY_MODELS, "diffusion": {**TINY_MODELS["diffusion"], "no_such_field": 1}}
    monkeypatch.setitem(bench.PRESETS, "tiny", lambda: tiny_preset(policy_overrides=broken))
    out = tmp_path / "bench"
    with caplog.at_level("INFO", logger="lnmdn_agents.bench.executors"):
        result = CliRunner().invoke(
            app,
            [
                "bench",
                "--preset",
                "tiny",
                "--executor",
                "ray",
                "--max-retries",
                "2",
                "--out",
                str(out),
            ],
        )
    bad = cell_id("pusht", "diffusion", 1.0, 0)
    good = cell_id("pusht", "liquid_mdn", 1.0, 0)
    assert result.exit_code == 1, result.output
    assert "1 cell(s) FAILED" in result.output
    assert f"{bad}: 3 attempt(s), last: ValueError: policy_overrides" in result.output
    assert "no_such_field" in result.output
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert [m.split(" (")[1][:12] for m in retries] == ["attempt 1 of", "attempt 2 of"]

    saved = json.loads((out / "results.json").read_text())
    assert [c["cell"] for c in saved["cells"]] == [good]
    (failure,) = saved["failed"]
    assert failure["cell"] == bad and failure["attempts"] == 3 and len(failure["errors"]) == 3
    assert "no_such_field" in failure["error"]
    tb = failure["traceback"]  # the worker's, where the cell raised, without terminal colours
    assert 'training/config.py", line' in tb and "no_such_field" in tb and "\x1b" not in tb
    report = (out / "report.md").read_text()
    assert "## Failed cells" in report and f"| {bad} | 3 | ValueError:" in report
    assert not (out / "cells" / (bad.replace("/", "__") + ".json")).exists()


DRIVER = """
import logging, sys
sys.path.insert(0, {tests!r})
from test_bench import tiny_preset
from lnmdn_agents.bench import run_bench
logging.basicConfig(level=logging.INFO)
run_bench(tiny_preset(policies=("liquid_mdn",), seeds=(0, 1, 2, 3)), {out!r},
          executor="ray", address={address!r})
"""


def test_killing_the_driver_then_rerunning_computes_only_the_missing_cells(
    tiny_data, ray_cluster, tmp_path
):
    out = tmp_path / "bench"
    cells_dir = out / "cells"
    script = DRIVER.format(
        tests=str(TESTS_DIR), out=str(out), address=ray_cluster.address_info["gcs_address"]
    )
    log = (tmp_path / "driver.log").open("w")
    driver = subprocess.Popen([sys.executable, "-c", script], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 300  # generous: a loaded CI machine
        while not (cells_dir.is_dir() and any(cells_dir.glob("*.json"))):
            assert driver.poll() is None, (tmp_path / "driver.log").read_text()
            assert time.monotonic() < deadline, "no cell finished in 300 s"
            time.sleep(0.1)
        os.kill(driver.pid, signal.SIGKILL)  # mid-sweep: the other cells are queued or running
    finally:
        driver.kill()
        driver.wait()
        log.close()
    # Ray stops the dead driver's tasks (or they finish): wait for their CPUs to come back, so
    # that no cell file can appear after the snapshot below.
    deadline = time.monotonic() + 120
    while ray.available_resources().get("CPU", 0) < 2:
        assert time.monotonic() < deadline, "the killed driver's tasks hold CPUs after 120 s"
        time.sleep(0.1)
    done = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in cells_dir.glob("*.json")}
    all_cells = [cell_id("pusht", "liquid_mdn", 1.0, s) for s in range(4)]
    assert 1 <= len(done) < len(all_cells), sorted(done)

    again = run_bench(
        tiny_preset(policies=("liquid_mdn",), seeds=(0, 1, 2, 3)), out, executor="ray"
    )
    missing = {c for c in all_cells if c.replace("/", "__") + ".json" not in done}
    assert set(again["computed"]) == missing
    assert again["n_cells"] == 4 and again["failed"] == []
    for name, (mtime, content) in done.items():
        path = cells_dir / name
        assert (path.stat().st_mtime_ns, path.read_bytes()) == (mtime, content), name


def test_a_cell_asks_ray_for_its_threads_and_gpu(tiny_data, ray_cluster, tmp_path):
    assert cell_resources(tiny_preset()) == {"num_cpus": 1.0, "num_gpus": 0.0}
    assert cell_resources(tiny_preset(train_threads=2, device="cuda")) == {
        "num_cpus": 2.0,
        "num_gpus": 1.0,
    }
    # A request no node can meet fails at once instead of waiting forever.
    with pytest.raises(ValueError, match=r"asks Ray for 1 GPU, but the largest node .* has 0"):
        run_bench(tiny_preset(device="cuda"), tmp_path / "gpu", executor="ray")
    with pytest.raises(ValueError, match=r"asks Ray for 3 CPU, but the largest node .* has 2"):
        run_bench(tiny_preset(train_threads=3), tmp_path / "cpu", executor="ray")


def test_without_ray_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r'pip install "lnmdn\[distributed\]"'):
        require_ray()
    with pytest.raises(ImportError, match=r"distributed"):
        run_bench(tiny_preset(), tmp_path, executor="ray")


def test_bench_cli_rejects_ray_options_without_the_ray_executor(tmp_path):
    result = CliRunner().invoke(app, ["bench", "--address", "auto", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "apply to --executor ray" in result.output
    result = CliRunner().invoke(app, ["bench", "--executor", "dask", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "'dask'" in result.output and "local" in result.output
