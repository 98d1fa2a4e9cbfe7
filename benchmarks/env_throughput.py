"""Steps per second of lnmdn/PushT-v0 against gym-pusht, measured in the same run.

Both envs run the same physics (bit-identical trajectories, see tests/envs/test_pusht.py), the same
random commanded positions and reset whenever an episode ends, so the ratio isolates the
implementation. Usage::

    .venv/bin/python benchmarks/env_throughput.py            # 3000 steps per configuration
    .venv/bin/python benchmarks/env_throughput.py --steps 10000

The script lowers its own priority (``os.nice``) so it does not crowd a shared machine.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

import lnmdn_envs


def steps_per_second(make: Callable[[], gym.Env[Any, Any]], n_steps: int, seed: int = 0) -> float:
    """Time ``n_steps`` single steps of uniformly random commanded positions (resets included)."""
    env = make()
    actions = np.random.default_rng(seed).uniform(0, 512, size=(n_steps, 2)).astype(np.float32)
    env.reset(seed=seed)
    for a in actions[:50]:  # warm-up
        env.step(a)
    env.reset(seed=seed)
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()
    elapsed = time.perf_counter() - start
    env.close()
    return n_steps / elapsed


def chunked_steps_per_second(n_steps: int, seed: int = 0) -> float:
    """Single steps per second through the registered chunked env (Ta = 8)."""
    env = gym.make("lnmdn/PushT-v0")
    n_chunks = max(1, n_steps // 8)
    chunks = np.random.default_rng(seed).uniform(0, 512, size=(n_chunks, 8, 2)).astype(np.float32)
    env.reset(seed=seed)
    done_steps = 0
    start = time.perf_counter()
    for chunk in chunks:
        _, _, terminated, truncated, info = env.step(chunk)
        done_steps += info["n_steps"]
        if terminated or truncated:
            env.reset()
    return done_steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3000, help="steps per configuration")
    args = parser.parse_args()
    os.nice(10)

    import gym_pusht  # noqa: F401  (registers gym_pusht/PushT-v0; test extra)

    n = args.steps
    rows = {
        "lnmdn state": steps_per_second(
            lambda: lnmdn_envs.make_task_env("lnmdn/PushT-v0", obs_type="state"), n
        ),
        "gym-pusht state": steps_per_second(
            lambda: gym.make("gym_pusht/PushT-v0", obs_type="state"), n
        ),
        "lnmdn pixels 96": steps_per_second(
            lambda: lnmdn_envs.make_task_env("lnmdn/PushT-v0", obs_type="pixels"), n
        ),
        "gym-pusht pixels 96": steps_per_second(
            lambda: gym.make("gym_pusht/PushT-v0", obs_type="pixels"), max(n // 4, 200)
        ),
        "lnmdn state, chunked (Ta=8)": chunked_steps_per_second(n),
    }
    width = max(len(k) for k in rows)
    print(f"{'configuration':<{width}}  steps/s")
    for name, value in rows.items():
        print(f"{name:<{width}}  {value:9.0f}")
    state_ratio = rows["lnmdn state"] / rows["gym-pusht state"]
    pixel_ratio = rows["lnmdn pixels 96"] / rows["gym-pusht pixels 96"]
    print(f"ratio state  (lnmdn / gym-pusht): {state_ratio:.1f}x")
    print(f"ratio pixels (lnmdn / gym-pusht): {pixel_ratio:.1f}x")


if __name__ == "__main__":
    main()
