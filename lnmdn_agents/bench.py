"""``lnmdn bench``: the comparison protocol in one command (results.json, report.md, figures).

The protocol is a grid of *cells* ``(task, policy, training fraction, seed)``. Each cell trains a
policy from scratch (``lnmdn_agents.training.train``), then measures on the task's held-out test
episodes and in closed loop::

    cell = train -> offline metrics (test split) -> closed loop (seeds 100000+) -> latency, params
                 -> sampled chunks for the trajectory figure -> diffusion step sweep (if any)

Each finished cell is written atomically to ``<out>/cells/<cell>.json``; a later run skips the
cells whose file exists (resumable), and cells computed elsewhere merge by copying their files
into ``cells/`` (runnable in parts: ``--task``, ``--policy``, ``--cell`` filters). Whatever cells
are present are then aggregated into ``results.json``, ``report.md`` and ``figures/*.png``.
``--executor ray`` runs the missing cells as Ray tasks on one machine or a cluster, with retries
(``lnmdn_agents.bench_executors``); the default runs them one after the other in this process.

Presets:

* ``demo``: the README's main job (``make demo``): Push-T evaluated from the recipe runs shipped
  in ``checkpoints/``, and the U-maze trained from scratch by its recipes, ``liquid_mdn`` vs
  ``diffusion``, 50 closed-loop test episodes each. Minutes on a laptop.
* ``quick``: Push-T, small models trained for 10 epochs without recipes (a smoke run).
* ``results``: every committed recipe, trained and tested (the README's results table).
* ``paper``: Push-T, Can and PointMaze; every registered policy; the seven training fractions;
  three seeds; 120 epochs at paper scale. Days on a CPU: run it in parts.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import logging
import math
import os
import shlex
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
import typer

from lnmdn_agents.bench_executors import EXECUTORS, CellFailure, CellsFailedError, run_cells_ray
from lnmdn_agents.checkpoint import atomic_write_text, load_policy, policy_metadata
from lnmdn_agents.config_fields import check_field_types
from lnmdn_agents.evaluation.latency import count_parameters, policy_latency, torch_threads
from lnmdn_agents.evaluation.offline import evaluate_offline, offline_metrics, window_index
from lnmdn_agents.evaluation.report import (
    comparison_rows,
    format_table,
    markdown_table,
    plot_best_of_k,
    plot_curves,
    plot_latency_accuracy,
    plot_learning_curves,
    plot_per_step,
    plot_sample_efficiency,
    plot_trajectories,
)
from lnmdn_agents.evaluation.rollout import evaluate, wilson_interval
from lnmdn_agents.evaluation.runs import read_metrics
from lnmdn_agents.recipes import available_recipes, load_recipe

__all__ = [
    "BENCH_TASKS",
    "PRESETS",
    "BenchPreset",
    "BenchTask",
    "aggregate",
    "bench_command",
    "cell_id",
    "load_cells",
    "make_preset",
    "plan_cells",
    "run_bench",
    "run_cell",
    "write_report",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchTask:
    """One task of the protocol.

    Attributes:
        name: short name used in cell ids and figures.
        dataset: Minari id of the demonstrations.
        env_id: closed-loop env.
    """

    name: str
    dataset: str
    env_id: str


BENCH_TASKS: dict[str, BenchTask] = {
    t.name: t
    for t in [
        BenchTask("pusht", "lnmdn/pusht/expert-v0", "lnmdn/PushT-v0"),
        BenchTask("can", "lnmdn/can/expert-v0", "lnmdn/Can-v0"),
        *(
            BenchTask(
                f"pointmaze-{m.lower()}",
                f"lnmdn/pointmaze-{m.lower()}/expert-v0",
                f"lnmdn/PointMaze-{m}-v0",
            )
            for m in ("UMaze", "Medium", "Large", "Bimodal")
        ),
    ]
}


@dataclass
class BenchPreset:
    """Everything one bench run does. Every field can be overridden from the CLI or a test.

    Attributes:
        name: preset name (also the default output folder ``runs/bench/<name>``).
        recipes: build each cell's training from the committed recipe ``<task>/<policy>``
            (``lnmdn_agents.recipes``: sizes, epochs, closed-loop validation) and evaluate the
            checkpoint its validation selected; only (task, policy) pairs with a recipe make
            cells. ``epochs`` and ``episodes`` then override the recipe only when set.
        tasks: task names (keys of ``BENCH_TASKS``).
        policies: registered policy names; empty = every registered policy.
        fractions: training fractions (share of the training episodes, nested subsets).
        seeds: training seeds (weights, batch order, sampling).
        epochs: training epochs per cell (None: the recipe's, with ``recipes``).
        batch_size: training batch size.
        lr: peak learning rate.
        warmup_epochs: warm-up length in epochs.
        val_max_windows: validation windows per epoch (the NLL curve).
        policy_overrides: per policy, config fields to change (model size).
        episodes: closed-loop test episodes per cell (0: none; None: the recipe's).
        n_envs: vector envs for the rollouts.
        closed_loop_fractions: fractions whose cells also run closed loop (empty: all).
        max_windows: test windows for the offline metrics (None: all).
        ks: best-of-K values.
        latency_calls: timed calls per latency measurement.
        diffusion_steps: inference step counts swept for policies with ``num_inference_steps``.
        sweep_max_windows: test windows per point of the step sweep, drawn from the offline
            metrics' windows; the point at the policy's own step count is the table's.
        trajectory_windows: test windows drawn in the trajectory figure.
        trajectory_samples: sampled chunks drawn per window.
        videos: gifs of the first closed-loop episodes per cell (``<out>/videos/<cell>/``).
        train_threads: torch threads for training (None: torch's default).
        eval_threads: torch threads for evaluation and latency (None: torch's default; 1 by
            default: batch-1 inference gains little from intra-op threads).
        pretrained: ``{"<task>/<policy>": run folder}``: cells evaluated from a shipped run
            folder made by the recipe (checked against it) instead of being trained.
        device: training device, ``"cpu"``, ``"cuda"`` or ``"auto"`` (evaluation runs on the
            CPU); with ``--executor ray`` a ``cuda`` cell asks Ray for one GPU.
    """

    name: str
    recipes: bool = False
    tasks: tuple[str, ...] = ("pusht",)
    policies: tuple[str, ...] = ("liquid_mdn", "diffusion")
    fractions: tuple[float, ...] = (1.0,)
    seeds: tuple[int, ...] = (0,)
    epochs: int | None = 120
    batch_size: int = 64
    lr: float = 3e-4
    warmup_epochs: float = 3.0
    val_max_windows: int = 512
    policy_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    episodes: int | None = 50
    n_envs: int = 8
    closed_loop_fractions: tuple[float, ...] = (1.0,)
    max_windows: int | None = None
    ks: tuple[int, ...] = (1, 2, 5, 10)
    latency_calls: int = 50
    diffusion_steps: tuple[int, ...] = (1, 2, 5, 10, 20, 50)
    sweep_max_windows: int = 512
    trajectory_windows: int = 2
    trajectory_samples: int = 8
    videos: int = 0
    train_threads: int | None = None
    eval_threads: int | None = 1
    pretrained: dict[str, str] = field(default_factory=dict)
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_field_types(self)
        unknown = [t for t in self.tasks if t not in BENCH_TASKS]
        if unknown:
            raise ValueError(f"unknown bench task(s) {unknown}; known: {sorted(BENCH_TASKS)}")
        if any(not 0 < f <= 1 for f in self.fractions):
            raise ValueError(f"fractions must be in (0, 1], got {self.fractions}")
        if self.epochs is None or self.episodes is None:
            if not self.recipes:
                raise ValueError(
                    "epochs and episodes may be None (the recipe's) only with recipes=True, got "
                    f"{self.epochs=}, {self.episodes=}"
                )
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs=}")
        if self.device not in ("cpu", "cuda", "auto") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be 'cpu', 'cuda[:N]' or 'auto', got {self.device=}")


#: Recipe runs shipped with the repository (``checkpoints/<task>_<policy>/``: train_config.json,
#: metrics.jsonl and the selected ``best/`` weights), evaluated by the demo instead of retrained.
SHIPPED_RUNS = Path(__file__).resolve().parent.parent / "checkpoints"

# Small models for the quick preset: the same architectures, narrower, so both train in minutes.
_QUICK_OVERRIDES: dict[str, dict[str, Any]] = {
    "liquid_mdn": {
        "d_model": 64,
        "n_layers": 1,
        "rnn_layers": 2,
        "rnn_hidden": 64,
        "cfc_backbone_units": 64,
        "decoder_hidden": 64,
        "action_embed_dim": 32,
    },
    "diffusion": {
        "d_model": 64,
        "n_layers": 1,
        "down_dims": (24, 48, 48),
        "num_inference_steps": 10,
        "sampler": "ddim",
    },
}


# What the demo and quick presets measure: 50 test episodes, 512 test windows, a gif per cell.
_SHORT_EVALUATION: dict[str, Any] = {
    "episodes": 50,
    "n_envs": 10,
    "videos": 1,
    "max_windows": 512,
    "latency_calls": 50,
    "diffusion_steps": (1, 2, 5, 10, 20),
    "sweep_max_windows": 128,
    "train_threads": 1,
}


def _paper_fractions() -> tuple[float, ...]:
    from lnmdn_agents.data import TRAINING_FRACTIONS

    return tuple(TRAINING_FRACTIONS)


PRESETS: dict[str, Any] = {
    # The README's main job (`make demo`): Push-T from the runs the recipes made (shipped in
    # checkpoints/, checked against the recipes), next to both heads trained from scratch by
    # their recipes on the U-maze, all tested in closed loop; minutes on a laptop.
    "demo": lambda: BenchPreset(
        name="demo",
        recipes=True,
        tasks=("pusht", "pointmaze-umaze"),
        policies=("liquid_mdn", "diffusion"),
        epochs=None,
        **_SHORT_EVALUATION,
        pretrained={
            f"pusht/{p}": str(SHIPPED_RUNS / f"pusht_{p}") for p in ("liquid_mdn", "diffusion")
        },
    ),
    # Small models trained briefly on the embedded Push-T data (no recipe): a smoke run.
    "quick": lambda: BenchPreset(
        name="quick",
        tasks=("pusht",),
        policies=("liquid_mdn", "diffusion"),
        epochs=10,
        batch_size=128,
        lr=1e-3,
        warmup_epochs=0.5,
        val_max_windows=256,
        policy_overrides=_QUICK_OVERRIDES,
        **_SHORT_EVALUATION,
    ),
    "paper": lambda: BenchPreset(
        name="paper",
        recipes=True,
        tasks=("pusht", "can", "pointmaze-medium"),
        policies=(),
        fractions=_paper_fractions(),
        seeds=(0, 1, 2),
        epochs=None,
        episodes=50,
        n_envs=8,
        closed_loop_fractions=(1.0,),
        max_windows=None,
    ),
    # The README's results table: every committed recipe, its selected checkpoint on the test
    # seeds (Push-T: Diffusion Policy's 100000-100099).
    "results": lambda: BenchPreset(
        name="results",
        recipes=True,
        tasks=tuple(BENCH_TASKS),
        policies=(),
        epochs=None,
        episodes=None,
        n_envs=10,
        max_windows=512,
        diffusion_steps=(),
        latency_calls=30,
    ),
}


def make_preset(name: str, **overrides: Any) -> BenchPreset:
    """A preset by name, with fields replaced by ``overrides`` (None values are ignored)."""
    if name not in PRESETS:
        raise ValueError(f"unknown bench preset {name!r}; known: {sorted(PRESETS)}")
    preset: BenchPreset = PRESETS[name]()
    changes = {k: v for k, v in overrides.items() if v is not None}
    known = {f.name for f in dataclasses.fields(BenchPreset)}
    bad = sorted(set(changes) - known)
    if bad:
        raise ValueError(f"unknown preset field(s) {bad}; known: {sorted(known)}")
    return dataclasses.replace(preset, **changes)


def cell_id(task: str, policy: str, fraction: float, seed: int) -> str:
    """``pusht/liquid_mdn/frac1/seed0`` (fractions written with up to 4 significant digits)."""
    return f"{task}/{policy}/frac{fraction:.4g}/seed{seed}"


def _cell_file(out: Path, cid: str) -> Path:
    return out / "cells" / (cid.replace("/", "__") + ".json")


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
) -> list[tuple[str, str, float, int]]:
    """The cells of ``preset`` that pass the filters (``cell`` is an fnmatch pattern)."""
    cells = []
    with_recipe = set(available_recipes()) if preset.recipes else set()
    for t in preset.tasks:
        for p in _policies(preset):
            if preset.recipes and f"{t}/{p}" not in with_recipe:
                continue
            for f in preset.fractions:
                for s in preset.seeds:
                    cid = cell_id(t, p, f, s)
                    if task and t != task:
                        continue
                    if policy and p != policy:
                        continue
                    if cell and not fnmatch.fnmatch(cid, cell):
                        continue
                    cells.append((t, p, f, s))
    return cells


# -- one cell -----------------------------------------------------------------------------------
def _set_inference_steps(policy: Any, steps: int) -> None:
    setter = getattr(policy, "set_num_inference_steps", None)
    if callable(setter):
        setter(steps)
    else:
        policy.config.num_inference_steps = steps


def _trajectory_samples(policy: Any, windows: Any, n: int, k: int, seed: int) -> dict[str, Any]:
    """Raw-unit demo chunks and k samples for n evenly spaced test windows."""
    idx = np.linspace(0, len(windows) - 1, num=min(n, len(windows))).round().astype(int)
    items = [windows[int(i)] for i in idx]
    obs = torch.stack([torch.as_tensor(it["obs"]) for it in items])
    demo = torch.stack([torch.as_tensor(it["action"]) for it in items])
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        policy.reset(None)
        samples = policy.sample_chunks(obs, k)
    return {
        "obs": obs.tolist(),
        "demo": demo.tolist(),
        "samples": samples.float().tolist(),
    }


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
) -> dict[str, Any]:
    """Train and evaluate one cell; returns its result dict (also written to ``cells/``).

    An interrupted cell resumes its training from the last checkpoint; ``retrain`` deletes the
    cell's run folder first. ``progress``: bars on a terminal, log lines otherwise (False: log
    lines of training epochs only). ``command``: the command line recorded in the cell.
    """
    from lnmdn_agents.training import TrainConfig, train

    task = BENCH_TASKS[task_name]
    cid = cell_id(task_name, policy_name, fraction, seed)
    logger.info("bench cell %s: training", cid)
    t0 = time.perf_counter()
    place: dict[str, Any] = {
        "output_dir": str(out / "runs"),
        "run_name": cid.replace("/", "_"),
        "device": preset.device,
        "progress": progress,
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
        )
    result["command"] = command
    result["train_config"] = cfg.to_dict()
    if recipe is not None:
        result["recipe"] = {"name": recipe.name, "version": recipe.version}
    if shipped is not None:
        result["pretrained"] = str(shipped)
    result["train_wall_time_s"] = train_s
    result["wall_time_s"] = time.perf_counter() - t0
    path = _cell_file(out, cid)
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
) -> dict[str, Any]:
    """Offline and closed-loop metrics of the run's selected checkpoint (``best/`` if any).

    ``deterministic`` is the action mode of the closed-loop test episodes (recipe cells test in
    the mode their closed-loop validation selected the checkpoint in).
    """
    from lnmdn_agents.data import make_splits
    from lnmdn_agents.training import BEST_DIR

    task_name, policy_name = task.name, cid.split("/")[1]
    best = run_dir / BEST_DIR
    selected = best if (best / "model.safetensors").is_file() else run_dir
    policy = load_policy(selected)
    result: dict[str, Any] = {
        "cell": cid,
        "task": task_name,
        "dataset": task.dataset,
        "env_id": task.env_id,
        "policy": policy_name,
        "fraction": fraction,
        "seed": seed,
        "run_dir": str(run_dir),
        "eval_threads": torch.get_num_threads(),
        "policy_config": policy.config.to_dict(),
        "params": count_parameters(policy),
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
    logger.info("bench cell %s: offline metrics", cid)
    result["offline"] = evaluate_offline(
        policy,
        task.dataset,
        ks=preset.ks,
        seed=seed,
        max_windows=preset.max_windows,
        split_seed=0,
        progress=False,
    )
    result["latency"] = policy_latency(policy, n_calls=preset.latency_calls, seed=seed)
    if episodes > 0 and (
        not preset.closed_loop_fractions or fraction in preset.closed_loop_fractions
    ):
        logger.info("bench cell %s: %d closed-loop episodes", cid, episodes)
        cl = evaluate(
            policy,
            task.env_id,
            episodes,
            n_envs=preset.n_envs,
            dataset_id=task.dataset,
            torch_seed=seed,
            video_dir=out / "videos" / cid.replace("/", "_") if preset.videos else None,
            n_videos=preset.videos,
            progress=progress,
            deterministic=deterministic,
        )
        result["closed_loop"] = {**cl, "deterministic": deterministic}
    splits = make_splits(task.dataset, policy.config, seed=0)
    result["trajectories"] = _trajectory_samples(
        policy, splits.test, preset.trajectory_windows, preset.trajectory_samples, seed
    )
    if task.env_id.startswith("lnmdn/PointMaze"):
        result["trajectories"].update(
            _maze_paths(task.env_id, result["trajectories"], policy.config.n_obs_steps)
        )
    else:
        result["trajectories"]["labels"] = list(_ACTION_AXES.get(task_name, _ACTION_AXES[""]))
    if hasattr(policy.config, "num_inference_steps") and preset.diffusion_steps:
        result["step_sweep"] = _step_sweep(
            policy, splits.test, preset, seed, result["offline"], result["latency"]
        )
    return result


#: What the first two action dimensions are, per task, for the trajectory figure.
_ACTION_AXES: dict[str, tuple[str, str]] = {
    "pusht": ("agent target x (px)", "agent target y (px)"),
    "can": ("end-effector dx command", "end-effector dy command"),
    "": ("action dim 0", "action dim 1"),
}


def _maze_paths(env_id: str, traj: dict[str, Any], n_obs_steps: int) -> dict[str, Any]:
    """PointMaze: the ball's x-y path under each chunk, simulated from the window's state.

    PointMaze actions are forces, so a chunk drawn in action space says little; executing the
    chunk's actions from the current observation (the state is ``[x, y, vx, vy, goal]``) in the
    single-step env shows where it takes the ball in the maze. Returns ``xy_demo`` (W, L, 2),
    ``xy_samples`` (W, K, L, 2), ``walls`` (wall cell centres) and the axis ``labels``.
    """
    from lnmdn_envs import make_task_env

    start = n_obs_steps - 1
    env = make_task_env(env_id)
    try:

        def path(state: np.ndarray, actions: np.ndarray) -> list[list[float]]:
            env.reset(options={"reset_to_state": state.astype(np.float64)})
            xy = [state[:2].tolist()]
            for a in actions[start:]:
                obs, _, terminated, truncated, _ = env.step(a.astype(np.float32))
                xy.append(np.asarray(obs)[:2].tolist())
                if terminated or truncated:
                    break
            return xy

        xy_demo, xy_samples = [], []
        for obs, demo, samples in zip(traj["obs"], traj["demo"], traj["samples"], strict=True):
            state = np.asarray(obs, dtype=np.float64)[start]  # the current observation
            xy_demo.append(path(state, np.asarray(demo)))
            xy_samples.append([path(state, np.asarray(s)) for s in samples])
        maze = env.unwrapped.maze_map  # type: ignore[attr-defined]
    finally:
        env.close()
    rows, cols = len(maze), len(maze[0])
    walls = [
        [c - (cols - 1) / 2, (rows - 1) / 2 - r]
        for r in range(rows)
        for c in range(cols)
        if maze[r][c] == 1
    ]
    labels = ["x (m)", "y (m)"]
    return {"xy_demo": xy_demo, "xy_samples": xy_samples, "walls": walls, "labels": labels}


def _step_sweep(
    policy: Any,
    windows: Any,
    preset: BenchPreset,
    seed: int,
    table_offline: dict[str, Any],
    table_latency: dict[str, Any],
) -> list[dict[str, Any]]:
    """Best-of-K MSE and latency for each inference step count (diffusion's speed/accuracy).

    One source of numbers: at the policy's own step count the point *is* the table's
    (``table_offline``, ``table_latency``), not a second measurement. The other counts are
    measured with the same latency protocol on up to ``sweep_max_windows`` of the table's test
    windows (each point says how many: ``n_windows``).
    """
    table_index = window_index(len(windows), preset.max_windows, seed)
    idx = table_index
    if len(idx) > preset.sweep_max_windows:
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(idx, size=preset.sweep_max_windows, replace=False))
    items = [windows[int(i)] for i in idx]
    obs = torch.stack([torch.as_tensor(it["obs"]) for it in items])
    act = torch.stack([torch.as_tensor(it["action"]) for it in items])
    original = int(policy.config.num_inference_steps)
    limit = int(getattr(policy.config, "num_train_timesteps", max(preset.diffusion_steps)))
    points = []
    k_max = str(max(preset.ks))
    try:
        for steps in sorted({*preset.diffusion_steps, original}):
            if steps > limit:
                continue
            if steps == original:
                points.append(
                    {
                        "steps": steps,
                        "latency_ms": table_latency["end_to_end_ms"],
                        "mse": table_offline["best_of_k_mse"][k_max],
                        "mse_deterministic": table_offline["mse_deterministic"],
                        "k": int(k_max),
                        "n_windows": int(table_offline["n_windows"]),
                        "source": "table",
                    }
                )
                continue
            _set_inference_steps(policy, steps)
            m = offline_metrics(policy, obs, act, ks=preset.ks, seed=seed)
            lat = policy_latency(policy, n_calls=preset.latency_calls, seed=seed)
            points.append(
                {
                    "steps": steps,
                    "latency_ms": lat["end_to_end_ms"],
                    "mse": m["best_of_k_mse"][k_max],
                    "mse_deterministic": m["mse_deterministic"],
                    "k": int(k_max),
                    "n_windows": len(items),
                    "source": "sweep",
                }
            )
    finally:
        _set_inference_steps(policy, original)
    return points


# -- aggregation --------------------------------------------------------------------------------
def load_cells(out: Path) -> list[dict[str, Any]]:
    """Every finished cell under ``out/cells`` (from this run or copied from elsewhere)."""
    cells = []
    for path in sorted((out / "cells").glob("*.json")):
        try:
            cells.append(json.loads(path.read_text()))
        except json.JSONDecodeError:
            logger.warning("skipping unreadable cell file %s", path)
    return cells


def _mean_std(values: list[float | None]) -> tuple[float, float]:
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if arr.size == 0:
        return math.nan, math.nan
    return float(arr.mean()), float(arr.std())


def aggregate(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Per (task, policy) at the largest fraction: metrics averaged over seeds; plus the curves."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for c in cells:
        groups[(c["task"], c["policy"])].append(c)
    summary: dict[str, dict[str, Any]] = defaultdict(dict)
    efficiency: dict[str, dict[str, dict[float, tuple[float, float]]]] = defaultdict(dict)
    for (task, policy), cs in sorted(groups.items()):
        top = max(c["fraction"] for c in cs)
        full = [c for c in cs if c["fraction"] == top]
        off = [c["offline"] for c in full]
        ks = sorted({k for o in off for k in o["best_of_k_mse"]}, key=int)
        entry: dict[str, Any] = {
            "task": task,
            "policy": policy,
            "fraction": top,
            "seeds": sorted(c["seed"] for c in full),
            "params": full[0]["params"],
            "train_minutes": _mean_std([c.get("train_minutes") for c in full])[0],
            "latency": {
                "end_to_end_ms": _mean_std([c["latency"]["end_to_end_ms"] for c in full])[0],
                "head_ms": _mean_std([c["latency"].get("head_ms") for c in full])[0],
            },
            "offline": {
                "nll": _mean_std([o.get("nll") for o in off])[0] if "nll" in off[0] else None,
                "nll_kind": off[0].get("nll_kind"),
                "mse_deterministic": _mean_std([o["mse_deterministic"] for o in off])[0],
                "mse_sample_mean": _mean_std([o["mse_sample_mean"] for o in off])[0],
                "best_of_k_mse": {
                    k: _mean_std([o["best_of_k_mse"][k] for o in off])[0] for k in ks
                },
                "best_of_k_mse_std": {
                    k: _mean_std([o["best_of_k_mse"][k] for o in off])[1] for k in ks
                },
                "per_step_mse": np.mean([o["per_step_mse"] for o in off], axis=0).tolist(),
                "diversity": _mean_std([o.get("diversity") for o in off])[0],
                "jerk": _mean_std([o.get("jerk") for o in off])[0],
                "jerk_demo": _mean_std([o.get("jerk_demo") for o in off])[0],
                "n_windows": off[0]["n_windows"],
            },
        }
        cls = [c["closed_loop"] for c in full if c.get("closed_loop")]
        if cls:
            n_succ = sum(cl["n_successes"] for cl in cls)
            n_ep = sum(cl["n_episodes"] for cl in cls)
            lo, hi = wilson_interval(n_succ, n_ep)
            entry["closed_loop"] = {
                "success_rate": n_succ / n_ep,
                "success_ci95": [lo, hi],
                "n_successes": n_succ,
                "n_episodes": n_ep,
                "mean_score": _mean_std([cl["mean_score"] for cl in cls])[0],
                "mean_length": _mean_std([cl["mean_length"] for cl in cls])[0],
            }
        summary[task][policy] = entry
        k_max = ks[-1] if ks else "1"
        for frac in sorted({c["fraction"] for c in cs}):
            vals = [c["offline"]["best_of_k_mse"][k_max] for c in cs if c["fraction"] == frac]
            efficiency[task].setdefault(policy, {})[frac] = _mean_std(vals)
    return {"summary": summary, "efficiency": efficiency}


def _curves(cells: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    by: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for c in cells:
        by[(c["task"], c["policy"])].append(c)
    for (task, policy), cs in by.items():
        top = max(c["fraction"] for c in cs)
        series = [c["curves"] for c in cs if c["fraction"] == top and c["curves"].get("val/nll")]
        if not series:
            continue
        n = min(len(s["val/nll"]) for s in series)
        vals = np.array([s["val/nll"][:n] for s in series], dtype=float)
        out[task][policy] = {
            "kind": "bound"
            if any(c.get("offline", {}).get("nll_kind") == "bound" for c in cs)
            else "exact",
            "epoch": series[0]["epoch"][:n],
            "val/nll": vals.mean(0).tolist(),
            "val/nll_std": vals.std(0).tolist() if len(series) > 1 else [],
        }
    return out


def write_report(
    out: Path,
    cells: list[dict[str, Any]],
    preset: BenchPreset,
    failed: list[dict[str, Any]] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Aggregate ``cells`` into ``results.json``, ``report.md`` and ``figures/``.

    ``failed`` (cells that failed on every attempt in this run, as
    :meth:`lnmdn_agents.bench_executors.CellFailure.to_dict` gives them) is listed in both;
    ``command`` is the command line recorded in the report (None: called from Python).
    """
    failed = failed or []
    agg = aggregate(cells)
    summary = agg["summary"]
    fig_dir = out / "figures"
    figures: dict[str, Path | None] = {}
    figures["val_nll"] = plot_curves(_curves(cells), fig_dir / "val_nll.png")
    learning: dict[str, dict[str, Any]] = defaultdict(dict)
    for c in sorted(cells, key=lambda c: (c["seed"], -c["fraction"])):
        if c.get("learning_curve") and c["policy"] not in learning[c["task"]]:
            learning[c["task"]][c["policy"]] = c["learning_curve"]
    figures["learning_curves"] = plot_learning_curves(
        dict(learning), fig_dir / "learning_curves.png"
    )
    figures["best_of_k"] = plot_best_of_k(
        {t: {p: e["offline"]["best_of_k_mse"] for p, e in ps.items()} for t, ps in summary.items()},
        fig_dir / "best_of_k.png",
    )
    cfg0 = cells[0].get("policy_config", {})
    figures["per_horizon"] = plot_per_step(
        {t: {p: e["offline"]["per_step_mse"] for p, e in ps.items()} for t, ps in summary.items()},
        fig_dir / "per_horizon.png",
        executed=(cfg0["n_obs_steps"] - 1, cfg0["n_action_steps"]) if cfg0 else None,
    )
    figures["sample_efficiency"] = plot_sample_efficiency(
        agg["efficiency"],
        fig_dir / "sample_efficiency.png",
        ylabel=f"best-of-{max(preset.ks)} MSE (normalised)",
    )
    traj: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    sweep: dict[str, dict[str, list[dict[str, float]]]] = defaultdict(dict)
    for c in sorted(cells, key=lambda c: (c["seed"], -c["fraction"])):
        if c.get("trajectories") and c["policy"] not in traj[c["task"]]:
            traj[c["task"]][c["policy"]] = c["trajectories"]
        if c["policy"] in sweep[c["task"]]:
            continue
        if c.get("step_sweep"):
            sweep[c["task"]][c["policy"]] = c["step_sweep"]
        elif c["fraction"] == max(x["fraction"] for x in cells if x["task"] == c["task"]):
            k = str(max(int(k) for k in c["offline"]["best_of_k_mse"]))
            sweep[c["task"]][c["policy"]] = [
                {
                    "latency_ms": c["latency"]["end_to_end_ms"],
                    "mse": c["offline"]["best_of_k_mse"][k],
                }
            ]
    figures["trajectories"] = plot_trajectories(
        dict(traj), fig_dir / "trajectories.png", n_windows=preset.trajectory_windows
    )
    has_sweep = any(len(v) > 1 for ps in sweep.values() for v in ps.values())
    figures["latency_accuracy"] = (
        plot_latency_accuracy(
            dict(sweep),
            fig_dir / "latency_accuracy.png",
            ylabel=f"best-of-{max(preset.ks)} MSE (normalised)",
        )
        if has_sweep
        else None
    )

    entries = [{**e, "name": f"{task}"} for task, ps in summary.items() for e in ps.values()]
    header, rows = comparison_rows(entries, first_column="task")
    results = {
        "command": command,
        "preset": dataclasses.asdict(preset),
        "n_cells": len(cells),
        "summary": summary,
        "efficiency": {
            t: {p: {str(f): v for f, v in d.items()} for p, d in ps.items()}
            for t, ps in agg["efficiency"].items()
        },
        "cells": [{k: v for k, v in c.items() if k not in ("trajectories",)} for c in cells],
        "figures": {k: str(v) for k, v in figures.items() if v is not None},
        "table": {"header": header, "rows": rows},
        "failed": failed,
    }
    atomic_write_text(out / "results.json", json.dumps(results, indent=1) + "\n")
    report = _markdown(preset, cells, header, rows, figures, out, command)
    if failed:
        report += (
            "\n## Failed cells\n\nNot in the tables above (their errors are in results.json); "
            "rerun the same command to retry them.\n\n| cell | attempts | last error |\n"
            "|---|---|---|\n"
        )
        report += "".join(
            f"| {f['cell']} | {f['attempts']} | {f['error'].replace('|', '/')} |\n" for f in failed
        )
    atomic_write_text(out / "report.md", report)
    return results


def _markdown(
    preset: BenchPreset,
    cells: list[dict[str, Any]],
    header: list[str],
    rows: list[list[str]],
    figures: dict[str, Path | None],
    out: Path,
    command: str | None = None,
) -> str:
    training = (
        "each trained by its committed recipe (`lnmdn_agents/recipes/<task>/<policy>.json`) and "
        "evaluated at the checkpoint its closed-loop validation selected."
        if preset.recipes
        else f"{preset.epochs} epoch(s) each."
    )
    lines = [
        f"# lnmdn bench: preset `{preset.name}`",
        "",
        "Command: " + (f"`{command}`" if command else "run from Python (`run_bench`)"),
        "",
        f"{len(cells)} cell(s): tasks {sorted({c['task'] for c in cells})}, policies "
        f"{sorted({c['policy'] for c in cells})}, fractions "
        f"{sorted({c['fraction'] for c in cells})}, seeds {sorted({c['seed'] for c in cells})}; "
        f"{training}",
        "",
        "## Comparison (largest training fraction, mean over seeds)",
        "",
        markdown_table(header, rows),
        "",
        "Errors are mean squared errors in normalised action units ([-1, 1] per action "
        "dimension). NLL/el: negative log-likelihood per action element (`*`: an upper bound, "
        "for diffusion). best-of-K: per test window, the best of K sampled chunks. Success: "
        "closed-loop episodes with `is_success`, 95% Wilson interval; score: mean of each "
        "episode's best task score (Push-T coverage / 0.95, clipped). Latency: median per "
        "chunk at batch 1, end to end / head alone (backbone cached).",
        "",
    ]
    captions = {
        "val_nll": "Validation NLL per action element over training epochs.",
        "learning_curves": "Closed-loop validation success (validation seeds 50000+) against "
        "training minutes, for the runs that validate in closed loop (the recipes).",
        "best_of_k": "Best-of-K MSE against the number of samples K.",
        "per_horizon": "Error of the deterministic chunk at each step of the horizon.",
        "sample_efficiency": "Best-of-K MSE against the share of training episodes used.",
        "trajectories": "Sampled chunks (colour) against the demonstration (black), in each "
        "task's own plane: Push-T as the agent's target positions (px); PointMaze as the "
        "ball's x-y path in the maze (m, walls grey), simulated from the window's state by "
        "executing each chunk's actions. The star marks the current step.",
        "latency_accuracy": "Accuracy against latency: diffusion at several inference step "
        "counts, other policies as single points. Each policy's point at its own step count "
        "is the table's (same windows, same latency measurement)"
        + _sweep_windows_note(cells)
        + ".",
    }
    lines += ["## Figures", ""]
    for key, cap in captions.items():
        path = figures.get(key)
        if path is None:
            lines += [f"- {cap} (not drawn: this run has too few cells for it)", ""]
        else:
            lines += [f"![{key}]({path.relative_to(out)})", "", cap, ""]
    videos = [(c["cell"], v) for c in cells for v in (c.get("closed_loop") or {}).get("videos", [])]
    if videos:
        lines += ["## Closed-loop episodes", ""]
        for cid, video in videos:
            rel = os.path.relpath(Path(video).resolve(), out.resolve())
            lines += [f"![{cid}: {Path(video).stem}]({rel})", "", f"{cid}: {Path(video).stem}", ""]
    lines += [
        "## Cells",
        "",
        "Each cell's training settings and its policy's fields that differ from the defaults "
        "(`lnmdn policies NAME` lists the defaults).",
        "",
        "| cell | policy config (non-default) | epochs | batch | lr | train s | test windows | "
        "wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        tc = c.get("train_config") or {}
        lines.append(
            f"| {c['cell']} | {_config_changes(c)} | {tc.get('epochs', '-')} "
            f"| {tc.get('batch_size', '-')} | {tc.get('lr', '-')} | {c['train_wall_time_s']:.0f} "
            f"| {c['offline']['n_windows']} | {c['wall_time_s']:.0f} |"
        )
    commands = sorted({c["command"] for c in cells if c.get("command")})
    if commands:
        lines += ["", "Cells computed by: " + "; ".join(f"`{x}`" for x in commands)]
    return "\n".join(lines) + "\n"


def _config_changes(cell: dict[str, Any]) -> str:
    """``d_model=64, down_dims=24,48,48``: the cell's policy fields that differ from defaults."""
    from lnmdn_agents.policies import get_policy_class
    from lnmdn_agents.policy_cli import cli_value

    cfg = cell.get("policy_config") or {}
    try:
        default = get_policy_class(cell["policy"]).config_class().to_dict()
    except KeyError:
        return "-"
    changed = [
        f"{k}={cli_value(v)}"
        for k, v in cfg.items()
        if k not in ("name", "obs_dim", "action_dim")
        and k in default
        and (tuple(v) if isinstance(v, list) else v)
        != (tuple(default[k]) if isinstance(default[k], list) else default[k])
    ]
    return ", ".join(changed) or "(defaults)"


def _sweep_windows_note(cells: list[dict[str, Any]]) -> str:
    counts = sorted(
        {
            p["n_windows"]
            for c in cells
            for p in c.get("step_sweep") or []
            if p.get("source") == "sweep" and "n_windows" in p
        }
    )
    if not counts:
        return ""
    return f"; the other step counts are measured on {'/'.join(map(str, counts))} of those windows"


# -- entry point --------------------------------------------------------------------------------
def run_bench(
    preset: BenchPreset,
    out: str | Path | None = None,
    *,
    task: str | None = None,
    policy: str | None = None,
    cell: str | None = None,
    force: bool = False,
    report_only: bool = False,
    executor: str = "local",
    address: str | None = None,
    max_retries: int = 2,
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Run the cells of ``preset`` not yet done, then aggregate every finished cell.

    Args:
        preset: what to run (see :class:`BenchPreset` and :func:`make_preset`).
        out: output folder; default ``runs/bench/<preset.name>``.
        task: only cells of this task.
        policy: only cells of this policy.
        cell: only cells whose id matches this fnmatch pattern (``pusht/*/frac1/seed0``).
        force: recompute cells (training from scratch) even when their result file exists.
        report_only: compute nothing; aggregate the cells present.
        executor: ``local`` (one cell after the other in this process; the first error stops
            the run) or ``ray`` (cells as Ray tasks, see
            :func:`lnmdn_agents.bench_executors.run_cells_ray`).
        address: Ray cluster address for ``executor="ray"`` (None: start Ray on this machine,
            or use ``RAY_ADDRESS``).
        max_retries: with ``executor="ray"``, resubmissions of a failed cell before it is
            reported in ``failed``.
        progress: progress bars on a terminal, log lines otherwise (False: fewer log lines).
        command: the command line, recorded in each computed cell and in the report.

    Returns:
        The ``results.json`` content plus ``out``, ``report``, ``computed`` (cell ids) and
        ``failed`` (cells that failed on every attempt, also in ``results.json``).

    Raises:
        CellsFailedError: every cell to compute failed and no cell is finished.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; known: {list(EXECUTORS)}")
    out = Path(out) if out is not None else Path("runs") / "bench" / preset.name
    out.mkdir(parents=True, exist_ok=True)
    todo = [] if report_only else plan_cells(preset, task, policy, cell)
    if not report_only and not todo:
        raise ValueError(
            f"no cell of preset {preset.name!r} matches task={task!r}, policy={policy!r}, "
            f"cell={cell!r}; cells look like {cell_id(preset.tasks[0], 'liquid_mdn', 1.0, 0)}"
        )
    missing = []
    for t, p, f, s in todo:
        cid = cell_id(t, p, f, s)
        if _cell_file(out, cid).is_file() and not force:
            logger.info("bench cell %s already done; skipped", cid)
            continue
        missing.append((t, p, f, s))
    computed: list[str] = []
    failed: list[CellFailure] = []
    if executor == "ray":
        computed, failed = run_cells_ray(
            preset,
            missing,
            out,
            force=force,
            address=address,
            max_retries=max_retries,
            command=command,
        )
    else:
        for t, p, f, s in missing:
            run_cell(preset, t, p, f, s, out, retrain=force, progress=progress, command=command)
            computed.append(cell_id(t, p, f, s))
    cells = load_cells(out)
    if not cells and failed:
        raise CellsFailedError(failed)
    if not cells:
        raise FileNotFoundError(f"no finished cells under {out / 'cells'}; run the bench first")
    results = write_report(
        out, cells, preset, failed=[f.to_dict() for f in failed], command=command
    )
    results.update({"out": str(out), "report": str(out / "report.md"), "computed": computed})
    return results


def bench_command(
    preset: Annotated[
        str,
        typer.Option(
            "--preset",
            help="demo (minutes), quick (a smoke run), results (every recipe, hours) or "
            "paper (days).",
        ),
    ] = "demo",
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default runs/bench/PRESET).")
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            help=f"Only this task (any of {sorted(BENCH_TASKS)}, also one the preset lacks).",
        ),
    ] = None,
    policy: Annotated[
        str | None, typer.Option("--policy", help="Only this policy's cells.")
    ] = None,
    cell: Annotated[
        str | None,
        typer.Option(
            "--cell", help="Only cells matching this pattern, e.g. 'pusht/*/frac1/seed0'."
        ),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", help="Override training epochs.")
    ] = None,
    episodes: Annotated[
        int | None, typer.Option("--episodes", help="Override closed-loop episodes per cell.")
    ] = None,
    seeds: Annotated[
        str | None, typer.Option("--seeds", help="Override seeds, comma-separated: 0,1,2.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Recompute finished cells.")] = False,
    report_only: Annotated[
        bool, typer.Option("--report-only", help="Only aggregate the finished cells.")
    ] = False,
    list_cells: Annotated[
        bool, typer.Option("--list", help="List the preset's cells and whether they are done.")
    ] = False,
    device: Annotated[
        str | None,
        typer.Option("--device", help="Training device: cpu, cuda or auto (default: cpu)."),
    ] = None,
    executor: Annotated[
        str,
        typer.Option(
            "--executor",
            help="local: cells one after the other here; ray: cells as Ray tasks on a cluster "
            "(pip install 'lnmdn[distributed]').",
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="Ray cluster to use with --executor ray: 'auto' (the one 'ray start' made "
            "here), host:port or ray://host:10001; default: start Ray on this machine.",
        ),
    ] = None,
    max_retries: Annotated[
        int | None,
        typer.Option(
            "--max-retries",
            min=0,
            help="With --executor ray: times a failed cell is resubmitted before it is "
            "reported (default 2).",
        ),
    ] = None,
    progress: Annotated[
        bool,
        typer.Option(
            "--progress/--no-progress",
            help="Progress bars on a terminal (in a log: one line per epoch and episode batch).",
        ),
    ] = True,
) -> None:
    """Run the comparison protocol: train, evaluate, write results.json, report.md, figures."""
    if executor not in EXECUTORS:
        raise typer.BadParameter(f"--executor {executor!r}; use one of {list(EXECUTORS)}")
    if executor != "ray" and (address is not None or max_retries is not None):
        raise typer.BadParameter(
            f"--address and --max-retries apply to --executor ray, not --executor {executor}"
        )
    try:
        p = make_preset(
            preset,
            # --task runs the preset's protocol on that task alone, listed in the preset or not.
            tasks=(task,) if task else None,
            epochs=epochs,
            episodes=episodes,
            seeds=tuple(int(s) for s in seeds.split(",")) if seeds else None,
            device=device,
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    out_dir = out if out is not None else Path("runs") / "bench" / p.name
    if list_cells:
        for t, pol, f, s in plan_cells(p, task, policy, cell):
            cid = cell_id(t, pol, f, s)
            done = "done" if _cell_file(out_dir, cid).is_file() else "todo"
            typer.echo(f"{done}  {cid}")
        return
    given = {
        "--preset": preset,
        "--out": str(out) if out is not None else None,
        "--task": task,
        "--policy": policy,
        "--cell": cell,
        "--epochs": epochs,
        "--episodes": episodes,
        "--seeds": seeds,
    }
    command = shlex.join(
        ["lnmdn", "bench", *(x for k, v in given.items() if v is not None for x in (k, str(v)))]
        + ["--force"] * force
        + ["--report-only"] * report_only
    )
    t0 = time.perf_counter()
    try:
        results = run_bench(
            p,
            out_dir,
            task=task,
            policy=policy,
            cell=cell,
            force=force,
            report_only=report_only,
            executor=executor,
            address=address,
            max_retries=2 if max_retries is None else max_retries,
            progress=progress,
            command=command,
        )
    except CellsFailedError as err:
        _echo_failures([f.to_dict() for f in err.failures])
        raise typer.Exit(1) from err
    table = results["table"]
    typer.echo("")
    typer.echo(format_table(table["header"], table["rows"]))
    typer.echo(
        "errors: MSE in normalised action units; NLL* = diffusion bound; success: Wilson 95% CI"
    )
    typer.echo(
        f"{len(results['computed'])} cell(s) computed, {results['n_cells']} in the report, "
        f"{time.perf_counter() - t0:.0f} s"
    )
    typer.echo(f"report: {results['report']}  (figures in {Path(results['out']) / 'figures'})")
    if results["failed"]:
        _echo_failures(results["failed"])
        raise typer.Exit(1)


def _echo_failures(failed: list[dict[str, Any]]) -> None:
    typer.echo(f"{len(failed)} cell(s) FAILED (errors in results.json; a rerun retries them):")
    for f in failed:
        typer.echo(f"  {f['cell']}: {f['attempts']} attempt(s), last: {f['error']}")
