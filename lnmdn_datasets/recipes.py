"""Dataset recipes: which expert, on which task, how many episodes, from which seeds.

One recipe per Minari id::

    lnmdn/pusht/expert-v0                 PushTExpert       on lnmdn/PushT-v0
    lnmdn/pusht/expert-v1                 PushTExpert (deterministic)  on lnmdn/PushT-v0
    lnmdn/pusht/expert-v2                 the same, keypoint observations (obs_type="keypoints")
    lnmdn/pusht/expert-v3                 v2 with DART noise injection (labels: the clean actions)
    lnmdn/pusht/expert-v4                 v3 with 1000 episodes (its first 200 are v3's)
    lnmdn/pusht/expert-v5                 v3 with 2000 episodes (its first 1000 are v4's)
    lnmdn/can/expert-v0                   CanExpert         on lnmdn/Can-v0
    lnmdn/can/expert-v1                   v0 with 500 episodes (its first 200 are v0's)
    lnmdn/can/expert-v2                   v0 with DART noise on the position deltas
    lnmdn/pointmaze-<maze>/expert-v0      PointMazeExpert   on lnmdn/PointMaze-<Maze>-v0
                                          (maze: umaze, medium, large, bimodal)
    lnmdn/pointmaze-<maze>/expert-v1      v0 with 1000 episodes (maze: medium, large)
    lnmdn/pointmaze-<maze>/expert-v2      v1 with DART noise injection (maze: medium, large)

:func:`build` runs the expert on the single-step task env (``lnmdn_envs.make_task_env``) with
reset seeds ``base_seed, base_seed + 1, ...`` and keeps the **successful** episodes until it has
``n_episodes`` of them, as robomimic's proficient-human datasets and Diffusion Policy's Push-T
demonstrations hold successful demonstrations only; a behaviour-cloning user expects every
demonstration to show the task being done. The expert's success rate over **all** attempted
episodes, the kept and the failed seeds are written into the dataset metadata. Each step stores
the simulator state before it (``infos["state"]``), so :func:`lnmdn_datasets.verify.verify` can
reset to a demonstration's first state and replay its actions.

The expert's own randomness (speeds, offsets, noise, route choice) comes from
``np.random.default_rng([EXPERT_SEED_SALT, seed])``, independent of the env's stream for the same
seed; the same recipe and seed give identical arrays.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.metadata
import logging
import multiprocessing
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lnmdn_datasets.episodes import EpisodeRecord
from lnmdn_datasets.experts import ActionNoise, rollout_expert
from lnmdn_datasets.minari_io import (
    minari_root,
    task_env_spec,
    write_dataset,
)
from lnmdn_envs.suggest import did_you_mean
from lnmdn_envs.vector import spawn_is_safe

__all__ = [
    "EXPERT_SEED_SALT",
    "RECIPES",
    "BuildReport",
    "Recipe",
    "build",
    "build_workers",
    "get_recipe",
    "record_episode",
]

logger = logging.getLogger(__name__)

#: Mixed into the expert's seed so its draws differ from the env's for the same reset seed.
EXPERT_SEED_SALT = 0x1A3D

ExpertFactory = Callable[[], Any]


@dataclass(frozen=True)
class Recipe:
    """How one dataset is made.

    Attributes:
        dataset_id: the Minari id, ``lnmdn/<task>/<name>-vN``.
        task_id: the lnmdn task whose single-step env the expert acts on.
        expert: ``"module:Class"`` of an :class:`lnmdn_datasets.experts.Expert`, or a factory.
        n_episodes: successful episodes to keep.
        base_seed: reset seed of the first attempted episode (then +1 per attempt).
        version: recipe version; bump it when the recipe's output changes.
        description: what the data is, for ``minari show``.
        expert_kwargs: keyword arguments of the expert's constructor.
        env_kwargs: task keyword arguments of the env the expert acts in (``obs_type``); they
            are stored in the dataset's env spec, so evaluation rebuilds the same env.
        action_noise: DART noise injection: the env executes the expert's action plus this
            noise, and the expert's clean action is stored as ``infos["expert_action"]``, the
            label policies train on (:func:`lnmdn_datasets.experts.rollout_expert`).
        max_attempts: give up after this many attempts (default ``2 * n_episodes + 20``).
        auto_build: ``lnmdn_agents.data.load_episodes`` builds the dataset when it is missing
            (PointMaze: under a minute; Can: about 6 minutes, with a progress bar).
    """

    dataset_id: str
    task_id: str
    expert: str | ExpertFactory
    n_episodes: int
    base_seed: int = 0
    version: str = "1"
    description: str = ""
    expert_kwargs: dict[str, Any] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    action_noise: ActionNoise | None = None
    max_attempts: int | None = None
    auto_build: bool = False

    def make_expert(self) -> Any:
        """Construct the expert."""
        if callable(self.expert):
            return self.expert(**self.expert_kwargs)
        module_name, _, attr = self.expert.partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, attr)(**self.expert_kwargs)

    @property
    def expert_name(self) -> str:
        """``module:Class`` of the expert."""
        if isinstance(self.expert, str):
            return self.expert
        return f"{self.expert.__module__}:{getattr(self.expert, '__qualname__', self.expert)}"


#: PushTExpert made deterministic (always the best push, one push speed): v1, and v2 observing it.
_DETERMINISTIC_PUSHER: dict[str, Any] = {"near_best": 1.0, "push_scale": (1.0, 1.0)}

#: expert-v3: v2's deterministic pusher with DART noise; expert-v4 is the same for 1000 episodes.
_PUSHT_DART = Recipe(
    "lnmdn/pusht/expert-v3",
    "lnmdn/PushT-v0",
    "lnmdn_datasets.experts.pusht:PushTExpert",
    n_episodes=200,
    expert_kwargs=_DETERMINISTIC_PUSHER,
    env_kwargs={"obs_type": "keypoints"},
    action_noise=ActionNoise(std=10.0),
    auto_build=True,
    description=(
        "Push-T (lnmdn/PushT-v0, keypoint observations as expert-v2): the deterministic "
        "pusher with DART noise injection (Laskey et al. 2017): the env executed the "
        "expert's commanded position plus Gaussian noise of 10 px per axis and step, so "
        "the demonstrations visit states off the expert's own path; infos['expert_action'] "
        "holds the expert's clean action in each state, the label policies train on "
        "(actions are as executed, for replay)."
    ),
)

#: expert-v0 of robomimic Can; expert-v1 is the same for 500 episodes.
_CAN = Recipe(
    "lnmdn/can/expert-v0",
    "lnmdn/Can-v0",
    "lnmdn_datasets.experts.can:CanExpert",
    n_episodes=200,
    description=(
        "robomimic Can (lnmdn/Can-v0, robosuite PickPlaceCan, Panda, OSC_POSE deltas; "
        "23-D low-dim observation): successful pick-and-place demonstrations of the "
        "suite's scripted controller with per-episode speeds, offsets and noise."
    ),
    auto_build=True,
)

_MAZES = {"umaze": "UMaze", "medium": "Medium", "large": "Large", "bimodal": "Bimodal"}


def _maze_expert_v0(maze: str) -> Recipe:
    """expert-v0 of a maze: 200 demonstrations, built on first load."""
    name = _MAZES[maze]
    return Recipe(
        f"lnmdn/pointmaze-{maze}/expert-v0",
        f"lnmdn/PointMaze-{name}-v0",
        "lnmdn_datasets.experts.pointmaze:PointMazeExpert",
        n_episodes=200,
        description=(
            f"PointMaze {name} (lnmdn/PointMaze-{name}-v0, observation [x, y, vx, vy, "
            "goal_x, goal_y], action force [-1, 1]^2): successful demonstrations of a "
            "shortest-path waypoint planner with a PD tracker, as D4RL's data was made."
        ),
        auto_build=True,
    )


def _maze_scaling_recipes(maze: str) -> list[Recipe]:
    """expert-v1, v2 (v1 with DART noise) and, for the large maze, v3 (v2 for 5000 episodes).

    The 200 episodes of expert-v0 cover few of a long maze's start / goal pairs (the large
    maze has 46 free cells, so 2070 ordered pairs), and a policy that leaves the expert's path
    meets states no demonstration shows; v1 measures the first, v2 the second (noise of std 0.5
    in force units, correlated 0.8 step to step, so the ball drifts off its line for several
    steps: the expert still succeeds in every episode, 13 % longer on the large maze).
    """
    name = _MAZES[maze]
    v1 = dataclasses.replace(
        _maze_expert_v0(maze),
        dataset_id=f"lnmdn/pointmaze-{maze}/expert-v1",
        n_episodes=1000,
        description=(
            f"PointMaze {name} (lnmdn/PointMaze-{name}-v0): expert-v0's recipe run for 1000 "
            "successful episodes, from the same seeds on, so its first 200 episodes are "
            "expert-v0's; for measuring how success on a long maze scales with the "
            "demonstrations."
        ),
    )
    v2 = dataclasses.replace(
        v1,
        dataset_id=f"lnmdn/pointmaze-{maze}/expert-v2",
        action_noise=ActionNoise(std=0.5, corr=0.8),
        description=(
            f"PointMaze {name} (lnmdn/PointMaze-{name}-v0): expert-v1 (1000 episodes) with "
            "DART noise injection: the env executed the expert's force plus noise of std 0.5 "
            "per axis, correlated 0.8 from step to step, so the ball drifts off the expert's "
            "line and the expert, replanning, shows the way back; infos['expert_action'] holds "
            "its clean action, the label policies train on."
        ),
    )
    if maze != "large":
        return [v1, v2]
    v3 = dataclasses.replace(
        v2,
        dataset_id=f"lnmdn/pointmaze-{maze}/expert-v3",
        n_episodes=5000,
        description=(
            f"PointMaze {name} (lnmdn/PointMaze-{name}-v0): expert-v2's recipe (DART noise of "
            "std 0.5, correlated 0.8; clean labels in infos['expert_action']) run for 5000 "
            "successful episodes, so its first 1000 are expert-v2's: the liquid head "
            "overfitted v2's 700 training episodes (its validation NLL rose from epoch 40 on) "
            "and v3 covers each of the maze's 2070 ordered start / goal cell pairs about "
            "twice."
        ),
    )
    return [v1, v2, v3]


RECIPES: dict[str, Recipe] = {
    r.dataset_id: r
    for r in [
        Recipe(
            "lnmdn/pusht/expert-v0",
            "lnmdn/PushT-v0",
            "lnmdn_datasets.experts.pusht:PushTExpert",
            n_episodes=200,
            description=(
                "Push-T (lnmdn/PushT-v0, state observations: agent x, y, block x, y, angle; "
                "actions: target agent position in px): successful demonstrations of the "
                "suite's scripted pusher from the env's random initial states."
            ),
        ),
        Recipe(
            "lnmdn/pusht/expert-v1",
            "lnmdn/PushT-v0",
            "lnmdn_datasets.experts.pusht:PushTExpert",
            n_episodes=200,
            expert_kwargs=_DETERMINISTIC_PUSHER,
            auto_build=True,
            description=(
                "Push-T (lnmdn/PushT-v0, state observations): successful demonstrations of the "
                "suite's scripted pusher made deterministic (always the best push, one push "
                "speed), so each action is a function of the state the expert decided in rather "
                "than of hidden draws; same start states as expert-v0."
            ),
        ),
        Recipe(
            "lnmdn/pusht/expert-v2",
            "lnmdn/PushT-v0",
            "lnmdn_datasets.experts.pusht:PushTExpert",
            n_episodes=200,
            expert_kwargs=_DETERMINISTIC_PUSHER,
            env_kwargs={"obs_type": "keypoints"},
            auto_build=True,
            description=(
                "Push-T (lnmdn/PushT-v0 with obs_type='keypoints': the block's 9 keypoints "
                "x, y, then the agent's x, y, as Diffusion Policy's low-dim Push-T observes): "
                "the deterministic pusher of expert-v1 from the same start states, so the "
                "actions are v1's; the keypoints have no jump where the block's angle wraps "
                "from 2 pi to 0, which the state observation of v0/v1 has in a third of the "
                "episodes."
            ),
        ),
        _PUSHT_DART,
        dataclasses.replace(
            _PUSHT_DART,
            dataset_id="lnmdn/pusht/expert-v4",
            n_episodes=1000,
            description=(
                "Push-T (lnmdn/PushT-v0, keypoint observations): expert-v3's recipe (the "
                "deterministic pusher, DART noise of 10 px, clean labels in "
                "infos['expert_action']) run for 1000 successful episodes instead of 200, from "
                "the same seeds on, so its first 200 episodes are expert-v3's; for measuring "
                "how success scales with the number of demonstrations."
            ),
        ),
        dataclasses.replace(
            _PUSHT_DART,
            dataset_id="lnmdn/pusht/expert-v5",
            n_episodes=2000,
            description=(
                "Push-T (lnmdn/PushT-v0, keypoint observations): expert-v3's recipe run for 2000 "
                "successful episodes, from the same seeds on, so its first 1000 episodes are "
                "expert-v4's; the next step of the data-scaling series."
            ),
        ),
        _CAN,
        dataclasses.replace(
            _CAN,
            dataset_id="lnmdn/can/expert-v1",
            n_episodes=500,
            description=(
                "robomimic Can (lnmdn/Can-v0): expert-v0's recipe run for 500 successful "
                "episodes instead of 200, from the same seeds on, so its first 200 episodes are "
                "expert-v0's; for measuring how success on Can scales with the demonstrations."
            ),
        ),
        dataclasses.replace(
            _CAN,
            dataset_id="lnmdn/can/expert-v2",
            action_noise=ActionNoise(std=0.3, corr=0.8, dims=(0, 1, 2)),
            description=(
                "robomimic Can (lnmdn/Can-v0): expert-v0's recipe (same expert, same start "
                "seeds) with DART noise injection on the three position deltas: the env "
                "executed the expert's move plus noise of std 0.3 action units (about 3 mm per "
                "step), correlated 0.8 from step to step, so the gripper drifts off the "
                "expert's line by a centimetre or more and the expert, closing the loop, "
                "recentres over the can, and after a missed grasp approaches again; "
                "infos['expert_action'] holds its clean action, the label policies train on."
            ),
        ),
        *(_maze_expert_v0(maze) for maze in _MAZES),
        *_maze_scaling_recipes("medium"),
        *_maze_scaling_recipes("large"),
    ]
}


def _noise_metadata(noise: ActionNoise | None) -> dict[str, Any] | None:
    """The recipe's DART noise as dataset metadata (``dims`` only where it is set)."""
    if noise is None:
        return None
    meta: dict[str, Any] = {"std": noise.std, "corr": noise.corr}
    if noise.dims is not None:
        meta["dims"] = list(noise.dims)
    return meta


