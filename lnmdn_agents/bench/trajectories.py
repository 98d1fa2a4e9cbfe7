"""The trajectory figure's data: sampled action chunks against the demonstration.

For a few evenly spaced test windows, a cell records the demonstrated chunk and K sampled chunks
(:func:`trajectory_samples`). Push-T and Can draw them in action space (the first two action
dimensions, :data:`ACTION_AXES`); PointMaze actions are forces, so each chunk is executed from the
window's state to draw the ball's path in the maze instead (:func:`maze_paths`).
:func:`cell_trajectories` picks the right form for the cell's env.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lnmdn_agents.bench.presets import BenchPreset
from lnmdn_agents.evaluation.seeds import fork_torch_rng

__all__ = ["ACTION_AXES", "cell_trajectories", "maze_paths", "trajectory_samples"]

#: What the first two action dimensions are, per env (an env's fact, whatever data a task
#: trains on), for the trajectory figure.
ACTION_AXES: dict[str, tuple[str, str]] = {
    "lnmdn/PushT-v0": ("agent target x (px)", "agent target y (px)"),
    "lnmdn/Can-v0": ("end-effector dx command", "end-effector dy command"),
    "": ("action dim 0", "action dim 1"),
}


def cell_trajectories(
    policy: Any, windows: Any, env_id: str, preset: BenchPreset, seed: int
) -> dict[str, Any]:
    """A cell's ``trajectories``: sampled chunks, with the maze paths or the axis labels.

    Args:
        policy: the cell's policy.
        windows: the test windows (``make_splits(...).test``).
        env_id: the env the policy was evaluated in: PointMaze gets :func:`maze_paths`, the others
            their :data:`ACTION_AXES` labels.
        preset: its ``trajectory_windows`` and ``trajectory_samples`` say how many.
        seed: seed of the sampling.

    Returns:
        :func:`trajectory_samples`' dict plus, for PointMaze, :func:`maze_paths`' keys, or else
        ``labels`` (the two action axes drawn).
    """
    traj = trajectory_samples(
        policy, windows, preset.trajectory_windows, preset.trajectory_samples, seed
    )
    if env_id.startswith("lnmdn/PointMaze"):
        traj.update(maze_paths(env_id, traj, policy.config.n_obs_steps))
    else:
        traj["labels"] = list(ACTION_AXES.get(env_id, ACTION_AXES[""]))
    return traj


def trajectory_samples(policy: Any, windows: Any, n: int, k: int, seed: int) -> dict[str, Any]:
    """Raw-unit demo chunks and k samples for n evenly spaced test windows."""
    idx = np.linspace(0, len(windows) - 1, num=min(n, len(windows))).round().astype(int)
    items = [windows[int(i)] for i in idx]
    obs = torch.stack([torch.as_tensor(it["obs"]) for it in items])
    demo = torch.stack([torch.as_tensor(it["action"]) for it in items])
    with fork_torch_rng(policy), torch.no_grad():
        torch.manual_seed(seed)
        policy.reset(None)
        samples = policy.sample_chunks(obs, k)
    return {
        "obs": obs.tolist(),
        "demo": demo.tolist(),
        "samples": samples.float().tolist(),
    }


def maze_paths(env_id: str, traj: dict[str, Any], n_obs_steps: int) -> dict[str, Any]:
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
