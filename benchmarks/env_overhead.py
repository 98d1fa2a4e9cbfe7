"""Overhead of each registered env over the raw simulator it wraps, measured in one run.

For every id in ``lnmdn_envs.TASKS``: the chunked env that ``gym.make(id)`` returns
(``MultiStep(TimeLimit(task_env))`` behind Gymnasium's order/passive checkers, To=2, Ta=8) and
the raw simulator step the same seeded actions, in interleaved blocks of Ta steps so both see the
same machine load. The raw simulator is

* PointMaze: gymnasium-robotics' ``PointMazeEnv`` (dict observations, ``continuing_task=False``);
* Can: the robosuite ``PickPlaceCan`` env built with lnmdn's configuration;
* Push-T: lnmdn's own single-step ``PushTEnv`` (it is the simulator), so the ratio is the cost
  of chunking and checking alone.

Resets happen outside the timers, at the same steps for both. Overhead = wrapped time / raw
time - 1 over the whole run, and the median over chunks of the same ratio (robust to bursts of
load from other processes). Target: < 10% for Can and PointMaze::

    .venv/bin/python benchmarks/env_overhead.py                 # every id
    .venv/bin/python benchmarks/env_overhead.py --ids lnmdn/Can-v0 --steps 400
    .venv/bin/python benchmarks/env_overhead.py --inner     # PointMaze vs the bare MuJoCo body
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

import lnmdn_envs
from lnmdn_envs import TASKS

StepFn = Callable[[np.ndarray], Any]


def raw_simulator(
    env_id: str, inner: bool = False
) -> tuple[Callable[[int], Any], StepFn, Callable[[], None]]:
    """``(reset(seed), step(action), close())`` of the raw simulator behind ``env_id``.

    With ``inner=True`` PointMaze's baseline is gymnasium-robotics' bare MuJoCo ``PointEnv``
    (no maze bookkeeping) instead of its ``PointMazeEnv``.
    """
    spec = TASKS[env_id]
    if spec.entry_point.startswith("lnmdn_envs.pointmaze"):
        from gymnasium_robotics.envs.maze.point_maze import PointMazeEnv as RawPointMaze

        from lnmdn_envs.pointmaze import MAZES

        maze = RawPointMaze(
            maze_map=MAZES[spec.kwargs["maze"]], continuing_task=False, reset_target=False
        )
        step = maze.point_env.step if inner else maze.step
        return (lambda seed: maze.reset(seed=seed)), step, maze.close
    if spec.entry_point.startswith("lnmdn_envs.can"):
        from lnmdn_envs.can import CanEnv

        rs = CanEnv().robosuite_env  # robosuite PickPlaceCan with lnmdn's configuration
        return (lambda seed: rs.reset()), rs.step, rs.close
    task = lnmdn_envs.make_task_env(env_id).unwrapped  # Push-T: our env is the simulator
    return (lambda seed: task.reset(seed=seed)), task.step, task.close


def measure(env_id: str, n_steps: int, seed: int = 0, inner: bool = False) -> dict[str, Any]:
    """Steps per second of the chunked env and of the raw simulator on the same actions."""
    env = gym.make(env_id)
    ta = env.action_space.shape[0]
    low, high = env.action_space.low[0], env.action_space.high[0]
    actions = np.random.default_rng(seed).uniform(
        low, high, (n_steps // ta, *env.action_space.shape)
    )
    actions = actions.astype(env.action_space.dtype)
    raw_reset, raw_step, raw_close = raw_simulator(env_id, inner)

    env.reset(seed=seed)
    raw_reset(seed)
    t_env, t_raw, steps = [], [], 0
    for chunk in actions:
        start = time.perf_counter()
        _, _, terminated, truncated, info = env.step(chunk)
        t_env.append(time.perf_counter() - start)
        n = info["n_steps"]
        start = time.perf_counter()
        for a in chunk[:n]:
            raw_step(a)
        t_raw.append(time.perf_counter() - start)
        steps += n
        if terminated or truncated:
            env.reset()
            raw_reset(seed)
    env.close()
    raw_close()
    env_s, raw_s = np.asarray(t_env), np.asarray(t_raw)
    return {
        "env_id": env_id,
        "steps": steps,
        "env_steps_per_s": steps / env_s.sum(),
        "raw_steps_per_s": steps / raw_s.sum(),
        "overhead": env_s.sum() / raw_s.sum() - 1.0,
        # robust to bursts of load from other processes: the typical chunk's ratio
        "overhead_median_chunk": float(np.median(env_s / raw_s)) - 1.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ids", nargs="*", default=sorted(TASKS), help="registered ids")
    parser.add_argument("--steps", type=int, default=None, help="single steps per id")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument(
        "--inner",
        action="store_true",
        help="PointMaze against the bare MuJoCo PointEnv instead of gymnasium-robotics' maze env",
    )
    args = parser.parse_args()
    results = []
    print(
        f"{'id':30s} {'steps':>6s} {'wrapped/s':>10s} {'raw/s':>10s} {'overhead':>9s} "
        f"{'median':>9s}"
    )
    for env_id in args.ids:
        n = args.steps or (400 if env_id == "lnmdn/Can-v0" else 20_000)
        r = measure(env_id, n, inner=args.inner)
        results.append(r)
        print(
            f"{env_id:30s} {r['steps']:6d} {r['env_steps_per_s']:10.0f} "
            f"{r['raw_steps_per_s']:10.0f} {r['overhead']:+9.1%} "
            f"{r['overhead_median_chunk']:+9.1%}",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