def get_recipe(dataset_id: str) -> Recipe:
    """The recipe of ``dataset_id``; an unknown id lists the known ones."""
    try:
        return RECIPES[dataset_id]
    except KeyError:
        hint = did_you_mean(dataset_id, RECIPES)
        raise KeyError(
            f"no recipe for dataset {dataset_id!r}.{hint} Recipes: {sorted(RECIPES)}"
        ) from None


def record_episode(
    env: Any, expert: Any, seed: int, noise: ActionNoise | None = None
) -> tuple[EpisodeRecord, bool]:
    """Run ``expert`` for one episode on the single-step ``env`` from reset seed ``seed``.

    The expert's own draws (and ``noise``'s) come from
    ``np.random.default_rng([EXPERT_SEED_SALT, seed])``.

    Returns:
        The episode (with ``infos`` ``state``, ``is_success``, ``score``) and whether it ended
        in success.
    """
    rng = np.random.default_rng([EXPERT_SEED_SALT, seed])
    record = rollout_expert(env, expert, seed, rng, noise)
    return record, record.success


@dataclass
class BuildReport:
    """What a build did.

    Attributes:
        dataset_id: the id written (or that would be written, with ``write=False``).
        episodes: the kept (successful) episodes.
        attempted: episodes run.
        succeeded: successful episodes among them (the kept ones).
        failed_seeds: reset seeds of the failed attempts.
        seconds: wall time of the expert rollouts.
    """

    dataset_id: str
    episodes: list[EpisodeRecord]
    attempted: int
    succeeded: int
    failed_seeds: list[int]
    seconds: float

    @property
    def success_rate(self) -> float:
        """Expert success rate over all attempts."""
        return self.succeeded / max(self.attempted, 1)


