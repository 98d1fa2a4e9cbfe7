"""`lnmdn eval` and `lnmdn bench` end to end on a tiny Push-T dataset, plus bench bookkeeping."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lnmdn_agents.bench import cell_id, make_preset, plan_cells
from lnmdn_agents.bench.cells import cell_numbers
from lnmdn_agents.checkpoint import load_policy
from lnmdn_agents.cli import app

TINY_MODELS = {
    "liquid_mdn": {
        "d_model": 16,
        "n_layers": 1,
        "n_heads": 2,
        "rnn_layers": 1,
        "rnn_hidden": 16,
        "cfc_backbone_units": 16,
        "decoder_hidden": 16,
        "action_embed_dim": 8,
    },
    "diffusion": {
        "d_model": 16,
        "n_layers": 1,
        "n_heads": 2,
        "down_dims": (8, 16, 16),
        "n_groups": 4,
        "num_inference_steps": 3,
        "sampler": "ddim",
    },
}


@pytest.fixture(scope="module")
def tiny_pusht_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-episode Push-T dataset made by the suite's own expert, built once for this module."""
    return build_tiny_pusht(tmp_path_factory.mktemp("minari_tiny_pusht"))


def build_tiny_pusht(root: Path) -> Path:
    """Build a 6-episode ``lnmdn/pusht/expert-v0`` into the Minari root ``root``."""
    from lnmdn_datasets.recipes import build

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(root))
        build("lnmdn/pusht/expert-v0", n_episodes=6, progress=False)
    return root


def tiny_run(dataset: str, policy: str, out: Path) -> Path:
    """One epoch of a tiny ``policy`` on ``dataset``, in ``out/runs``."""
    from lnmdn_agents.training import TrainConfig, train

    cfg = TrainConfig(
        policy=policy,
        dataset=dataset,
        epochs=1,
        output_dir=str(out / "runs"),
        val_max_windows=16,
        progress=False,
        num_threads=1,
        policy_overrides=TINY_MODELS[policy],
    )
    return train(cfg)


@pytest.fixture
def tiny_pusht(_isolated_minari_root, tiny_pusht_root, monkeypatch) -> str:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tiny_pusht_root))
    return "lnmdn/pusht/expert-v0"


def tiny_preset(**kw):
    base = dict(
        epochs=1,
        batch_size=64,
        policy_overrides=TINY_MODELS,
        episodes=2,
        n_envs=2,
        max_windows=32,
        latency_calls=2,
        diffusion_steps=(1, 3),
        sweep_max_windows=16,
        val_max_windows=32,
        trajectory_samples=3,
        train_threads=1,
    )
    base.update(kw)
    return make_preset("quick", **base)


