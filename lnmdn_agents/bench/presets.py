"""The bench's tasks and presets: what one ``lnmdn bench`` run trains and measures.

A :class:`BenchPreset` holds every setting of a run (tasks, policies, fractions, seeds, training
and evaluation sizes); :data:`PRESETS` names the five the command offers and :func:`make_preset`
builds one with fields replaced:

* ``demo``: the README's main job (``make demo``): Push-T and the large maze evaluated from the
  recipe runs shipped in ``checkpoints/``, and the U-maze trained from scratch by its recipes,
  ``liquid_mdn`` vs ``diffusion``, 50 closed-loop test episodes each (the large maze 200).
  Minutes on a laptop.
* ``quick``: Push-T, small models trained for 10 epochs without recipes (a smoke run).
* ``results``: every committed recipe, trained and tested (the README's results table).
* ``paper``: Push-T, Can and PointMaze; every registered policy; the seven training fractions;
  three seeds; 120 epochs at paper scale. Days on a CPU: run it in parts.
* ``reference``: the liquid-MDN paper's protocol beside the standard one
  (:mod:`lnmdn_agents.protocols`): ``liquid_mdn`` and ``diffusion`` on Push-T, Can and the
  U-maze, small models trained briefly under both protocols, each tested in closed loop from
  random and from dataset start states.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lnmdn_agents.config_fields import check_field_types

__all__ = ["BENCH_TASKS", "PRESETS", "SHIPPED_RUNS", "BenchPreset", "BenchTask", "make_preset"]


@dataclass(frozen=True)
class BenchTask:
    """One task of the protocol.

    Attributes:
        name: short name used in cell ids and figures.
        dataset: Minari id of the demonstrations (a recipe may name another version of the
            task's data; its run's dataset is the one evaluated).
    """

    name: str
    dataset: str


BENCH_TASKS: dict[str, BenchTask] = {
    t.name: t
    for t in [
        BenchTask("pusht", "lnmdn/pusht/expert-v2"),
        # Push-T again, on the 2000 demonstrations with DART noise injection (expert-v5)
        BenchTask("pusht-dart", "lnmdn/pusht/expert-v5"),
        BenchTask("can", "lnmdn/can/expert-v0"),
        *(
            BenchTask(f"pointmaze-{m}", f"lnmdn/pointmaze-{m}/expert-v0")
            for m in ("umaze", "medium", "large", "bimodal")
        ),
        # the long mazes again, on 1000 demonstrations with correlated DART noise (expert-v2)
        *(
            BenchTask(f"pointmaze-{m}-dart", f"lnmdn/pointmaze-{m}/expert-v2")
            for m in ("medium", "large")
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
        protocols: ``"standard"`` and/or ``"reference"`` (:mod:`lnmdn_agents.protocols`); each
            makes its own cells (reference cell ids end in ``/reference``).
        starts: closed-loop start states, ``"random"`` (the test seeds) and/or ``"dataset"``
            (held-out demonstration windows' states), reported apart
            (:mod:`lnmdn_agents.evaluation.starts`).
        start_steps: step limit of the dataset starts' episodes (None: the task's own).
        task_episodes: per task, a cap on the closed-loop episodes (Can's simulator is slow).
        jobs: cells the local executor computes at once, each in a worker process of its own
            (0: one per CPU core; never more than the cells to compute). A cell's numbers are
            the same as when it runs alone; its timings are measured beside the others'.
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
    protocols: tuple[str, ...] = ("standard",)
    starts: tuple[str, ...] = ("random",)
    start_steps: int | None = None
    task_episodes: dict[str, int] = field(default_factory=dict)
    jobs: int = 1

    def __post_init__(self) -> None:
        check_field_types(self)
        from lnmdn_agents.evaluation.starts import check_starts
        from lnmdn_agents.protocols import get_protocol

        if not self.protocols:
            raise ValueError("protocols must name at least one protocol ('standard', 'reference')")
        for name in self.protocols:
            get_protocol(name)
        check_starts(self.starts)
        if self.start_steps is not None and self.start_steps < 1:
            raise ValueError(f"start_steps must be >= 1 or None, got {self.start_steps=}")
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
        if self.jobs < 0:
            raise ValueError(f"jobs must be >= 0 (0: one per CPU core), got {self.jobs=}")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs=}")
        if self.device not in ("cpu", "cuda", "auto") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be 'cpu', 'cuda[:N]' or 'auto', got {self.device=}")


#: Recipe runs shipped with the repository (``checkpoints/<task>_<policy>/``: train_config.json,
#: metrics.jsonl and the selected ``best/`` weights), evaluated by the demo instead of retrained.
SHIPPED_RUNS = Path(__file__).resolve().parents[2] / "checkpoints"

# The demo's tasks evaluated from shipped recipe runs (checkpoints/<task>_<policy>/).
_DEMO_SHIPPED_TASKS = ("pusht", "pointmaze-large")

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


# How the quick and reference presets train their small models (beside epochs and batch size).
_QUICK_TRAINING: dict[str, Any] = {
    "lr": 1e-3,
    "warmup_epochs": 0.5,
    "val_max_windows": 256,
    "policy_overrides": _QUICK_OVERRIDES,
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
    # The README's main job (`make demo`): Push-T and the large maze from the runs the recipes
    # made (shipped in checkpoints/, checked against the recipes), next to both heads trained
    # from scratch by their recipes on the U-maze, all tested in closed loop; minutes on a laptop.
    # Its cells run side by side, one worker process per core (each trains on one thread).
    # The large maze gets 200 test episodes (seeds 100000-100199): its two heads differ by about
    # 0.2 in success, which 50 or 100 episodes' intervals do not resolve.
    "demo": lambda: BenchPreset(
        name="demo",
        recipes=True,
        tasks=("pusht", "pointmaze-large", "pointmaze-umaze"),
        policies=("liquid_mdn", "diffusion"),
        epochs=None,
        **{**_SHORT_EVALUATION, "episodes": 200},
        task_episodes={"pusht": 50, "pointmaze-umaze": 50},
        jobs=0,
        pretrained={
            f"{task}/{p}": str(SHIPPED_RUNS / f"{task}_{p}")
            for task in _DEMO_SHIPPED_TASKS
            for p in ("liquid_mdn", "diffusion")
        },
    ),
    # Small models trained briefly on the embedded Push-T data (no recipe): a smoke run.
    "quick": lambda: BenchPreset(
        name="quick",
        tasks=("pusht",),
        policies=("liquid_mdn", "diffusion"),
        epochs=10,
        batch_size=128,
        **_QUICK_TRAINING,
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
    # The liquid-MDN paper's protocol beside the standard one: both heads at the quick preset's
    # widths, on Push-T, Can and the U-maze, each under both protocols, tested in closed loop
    # from random and from dataset starts (20 episodes each; Can 10: its simulator is slow).
    "reference": lambda: BenchPreset(
        name="reference",
        tasks=("pusht", "can", "pointmaze-umaze"),
        policies=("liquid_mdn", "diffusion"),
        protocols=("standard", "reference"),
        starts=("random", "dataset"),
        start_steps=200,
        epochs=8,
        batch_size=256,
        **_QUICK_TRAINING,
        task_episodes={"can": 10},
        **{**_SHORT_EVALUATION, "episodes": 20, "videos": 0, "diffusion_steps": ()},
    ),
}


def make_preset(
    name: str, fields: Mapping[str, Any] | None = None, **overrides: Any
) -> BenchPreset:
    """A preset by name, with fields replaced by ``fields``, then by ``overrides``.

    ``fields`` (a ``--config`` file's, :func:`lnmdn_agents.config_fields.read_config_file`) apply
    as given, None included; ``overrides`` (the command-line options) only where not None.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown bench preset {name!r}; known: {sorted(PRESETS)}")
    preset: BenchPreset = PRESETS[name]()
    changes = {**(fields or {}), **{k: v for k, v in overrides.items() if v is not None}}
    known = {f.name for f in dataclasses.fields(BenchPreset)}
    bad = sorted(set(changes) - known)
    if bad:
        raise ValueError(f"unknown preset field(s) {bad}; known: {sorted(known)}")
    return dataclasses.replace(preset, **changes)