def build_workers() -> int:
    """Default worker processes of a build: every core, at most 8."""
    return max(1, min(os.cpu_count() or 1, 8))


def _picklable(recipe: Recipe) -> bool:
    """Whether worker processes can receive ``recipe`` (not with a locally defined expert)."""
    try:
        pickle.dumps(recipe)
    except (pickle.PicklingError, AttributeError, TypeError):
        return False
    return True


def _usable_workers(recipe: Recipe, workers: int) -> int:
    """``workers``, or 1 where worker processes cannot run the recipe (logged, with the reason)."""
    if workers == 1:
        return 1
    if multiprocessing.current_process().daemon:
        reason = "it is a daemonic process, which may not have children"
    elif not _picklable(recipe):
        reason = "its recipe cannot be pickled"
    elif not spawn_is_safe():
        logger.warning(
            "building %s in this process: worker processes would re-run this script's top "
            'level; call build(..., workers=%d) under `if __name__ == "__main__":`',
            recipe.dataset_id,
            workers,
        )
        return 1
    else:
        return workers
    logger.info("building %s in this process: %s", recipe.dataset_id, reason)
    return 1


class _EpisodeRunner:
    """A recipe's env and expert, running one seeded episode per call (in a worker or here)."""

    def __init__(self, recipe: Recipe):
        from lnmdn_envs import make_task_env

        self.env = make_task_env(recipe.task_id, **recipe.env_kwargs)
        self.expert = recipe.make_expert()
        self.noise = recipe.action_noise

    def __call__(self, seed: int) -> tuple[EpisodeRecord, bool]:
        return record_episode(self.env, self.expert, seed, self.noise)


