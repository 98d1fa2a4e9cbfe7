"""The bench's cells: their ids and files, which ones a preset plans, and running one.

A cell is ``(task, policy, training fraction, seed, protocol)``. :func:`run_cell` trains it from
scratch (or resumes its interrupted training, or takes a shipped run made by its recipe), then
evaluates the checkpoint the run selected through
:func:`lnmdn_agents.evaluation.runs.measure_run`, the same measurement ``lnmdn eval`` makes, and
adds what only the bench's figures need (curves, sampled trajectories, the diffusion step
sweep)::

    cell = train -> offline metrics (test split), latency, params, closed loop (seeds 100000+)
                 -> sampled chunks for the trajectory figure -> diffusion step sweep (if any)

Each finished cell is written atomically to ``<out>/cells/<cell>.json`` (:func:`cell_file`);
:func:`load_cells` reads back every finished cell, from this run or copied from elsewhere.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from lnmdn_agents.bench.presets import BENCH_TASKS, BenchPreset, BenchTask
from lnmdn_agents.bench.sweep import step_sweep
from lnmdn_agents.bench.trajectories import cell_trajectories
from lnmdn_agents.checkpoint import atomic_write_text, policy_metadata
from lnmdn_agents.evaluation.latency import torch_threads
from lnmdn_agents.evaluation.runs import measure_run, read_metrics, read_train_config
from lnmdn_agents.protocols import get_protocol
from lnmdn_agents.recipes import available_recipes, load_recipe

__all__ = [
    "cell_dataset",
    "cell_file",
    "cell_id",
    "cell_numbers",
    "load_cells",
    "plan_cells",
    "run_cell",
]

logger = logging.getLogger(__name__)

#: The warm-up calls of the bench's latency measurement (``lnmdn eval`` makes 3).
_LATENCY_WARMUP = 5


def cell_id(task: str, policy: str, fraction: float, seed: int, protocol: str = "standard") -> str:
    """``pusht/liquid_mdn/frac1/seed0`` (fractions written with up to 4 significant digits).

    A cell of the reference protocol ends in ``/reference``
    (``pusht/liquid_mdn/frac1/seed0/reference``); standard cells keep their ids.
    """
    base = f"{task}/{policy}/frac{fraction:.4g}/seed{seed}"
    return base if protocol == "standard" else f"{base}/{protocol}"


def cell_file(out: Path, cid: str) -> Path:
    """Where the result of cell ``cid`` is written: ``<out>/cells/pusht__liquid_mdn__...json``."""
    return out / "cells" / (cid.replace("/", "__") + ".json")


def load_cells(out: Path) -> list[dict[str, Any]]:
    """Every finished cell under ``out/cells`` (from this run or copied from elsewhere)."""
    cells = []
    for path in sorted((out / "cells").glob("*.json")):
        try:
            cells.append(json.loads(path.read_text()))
        except json.JSONDecodeError:
            logger.warning("skipping unreadable cell file %s", path)
    return cells


def _policies(preset: BenchPreset) -> list[str]:
    from lnmdn_agents.policies import available_policies

    names = list(preset.policies) or available_policies()
    unknown = [p for p in names if p not in available_policies()]
    if unknown:
        raise ValueError(
            f"policies {unknown} are not registered; available: {available_policies()}"
        )
    return names


def plan_cells(
    preset: BenchPreset,
    task: str | None = None,
    policy: str | None = None,
    cell: str | None = None,
) -> list[tuple[str, str, float, int, str]]:
    """The cells of ``preset`` that pass the filters (``cell`` is an fnmatch pattern)."""
    cells = []
    with_recipe = set(available_recipes()) if preset.recipes else set()
    for t in preset.tasks:
        for p in _policies(preset):
            if preset.recipes and f"{t}/{p}" not in with_recipe:
                continue
            for f, s, proto in itertools.product(preset.fractions, preset.seeds, preset.protocols):
                cid = cell_id(t, p, f, s, proto)
                if task and t != task:
                    continue
                if policy and p != policy:
                    continue
                if cell and not fnmatch.fnmatch(cid, cell):
                    continue
                cells.append((t, p, f, s, proto))
    return cells


# Keys (substrings) of a cell result that depend on the clock, the process or the output folder.
_NOT_NUMBERS = ("time", "minutes", "latency", "_ms", "per_sec", "run_dir", "videos", "threads",
                "command", "output_dir", "progress")  # fmt: skip


def cell_numbers(value: Any) -> Any:
    """A cell result (or part of one) without its clock-, process- and folder-dependent fields.

    What is left is what two computations of the same cell, by any executor, must agree on.
    """
    if isinstance(value, dict):
        kept = {k: v for k, v in value.items() if not any(t in k for t in _NOT_NUMBERS)}
        return {k: cell_numbers(v) for k, v in kept.items()}
    if isinstance(value, list):
        return [cell_numbers(v) for v in value]
    return value


def cell_dataset(preset: BenchPreset, task_name: str, policy_name: str) -> str:
    """The dataset a cell trains on: its recipe's with ``preset.recipes``, else the task's."""
    if preset.recipes:
        return str(load_recipe(f"{task_name}/{policy_name}").train["dataset"])
    return BENCH_TASKS[task_name].dataset


def run_cell(
    preset: BenchPreset,
    task_name: str,
    policy_name: str,
    fraction: float,
    seed: int,
    out: Path,
    retrain: bool = False,
    *,
    progress: bool = True,
    command: str | None = None,
    protocol: str = "standard",
) -> dict[str, Any]:
    """Train and evaluate one cell; returns its result dict (also written to ``cells/``).

    An interrupted cell resumes its training from the last checkpoint; ``retrain`` deletes the
    cell's run folder first. ``progress``: bars on a terminal, log lines otherwise (False: log
    lines of training epochs only). ``command``: the command line recorded in the cell.
    ``protocol``: ``"standard"`` or ``"reference"`` (:mod:`lnmdn_agents.protocols`).
    """
    from lnmdn_agents.training import TrainConfig, train

    task = BENCH_TASKS[task_name]
    cid = cell_id(task_name, policy_name, fraction, seed, protocol)
    logger.info("bench cell %s: training", cid)
    t0 = time.perf_counter()
    place: dict[str, Any] = {
        "output_dir": str(out / "runs"),
        "run_name": cid.replace("/", "_"),
        "device": preset.device,
        "progress": progress,
        "protocol": protocol,
    }
    recipe = None
    if preset.recipes:
        recipe = load_recipe(f"{task_name}/{policy_name}")
        given = {"epochs": preset.epochs} if preset.epochs is not None else {}
        cfg = recipe.train_config(fraction=fraction, seed=seed, split_seed=0, **given, **place)
    else:
        assert preset.epochs is not None
        cfg = TrainConfig(
            policy=policy_name,
            dataset=task.dataset,
            fraction=fraction,
            epochs=preset.epochs,
            seed=seed,
            split_seed=0,
            batch_size=preset.batch_size,
            lr=preset.lr,
            warmup_epochs=preset.warmup_epochs,
            val_max_windows=preset.val_max_windows,
            policy_overrides=dict(preset.policy_overrides.get(policy_name, {})),
            num_threads=preset.train_threads,
            **place,
        )
    shipped = preset.pretrained.get(f"{task_name}/{policy_name}")
    if shipped is not None:
        run_dir = _pretrained_run(Path(shipped), cfg)
        logger.info("bench cell %s: evaluating the shipped run %s (no training)", cid, run_dir)
    else:
        if retrain and cfg.run_dir.exists():
            shutil.rmtree(cfg.run_dir)
        # resume an interrupted cell's training; a fresh cell starts without the warning
        run_dir = train(cfg, resume=(cfg.run_dir / "train_config.json").is_file())
    train_s = time.perf_counter() - t0
    episodes = preset.episodes
    if episodes is None:
        assert recipe is not None
        episodes = recipe.test_episodes
    episodes = min(episodes, preset.task_episodes.get(task_name, episodes))
    with torch_threads(preset.eval_threads):
        result = _evaluate_cell(
            preset,
            task,
            cid,
            run_dir,
            fraction,
            seed,
            out,
            episodes,
            progress,
            deterministic=cfg.eval_deterministic if recipe is not None else False,
            protocol=protocol,
        )
    result["command"] = command
    result["train_config"] = cfg.to_dict()
    if recipe is not None:
        result["recipe"] = {"name": recipe.name, "version": recipe.version}
    if shipped is not None:
        result["pretrained"] = str(shipped)
    result["train_wall_time_s"] = train_s
    result["wall_time_s"] = time.perf_counter() - t0
    path = cell_file(out, cid)
    atomic_write_text(path, json.dumps(result, indent=1) + "\n")
    logger.info("bench cell %s done in %.0f s -> %s", cid, result["wall_time_s"], path)
    return result


def _pretrained_run(folder: Path, cfg: Any) -> Path:
    """A shipped run folder, checked against the recipe that must have produced it.

    The folder holds what a recipe run leaves (``train_config.json``, ``metrics.jsonl`` and
    ``best/`` or the final ``model.safetensors``), so its learning curve and training minutes are
    reported as measured when it was made.

    Raises:
        FileNotFoundError: the folder is missing or is not a run folder.
        ValueError: it was trained with other settings than the cell's recipe.
    """
    if not (folder / "train_config.json").is_file():
        raise FileNotFoundError(
            f"shipped run {folder} is missing (or has no train_config.json); train it with "
            f"`lnmdn train --recipe ...` or drop it from the preset's `pretrained`"
        )
    from lnmdn_agents.training import config_diff

    diff = config_diff(json.loads((folder / "train_config.json").read_text()), cfg)
    if diff:
        raise ValueError(
            f"shipped run {folder} was not trained by the cell's recipe: {{field: (shipped, "
            f"recipe)}} = {diff}; retrain it with the recipe"
        )
    return folder


def _evaluate_cell(
    preset: BenchPreset,
    task: BenchTask,
    cid: str,
    run_dir: Path,
    fraction: float,
    seed: int,
    out: Path,
    episodes: int,
    progress: bool = True,
    deterministic: bool = False,
    protocol: str = "standard",
) -> dict[str, Any]:
    """Measure the run's selected checkpoint (``best/`` if any) as ``lnmdn eval`` does, and more.

    The offline metrics, latency, size and closed loop come from
    :func:`~lnmdn_agents.evaluation.runs.measure_run` with the preset's sizes; the cell adds the
    run's curves, the sampled trajectories and, for a policy with inference steps, the step
    sweep. ``deterministic`` is the action mode of the closed-loop test episodes (recipe cells
    test in the mode their closed-loop validation selected the checkpoint in).
    """
    from lnmdn_agents.data import make_splits
    from lnmdn_agents.training import BEST_DIR

    task_name, policy_name = task.name, cid.split("/")[1]
    best = run_dir / BEST_DIR
    selected = best if (best / "model.safetensors").is_file() else run_dir
    closed_loop = episodes > 0 and (
        not preset.closed_loop_fractions or fraction in preset.closed_loop_fractions
    )
    if closed_loop:
        logger.info("bench cell %s: offline metrics, latency, %d episodes", cid, episodes)
    else:
        logger.info("bench cell %s: offline metrics, latency", cid)
    # A recipe may train on another version of the task's data (Push-T: keypoints in v2); the
    # run's own dataset is the one measured, in the env that dataset was recorded in.
    dataset = read_train_config(run_dir).get("dataset") or task.dataset
    policy, measured = measure_run(
        run_dir,
        None,
        episodes,
        dataset,
        weights=selected,
        n_envs=preset.n_envs,
        offline=True,
        closed_loop=closed_loop,
        max_windows=preset.max_windows,
        ks=preset.ks,
        latency_calls=preset.latency_calls,
        latency_warmup=_LATENCY_WARMUP,
        video_dir=out / "videos" / cid.replace("/", "_") if preset.videos else None,
        n_videos=preset.videos,
        seed=seed,
        progress=progress,
        offline_progress=False,
        deterministic=deterministic,
        num_inference_steps=None,
        device="cpu",
        starts=preset.starts,
        start_steps=preset.start_steps,
    )
    result: dict[str, Any] = {
        "cell": cid,
        "task": task_name,
        "dataset": dataset,
        "env_id": measured["env_id"],
        "policy": policy_name,
        "fraction": fraction,
        "seed": seed,
        "protocol": protocol,
        "run_dir": str(run_dir),
        "eval_threads": torch.get_num_threads(),
        "policy_config": policy.config.to_dict(),
        "params": measured["params"],
    }
    records = read_metrics(run_dir)
    result["curves"] = {
        key: [r.get(key) for r in records if key in r] for key in ("val/nll", "train/loss")
    }
    result["curves"]["epoch"] = [r["epoch"] for r in records if "val/nll" in r]
    evals = [r for r in records if "eval/mean_score" in r]
    result["learning_curve"] = {
        "epoch": [r["epoch"] + 1 for r in evals],
        "train_minutes": [r.get("charts/train_minutes") for r in evals],
        "success_rate": [r["eval/success_rate"] for r in evals],
        "mean_score": [r["eval/mean_score"] for r in evals],
    }
    result["train_minutes"] = records[-1].get("charts/train_minutes") if records else None
    result["checkpoint"] = "best" if selected == best else "final"
    if selected == best:
        result["selected_epoch"] = policy_metadata(best)["epoch"]
    result["offline"] = measured["offline"]
    result["latency"] = measured["latency"]
    for key in ("closed_loop", "closed_loop_dataset"):
        if key in measured:
            result[key] = measured[key]
    unit = get_protocol(protocol).split_unit
    splits = make_splits(dataset, policy.config, seed=0, split_unit=unit)
    result["trajectories"] = cell_trajectories(
        policy, splits.test, measured["env_id"], preset, seed
    )
    if hasattr(policy.config, "num_inference_steps") and preset.diffusion_steps:
        result["step_sweep"] = step_sweep(
            policy, splits.test, preset, seed, result["offline"], result["latency"]
        )
    return result