def test_bench_demo_preset_end_to_end_and_resume(tiny_pusht, tmp_path, monkeypatch, capsys):
    import os

    import lnmdn_agents.bench as bench

    out = tmp_path / "bench"
    preset = tiny_preset()
    old_umask = os.umask(0o022)
    try:
        results = bench.run_bench(preset, out, command="lnmdn bench --preset quick")
    finally:
        os.umask(old_umask)
    # stderr is not a terminal here: no progress-bar redraws (a 1-epoch bench wrote 49 KB of them)
    assert "\r" not in capsys.readouterr().err
    assert sorted(results["computed"]) == sorted(
        cell_id("pusht", p, 1.0, 0) for p in ("liquid_mdn", "diffusion")
    )
    summary = results["summary"]["pusht"]
    assert set(summary) == {"liquid_mdn", "diffusion"}
    assert summary["diffusion"]["offline"]["nll_kind"] == "bound"
    assert summary["liquid_mdn"]["offline"]["nll_kind"] == "exact"
    for entry in summary.values():
        assert entry["closed_loop"]["n_episodes"] == 2
        bok = entry["offline"]["best_of_k_mse"]
        assert bok["1"] >= bok["10"]
    sweep = next(c for c in results["cells"] if c["policy"] == "diffusion")["step_sweep"]
    assert [p["steps"] for p in sweep] == [1, 3]
    for name in ("val_nll", "best_of_k", "per_horizon", "trajectories", "latency_accuracy"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 5000, name
    assert "sample_efficiency" not in results["figures"]  # one fraction: nothing to draw
    report = (out / "report.md").read_text()
    assert "| pusht | liquid_mdn |" in report and "figures/best_of_k.png" in report
    # one source of numbers: the sweep's point at the configured 3 DDIM steps is the table's
    diffusion = summary["diffusion"]
    point = next(p for p in sweep if p["steps"] == 3)
    assert point["source"] == "table"
    assert point["latency_ms"] == diffusion["latency"]["end_to_end_ms"]
    assert point["mse"] == diffusion["offline"]["best_of_k_mse"]["10"]
    assert next(p for p in sweep if p["steps"] == 1)["n_windows"] == 16  # sweep_max_windows
    # the command, each cell's config and the gifs are in the report
    assert "Command: `lnmdn bench --preset quick`" in report
    assert (
        "| pusht/diffusion/frac1/seed0 | d_model=16, n_layers=1, n_heads=2, down_dims=8,16,16"
        in report
    )
    gifs = re.findall(r"!\[[^]]*\]\(([^)]+\.gif)\)", report)
    assert len(gifs) == 2 and all((out / g).is_file() for g in gifs)
    # world-readable outputs (umask 022), not mkstemp's 0600
    for path in (out / "report.md", out / "results.json", *(out / "cells").glob("*.json")):
        assert path.stat().st_mode & 0o777 == 0o644, path
    run_files = (out / "runs" / "pusht_diffusion_frac1_seed0").rglob("*")
    assert all(p.stat().st_mode & 0o004 for p in run_files), "a run file is not world-readable"
    cell = json.loads(next((out / "cells").glob("pusht__diffusion*.json")).read_text())
    assert cell["trajectories"]["labels"] == ["agent target x (px)", "agent target y (px)"]
    assert cell["train_config"]["epochs"] == 1 and cell["command"] == "lnmdn bench --preset quick"
    saved = json.loads((out / "results.json").read_text())
    assert saved["n_cells"] == 2

    # resumable: finished cells are not recomputed (training would fail loudly if called)
    def no_training(*a, **k):
        raise AssertionError("a finished cell was recomputed")

    monkeypatch.setattr(bench.run, "run_cell", no_training)  # where run_bench calls it
    again = bench.run_bench(preset, out)
    assert again["computed"] == [] and again["n_cells"] == 2
    with pytest.raises(AssertionError, match="recomputed"):  # the patch above does take effect
        bench.run_bench(preset, out, force=True)


def test_eval_cli_writes_eval_info_and_compares_runs(tiny_pusht, tmp_path):
    runs = [tiny_run(tiny_pusht, policy, tmp_path) for policy in ("liquid_mdn", "diffusion")]
    result = CliRunner().invoke(
        app,
        ["eval", *map(str, runs), "--episodes", "2", "--max-windows", "16", "--n-envs", "2"],
    )
    assert result.exit_code == 0, result.output
    assert "liquid_mdn" in result.output and "diffusion" in result.output
    assert "success [95% CI]" in result.output
    for run in runs:
        info = json.loads((Path(run) / "eval_info.json").read_text())
        assert info["env_id"] == "lnmdn/PushT-v0"
        assert info["closed_loop"]["seeds"] == [100000, 100001]
        assert info["closed_loop"]["seeds_checked_against"] == tiny_pusht
        assert info["offline"]["n_windows"] == 16
        assert info["params"]["total"] > 0


def test_eval_no_offline_table_has_no_offline_columns(tiny_pusht, tmp_path):
    run = tiny_run(tiny_pusht, "liquid_mdn", tmp_path)
    result = CliRunner().invoke(
        app,
        ["eval", str(run), "--episodes", "1", "--no-offline", "--deterministic", "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    header = result.output.splitlines()[0].split("  ")
    assert "best-of-1" not in result.output and "MSE det" not in result.output
    assert len([h for h in header if h.strip()]) == len({h.strip() for h in header if h.strip()})
    assert "ep len in env steps" in result.output
    info = json.loads((Path(run) / "eval_info.json").read_text())
    assert info["settings"]["deterministic"] is True
    assert info["closed_loop"]["deterministic"] is True
    assert info["closed_loop"]["mean_chunks"] == pytest.approx(
        info["closed_loop"]["mean_length"] / 8, abs=1
    )
    listed = CliRunner().invoke(app, ["runs", "list", str(tmp_path / "runs")])
    assert listed.exit_code == 0, listed.output
    row = listed.output.splitlines()[2]
    assert row.split()[:4] == [run.name, "liquid_mdn", tiny_pusht, "1/1"]
    assert row.split()[-2:] == [f"{info['closed_loop']['success_rate']:.2f}", "(n=1)"]


def test_maze_trajectories_are_drawn_in_the_maze_plane(_isolated_minari_root):
    """PointMaze chunks become the ball's x-y path: replaying the demo chunk from the window's
    observation retraces the recorded positions, and the figure's axes say x (m), y (m)."""
    from lnmdn_agents.bench.trajectories import maze_paths
    from lnmdn_agents.data import load_episodes
    from lnmdn_agents.evaluation.report import plot_trajectories
    from lnmdn_datasets.recipes import build

    build("lnmdn/pointmaze-bimodal/expert-v0", n_episodes=2, progress=False)
    ep = load_episodes("lnmdn/pointmaze-bimodal/expert-v0")[0]
    t, to, horizon = 10, 2, 16
    obs = ep.observations[t - to + 1 : t + 1]
    demo = ep.actions[t - to + 1 : t - to + 1 + horizon]
    traj = {"obs": [obs.tolist()], "demo": [demo.tolist()], "samples": [[demo.tolist()]]}
    paths = maze_paths("lnmdn/PointMaze-Bimodal-v0", traj, n_obs_steps=to)
    xy = np.asarray(paths["xy_demo"][0])
    recorded = ep.observations[t : t + len(xy), :2]
    assert xy.shape == (horizon - to + 2, 2)
    np.testing.assert_allclose(xy, recorded, atol=1e-4)  # float32 observations as the start state
    assert paths["xy_samples"][0][0] == paths["xy_demo"][0]
    assert paths["labels"] == ["x (m)", "y (m)"] and [0.0, 0.0] in paths["walls"]
    fig = plot_trajectories({"pointmaze-bimodal": {"diffusion": {**traj, **paths}}},
                            _isolated_minari_root / "traj.png", n_windows=1)  # fmt: skip
    assert fig is not None and fig.stat().st_size > 5000


def test_eval_cli_rejects_a_folder_that_is_not_a_run(tmp_path):
    result = CliRunner().invoke(app, ["eval", str(tmp_path), "--episodes", "1"])
    assert result.exit_code != 0
    assert "not a run folder" in re.sub(r"[\s│]+", " ", result.output)


def test_plan_filters_and_presets():
    paper = make_preset("paper")
    assert paper.tasks == ("pusht", "can", "pointmaze-medium") and len(paper.fractions) == 7
    cells = plan_cells(paper, task="can", policy="diffusion")
    assert len(cells) == 7 * len(paper.seeds)
    assert all(t == "can" and p == "diffusion" and pr == "standard" for t, p, _, _, pr in cells)
    only = plan_cells(paper, cell="pusht/liquid_mdn/frac1/seed*")
    assert [(f, s) for _, _, f, s, _ in only] == [(1.0, s) for s in paper.seeds]
    with pytest.raises(ValueError, match="unknown bench preset"):
        make_preset("huge")
    with pytest.raises(ValueError, match="unknown preset field"):
        make_preset("demo", epoch=3)
    with pytest.raises(ValueError, match="unknown bench task"):
        make_preset("demo", tasks=("cartpole",))


def test_bench_cli_lists_cells(tmp_path):
    args = ["bench", "--preset", "paper", "--task", "pusht", "--list", "--no-progress"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("todo  pusht/")
    assert len(lines) == len(plan_cells(make_preset("paper"), task="pusht"))


def test_bench_task_option_runs_the_preset_on_a_task_it_does_not_list(tmp_path):
    assert "pointmaze-bimodal" not in make_preset("demo").tasks
    result = CliRunner().invoke(
        app, ["bench", "--task", "pointmaze-bimodal", "--list", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.split() == [
        "todo",
        "pointmaze-bimodal/liquid_mdn/frac1/seed0",
        "todo",
        "pointmaze-bimodal/diffusion/frac1/seed0",
    ]


def test_evaluation_seeds_must_not_be_dataset_seeds(tiny_pusht):
    from lnmdn_agents.evaluation.rollout import check_seeds_disjoint, dataset_seeds

    seeds = dataset_seeds(tiny_pusht)  # the recipe's seeds, counted from its base seed
    assert seeds is not None and len(seeds) == 6 and max(seeds) < 100000
    assert check_seeds_disjoint([100000, 100001], tiny_pusht) is True
    used = max(seeds)
    with pytest.raises(ValueError, match=rf"evaluation seeds \[{used}\]"):
        check_seeds_disjoint([used, 100000], tiny_pusht)


def test_demo_preset_evaluates_the_shipped_recipe_runs(tmp_path):
    """make demo's Push-T and large-maze cells load the runs in checkpoints/, which the recipes
    must have made."""
    import shutil

    from lnmdn_agents.bench import SHIPPED_RUNS
    from lnmdn_agents.bench.cells import _pretrained_run
    from lnmdn_agents.recipes import load_recipe

    demo = make_preset("demo")
    assert demo.recipes and demo.tasks == ("pusht", "pointmaze-large", "pointmaze-umaze")
    assert set(demo.pretrained) == {
        f"{t}/{p}" for t in ("pusht", "pointmaze-large") for p in ("liquid_mdn", "diffusion")
    }
    # the large maze is tested on 200 episodes (fewer do not separate its heads), the rest on 50
    assert demo.episodes == 200 and demo.task_episodes == {"pusht": 50, "pointmaze-umaze": 50}
    for name, folder in demo.pretrained.items():
        folder = Path(folder)
        assert folder.parent == SHIPPED_RUNS
        cfg = load_recipe(name).train_config()
        assert _pretrained_run(folder, cfg) == folder
        policy = load_policy(folder / "best")
        assert policy.config.to_dict()["name"] == name.split("/")[1]
        curve = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
        assert any("eval/mean_score" in r for r in curve)
    # a shipped run that another setting made is refused, with the differing field named
    copy = tmp_path / "run"
    shutil.copytree(Path(demo.pretrained["pusht/diffusion"]), copy)
    saved = json.loads((copy / "train_config.json").read_text())
    saved["lr"] = 123.0
    (copy / "train_config.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="'lr'"):
        _pretrained_run(copy, load_recipe("pusht/diffusion").train_config())
    with pytest.raises(FileNotFoundError, match="lnmdn train --recipe"):
        _pretrained_run(tmp_path / "missing", load_recipe("pusht/diffusion").train_config())


def test_reference_preset_plans_both_protocols_on_the_three_tasks():
    ref = make_preset("reference")
    cells = plan_cells(ref)
    assert {(t, pr) for t, _, _, _, pr in cells} == {
        (t, pr) for t in ("pusht", "can", "pointmaze-umaze") for pr in ("standard", "reference")
    }
    assert len(cells) == 12 and ref.starts == ("random", "dataset") and ref.start_steps == 200
    ids = [cell_id(*c) for c in cells]
    assert "pusht/liquid_mdn/frac1/seed0" in ids and "pusht/liquid_mdn/frac1/seed0/reference" in ids
    with pytest.raises(ValueError, match="unknown protocol"):
        make_preset("reference", protocols=("paper",))


def test_bench_under_both_protocols_reports_them_side_by_side(tiny_pusht, tmp_path):
    from lnmdn_agents.bench import run_bench

    preset = tiny_preset(
        protocols=("standard", "reference"), starts=("random", "dataset"), start_steps=16
    )
    out = tmp_path / "bench"
    results = run_bench(preset, out, progress=False)
    cells = {c["cell"]: c for c in results["cells"]}
    ref = cells["pusht/liquid_mdn/frac1/seed0/reference"]
    assert ref["protocol"] == "reference" and ref["policy_config"]["obs_window"] == "horizon"
    assert ref["train_config"]["protocol"] == "reference"
    assert cells["pusht/diffusion/frac1/seed0"]["policy_config"]["obs_window"] == "history"
    for c in cells.values():
        data = c["closed_loop_dataset"]
        assert data["starts"]["max_steps"] == 16
        assert all(e["length"] <= 16 for e in data["episodes"])
        assert c["closed_loop"]["seeds"] == [100000, 100001]
    policies = [row[1] for row in results["table"]["rows"]]
    assert sorted(policies) == [
        "diffusion", "diffusion (reference)", "liquid_mdn", "liquid_mdn (reference)"
    ]  # fmt: skip
    assert "success data-start" in results["table"]["header"]
    assert [r[:2] for r in results["protocols"]["rows"]] == [
        ["pusht", "liquid_mdn"], ["pusht", "diffusion"]
    ]  # fmt: skip
    assert set(results["protocols"]["ratios"]["pusht"]) == {"standard", "reference"}
    report = (out / "report.md").read_text()
    assert "## Protocols side by side" in report and "(reference)" in report
    assert (out / "figures" / "protocol_ratios.png").is_file()


def test_jobs_run_cells_in_worker_processes_with_the_numbers_of_one_process(
    tiny_pusht, tmp_path, capfd, caplog
):
    from lnmdn_agents.bench import run_bench

    caplog.set_level("INFO")  # the workers log at this process's level, as the CLI sets it
    alone = run_bench(tiny_preset(), tmp_path / "alone", progress=False)
    capfd.readouterr()
    both = run_bench(tiny_preset(jobs=2), tmp_path / "both", progress=False)
    err = capfd.readouterr().err
    # the workers' log lines (on the inherited stderr) name their cell
    for p in ("liquid_mdn", "diffusion"):
        assert re.search(rf"INFO \[pusht/{p}/frac1/seed0\] lnmdn_agents\.training", err), err
    assert sorted(both["computed"]) == sorted(alone["computed"]) and both["n_cells"] == 2
    names = sorted(p.name for p in (tmp_path / "alone" / "cells").glob("*.json"))
    assert names == sorted(p.name for p in (tmp_path / "both" / "cells").glob("*.json"))
    for name in names:
        mine = json.loads((tmp_path / "alone" / "cells" / name).read_text())
        theirs = json.loads((tmp_path / "both" / "cells" / name).read_text())
        assert theirs["closed_loop"]["n_episodes"] == 2 and theirs["trajectories"]["samples"]
        assert cell_numbers(theirs) == cell_numbers(mine), name


def test_a_failing_cell_in_a_worker_stops_the_run_with_its_error(tiny_pusht, tmp_path):
    from lnmdn_agents.bench import run_bench

    broken = {**TINY_MODELS, "diffusion": {**TINY_MODELS["diffusion"], "down_dims": (8, 16, 7)}}
    with pytest.raises(ValueError, match="down_dims"):
        run_bench(tiny_preset(jobs=2, policy_overrides=broken), tmp_path / "bench")
    assert not (tmp_path / "bench" / "cells" / "pusht__diffusion__frac1__seed0.json").exists()


def test_local_jobs_are_bounded_by_the_cells_and_checked():
    from lnmdn_agents.bench.executors import local_jobs

    assert local_jobs(1, 6) == 1 and local_jobs(4, 3) == 3 and local_jobs(2, 6) == 2
    assert 1 <= local_jobs(0, 6) <= (os.cpu_count() or 1)
    with pytest.raises(ValueError, match="jobs must be >= 0"):
        local_jobs(-1, 6)
    with pytest.raises(ValueError, match="jobs must be >= 0"):
        make_preset("demo", jobs=-1)
    assert make_preset("demo").jobs == 0 and make_preset("quick").jobs == 1
    result = CliRunner().invoke(app, ["bench", "--executor", "ray", "--jobs", "2"])
    assert result.exit_code != 0 and "--jobs applies to --executor local" in result.output