_worker_runner: _EpisodeRunner | None = None


def _start_worker(recipe: Recipe) -> None:
    global _worker_runner
    _worker_runner = _EpisodeRunner(recipe)


def _worker_episode(seed: int) -> tuple[EpisodeRecord, bool]:
    assert _worker_runner is not None, "the pool's initializer makes the runner"
    return _worker_runner(seed)


@contextlib.contextmanager
def _episode_stream(
    recipe: Recipe, seeds: range, workers: int
) -> Iterator[Iterator[tuple[EpisodeRecord, bool]]]:
    """``record_episode`` of each seed in order: in this process, or in ``workers`` processes.

    Leaving the context stops the workers; episodes run ahead of what the caller took are
    dropped.
    """
    if workers == 1:
        runner = _EpisodeRunner(recipe)
        try:
            yield map(runner, seeds)
        finally:
            runner.env.close()
        return
    ctx = multiprocessing.get_context("forkserver")
    ahead = threading.BoundedSemaphore(2 * workers)
    stop = threading.Event()

    def paced() -> Iterator[int]:
        # Pool.imap queues its whole input at once; this keeps it 2 x workers seeds ahead of
        # the caller. Pool.terminate joins the thread iterating this, so it must not block.
        for seed in seeds:
            while not ahead.acquire(timeout=0.05):
                if stop.is_set():
                    return
            yield seed

    def taken(
        results: Iterator[tuple[EpisodeRecord, bool]],
    ) -> Iterator[tuple[EpisodeRecord, bool]]:
        for result in results:
            ahead.release()
            yield result

    pool = ctx.Pool(workers, initializer=_start_worker, initargs=(recipe,))
    try:
        yield taken(pool.imap(_worker_episode, paced()))
    finally:
        stop.set()
        pool.terminate()
        pool.join()


