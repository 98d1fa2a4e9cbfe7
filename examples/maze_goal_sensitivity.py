"""How much a maze policy's chunk depends on each part of its observation.

    .venv/bin/python examples/maze_goal_sensitivity.py RUN [RUN ...] [--maze large]

For 8 windows (To = 2 observations) from each test-split episode of
``lnmdn/pointmaze-<maze>/expert-v0``, the policy's executed chunk (deterministic) is compared
with its chunk when one part of every window, the goal ``[4:6]``, the velocity ``[2:4]`` or the
position ``[0:2]``, is replaced by that part of another window (a fixed permutation). The mean
absolute change, in action units ([-1, 1] forces), says how much the policy reads that part:
a head that barely reacts to the goal cannot route to it (README, the long mazes' data).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from lnmdn_agents.checkpoint import load_policy
from lnmdn_agents.data.loading import load_episodes
from lnmdn_agents.data.splits import split_episodes

PARTS = {"goal": [4, 5], "velocity": [2, 3], "position": [0, 1]}


def test_windows(maze: str, per_episode: int = 8, seed: int = 0) -> np.ndarray:
    """(N, 2, 6) observation windows from the test split of the maze's expert-v0."""
    episodes = load_episodes(f"lnmdn/pointmaze-{maze}/expert-v0")
    rng = np.random.default_rng(seed)
    windows = []
    for i in split_episodes(len(episodes), seed)["test"]:
        obs = episodes[i].observations
        for t in rng.choice(len(obs) - 1, per_episode, replace=False):
            t = max(int(t), 1)
            windows.append(obs[t - 1 : t + 1])
    return np.stack(windows).astype(np.float32)


def sensitivity(policy, windows: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Mean |change| of the executed chunk when each part of the observation is swapped."""
    perm = np.random.default_rng(seed).permutation(len(windows))
    torch.manual_seed(seed)
    base = np.asarray(policy.predict(windows, deterministic=True)[0])
    out = {}
    for name, cols in PARTS.items():
        swapped = windows.copy()
        swapped[:, :, cols] = windows[perm][:, :, cols]
        chunk = np.asarray(policy.predict(swapped, deterministic=True)[0])
        out[name] = float(np.abs(chunk - base).mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="policy folders (a run, or RUN/best)")
    parser.add_argument("--maze", default="large", help="medium or large (default: large)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    windows = test_windows(args.maze)
    print(f"{len(windows)} windows; mean |change of the chunk| when swapping each part")
    for run in args.runs:
        with torch.no_grad():
            result = sensitivity(load_policy(run), windows)
        print(f"{run:60s} " + "  ".join(f"{k} {v:.3f}" for k, v in result.items()))


if __name__ == "__main__":
    main()