def build(
    recipe: Recipe | str,
    *,
    force: bool = False,
    n_episodes: int | None = None,
    write: bool = True,
    progress: bool = True,
    workers: int = 1,
) -> BuildReport:
    """Run a recipe and write its Minari dataset (atomically).

    Args:
        recipe: a :class:`Recipe` or a dataset id of :data:`RECIPES`.
        force: rebuild an existing dataset.
        n_episodes: override the recipe's episode count (for quick tries; recorded in metadata).
        write: write the dataset (False: only run the expert and return the episodes).
        progress: show a tqdm progress bar.
        workers: processes running episodes at once (``forkserver`` workers, each with its own
            env and expert). Episodes depend on their seed alone and are kept in seed order, so
            any number of workers writes the same dataset (at most ``2 * workers`` episodes
            run past the last one needed, and are dropped). A recipe that cannot be pickled
            (an expert class defined inside a function) builds in this process.

    Returns:
        A :class:`BuildReport`.

    Raises:
        FileExistsError: the dataset exists and ``force`` is false (checked before running).
        RuntimeError: the expert failed too often to reach ``n_episodes`` successes.
    """
    from tqdm.auto import tqdm

    if isinstance(recipe, str):
        recipe = get_recipe(recipe)
    target = recipe.n_episodes if n_episodes is None else int(n_episodes)
    if target < 1:
        raise ValueError(f"n_episodes must be >= 1, got {target}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1 (1: no worker processes), got {workers!r}")
    workers = _usable_workers(recipe, workers)
    if write and not force and (minari_root() / recipe.dataset_id).exists():
        raise FileExistsError(
            f"dataset {recipe.dataset_id!r} already exists in {minari_root()}; pass --force "
            "(force=True) to rebuild it"
        )
    max_attempts = recipe.max_attempts or 2 * target + 20
    seeds = range(recipe.base_seed, recipe.base_seed + max_attempts)
    kept: list[EpisodeRecord] = []
    failed: list[int] = []
    attempted = 0
    start = time.perf_counter()
    bar = tqdm(total=target, desc=recipe.dataset_id, unit="ep", disable=None if progress else True)
    with _episode_stream(recipe, seeds, workers) as episodes:
        try:
            for seed, (record, ok) in zip(seeds, episodes, strict=False):
                attempted += 1
                if ok:
                    kept.append(record)
                    bar.update(1)
                else:
                    failed.append(seed)
                bar.set_postfix(success=f"{len(kept) / attempted:.3f}", attempts=attempted)
                if len(kept) == target:
                    break
        finally:
            bar.close()
    if len(kept) < target:
        raise RuntimeError(
            f"{recipe.expert_name} succeeded in {len(kept)} of {attempted} episodes on "
            f"{recipe.task_id}; {target} successes were needed. The expert is not good "
            "enough for this recipe."
        )
    seconds = time.perf_counter() - start
    report = BuildReport(recipe.dataset_id, kept, attempted, len(kept), failed, seconds)
    logger.info(
        "%s: expert success %.3f (%d/%d), %d steps kept, %.1f s",
        recipe.dataset_id,
        report.success_rate,
        len(kept),
        attempted,
        sum(len(r) for r in kept),
        seconds,
    )
    if write:
        try:
            lnmdn_version = importlib.metadata.version("lnmdn")
        except importlib.metadata.PackageNotFoundError:
            lnmdn_version = "unknown"

        write_dataset(
            recipe.dataset_id,
            kept,
            env_spec=task_env_spec(recipe.task_id, **recipe.env_kwargs),
            description=(
                f"{recipe.description} {len(kept)} successful episodes kept of {attempted} "
                f"attempted (expert success rate {report.success_rate:.3f})."
            ).strip(),
            algorithm_name=recipe.expert_name,
            metadata={
                "expert_success_rate": report.success_rate,
                "expert_episodes_attempted": attempted,
                "expert_episodes_succeeded": len(kept),
                "episodes_kept": "successful only",
                "seeds": [r.seed for r in kept],
                "failed_seeds": failed,
                "base_seed": recipe.base_seed,
                "expert_seed": f"np.random.default_rng([{EXPERT_SEED_SALT}, seed])",
                "recipe_version": recipe.version,
                "recipe_n_episodes": recipe.n_episodes,
                "task_id": recipe.task_id,
                "expert_kwargs": recipe.expert_kwargs,
                "env_kwargs": recipe.env_kwargs,
                "action_noise": _noise_metadata(recipe.action_noise),
                "lnmdn_version": lnmdn_version,
                "build_seconds": round(seconds, 2),
            },
            force=force,
        )
    return report
