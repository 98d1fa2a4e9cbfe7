"""How trained Can runs fail in closed loop: each failed episode sorted into the stage it broke at.

    .venv/bin/python examples/can_failures.py RUN[/best] ... [--episodes 60] [--ta 8]
    .venv/bin/python examples/can_failures.py --demonstrations lnmdn/can/expert-v0 ...

Can is a sequence: reach the can, close the gripper on it, lift it, carry it to its bin
compartment, let go. A success rate says how often the whole sequence worked; this script says
where the rest broke. It runs each run's policy as its closed-loop validation does (its env,
``eval_deterministic``, ``n_action_steps`` unless ``--ta`` sets another) on the validation
starts (seeds 50000+, never the test seeds 100000+), records every simulator step's can and
gripper positions, and sorts each failure by the furthest stage it reached (a can that rose
was reached and grasped, even if off-centre):

* ``missed``: the can never rose and the gripper never came within ``--reach`` metres (default
  0.02) of its centre: it closed off the can or never closed (the approach failed; the expert's
  grasp holds the can's centre 1.0-1.6 cm from the end-effector site);
* ``not closed``: it came that close but its fingers never closed there (their opening stayed
  above ``OPEN_GRIP``, 6.5 cm: open is 7.8 cm, closed on the can 4.9 cm);
* ``not lifted``: it closed at the can but the can never rose ``--lift`` metres (default 0.03)
  above where it started (a grasp that did not hold, or fingers closed beside the can);
* ``dropped``: the can rose but ended the episode more than ``HELD_GAP`` (3 cm) from the
  gripper, outside its compartment;
* ``held``: the can rose and was still in the gripper when the time ran out (carried and not
  placed).

It prints a count per kind and run, then one line per failed episode (seed, where the can
started, the closest approach, the narrowest finger opening there, the highest lift, the can's
final distance from the gripper). What it reads from the observation: the can's position
(``obs[0:3]``) and the end effector's (``obs[14:17]``), both in the world frame, and the finger
joints (``obs[21:23]``). ``--demonstrations`` reads the grasp off a dataset's labels instead: on
the steps where the gripper is at the can with open fingers, how often and how soon the expert's
label closes it (a policy that hovers there, ``not closed``, may have learned labels that wait).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from lnmdn_agents.checkpoint import load_policy
from lnmdn_agents.data import Episode, load_episodes
from lnmdn_agents.evaluation.run_folders import run_train_config
from lnmdn_agents.training.config import VALIDATION_SEED_BASE
from lnmdn_agents.training.validation import closed_loop_env
from lnmdn_envs.can_observation import CAN_OBS_SLICES
from lnmdn_envs.registration import evaluation_kwargs, make_task_env
from lnmdn_envs.wrappers import MultiStep

KINDS = ("success", "missed", "not closed", "not lifted", "dropped", "held")
#: Farthest the can's centre is from the end-effector site while held (m); the expert's grasps
#: hold it at 1.0-1.6 cm, and it opens to 5-6 cm when it lets go.
HELD_GAP = 0.03
#: Finger opening (m, the two finger joints' difference) below which the gripper counts as
#: closed: 7.8 cm open, 4.9 cm closed on the can, near 0 closed on nothing.
OPEN_GRIP = 0.065


class _Trace(gym.Wrapper[Any, Any, Any, Any]):
    """Keeps every single step's observation (the reset's included)."""

    def __init__(self, env: gym.Env[Any, Any]):
        super().__init__(env)
        self.observations: list[np.ndarray] = []

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self.observations = [np.asarray(obs, dtype=np.float64)]
        return obs, info

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.observations.append(np.asarray(obs, dtype=np.float64))
        return obs, reward, terminated, truncated, info


def _geometry(observations: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Can positions (T, 3), can-to-end-effector distances (T,), finger openings (T,)."""
    can = observations[:, CAN_OBS_SLICES["Can_pos"]]
    eef = observations[:, CAN_OBS_SLICES["robot0_eef_pos"]]
    fingers = observations[:, CAN_OBS_SLICES["robot0_gripper_qpos"]]
    return can, np.linalg.norm(can - eef, axis=1), fingers[:, 0] - fingers[:, 1]


def classify(
    success: bool, observations: np.ndarray, reach: float = 0.02, lift: float = 0.03
) -> tuple[str, dict[str, float]]:
    """The episode's kind (one of ``KINDS``) and the figures it was decided by.

    Args:
        success: the env's ``is_success`` at some step.
        observations: (T + 1, 23) Can observations, the reset's first.
        reach: closest approach of the end effector to the can's centre (m) that counts as
            reaching it.
        lift: rise of the can above where it started (m) that counts as lifting it.
    """
    can, gap, opening = _geometry(observations)
    at_can = gap <= reach
    figures = {
        "closest": float(gap.min()),
        "grip": float(opening[at_can].min()) if at_can.any() else float("nan"),
        "lift": float((can[:, 2] - can[0, 2]).max()),
        "final_gap": float(gap[-1]),
        "start_x": float(can[0, 0]),
        "start_y": float(can[0, 1]),
    }
    if success:
        return "success", figures
    if figures["lift"] >= lift:  # lifted, even if held off-centre: the carry or the release failed
        return ("dropped" if figures["final_gap"] > HELD_GAP else "held"), figures
    if figures["closest"] > reach:
        return "missed", figures
    if figures["grip"] > OPEN_GRIP:
        return "not closed", figures
    return "not lifted", figures


def diagnose(
    run: Path, episodes: int, ta: int | None, reach: float, lift: float
) -> list[tuple[int, str, dict[str, float]]]:
    """(seed, kind, figures) for ``episodes`` validation starts of ``run``."""
    try:
        config = run_train_config(run)
    except FileNotFoundError as err:
        raise SystemExit(str(err)) from None
    found = closed_loop_env(dataclasses.replace(config, eval_episodes=episodes))
    if found is None:
        raise SystemExit(f"{run}: its training config has no closed-loop env")
    env_id, env_kwargs = found
    if not env_id.startswith("lnmdn/Can"):
        raise SystemExit(f"{run}: trained for {env_id}; this diagnosis reads Can's observation")
    policy = load_policy(run)
    if ta is not None:
        policy.config = dataclasses.replace(policy.config, n_action_steps=ta)
    policy.eval()
    cfg = policy.config
    traced = _Trace(make_task_env(env_id, **{**evaluation_kwargs(env_id), **env_kwargs}))
    env = MultiStep(traced, cfg.n_obs_steps, cfg.n_action_steps)
    torch.manual_seed(config.seed)
    out = []
    try:
        for seed in range(VALIDATION_SEED_BASE, VALIDATION_SEED_BASE + episodes):
            obs, _ = env.reset(seed=seed)
            policy.reset(None)
            success, done = False, False
            while not done:
                with torch.no_grad():
                    chunk, _ = policy.predict(obs[None], deterministic=config.eval_deterministic)
                obs, _, terminated, truncated, info = env.step(np.asarray(chunk)[0])
                success = success or bool(info.get("is_success", False))
                done = terminated or truncated
            kind, figures = classify(success, np.stack(traced.observations), reach, lift)
            out.append((seed, kind, figures))
    finally:
        env.close()
    return out


def grasp_timing(episodes: Iterable[Episode], reach: float = 0.02) -> dict[str, float]:
    """How Can demonstrations' labels close the gripper once it is at the can.

    Over the steps where the end effector is within ``reach`` of the can's centre, the fingers
    are open and the can has not risen (1 cm): how many there are, the share whose label closes
    the gripper, and per episode the steps from first being there to the first closing label.
    """
    at_can_steps, closing, waits = 0, 0, []
    for ep in episodes:  # actions: the labels training reads
        can, gap, opening = _geometry(ep.observations[:-1].astype(np.float64))
        waiting = (gap <= reach) & (can[:, 2] - can[0, 2] < 0.01) & (opening > OPEN_GRIP)
        closes = waiting & (ep.actions[:, 6] > 0)
        at_can_steps += int(waiting.sum())
        closing += int(closes.sum())
        if waiting.any():
            first_close = np.flatnonzero(closes)
            waits.append(
                first_close[0] - np.flatnonzero(waiting)[0] if len(first_close) else np.nan
            )
    w = np.asarray(waits, dtype=float)
    return {
        "steps": at_can_steps,
        "closing_share": closing / max(at_can_steps, 1),
        "median_wait": float(np.nanmedian(w)) if np.isfinite(w).any() else float("nan"),
        "never_closed": int(np.isnan(w).sum()),
        "episodes": len(w),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path, help="run folders or their best/")
    parser.add_argument(
        "--demonstrations",
        nargs="+",
        default=[],
        metavar="ID",
        help="Can dataset ids: how their labels time the grasp once the gripper is at the can",
    )
    parser.add_argument("--episodes", type=int, default=60, help="validation starts per run")
    parser.add_argument("--ta", type=int, default=None, help="action horizon (default: the run's)")
    parser.add_argument("--reach", type=float, default=0.02, help="closest approach, m")
    parser.add_argument("--lift", type=float, default=0.03, help="lift above the start, m")
    args = parser.parse_args()
    if args.episodes < 1:
        raise SystemExit(f"--episodes must be >= 1, got {args.episodes}")
    if not args.runs and not args.demonstrations:
        raise SystemExit("name at least one run folder, or --demonstrations ID ...")
    torch.set_num_threads(1)
    for dataset_id in args.demonstrations:
        t = grasp_timing(load_episodes(dataset_id), args.reach)
        print(
            f"{dataset_id}: {t['steps']} steps at the can with open fingers, "
            f"{t['closing_share']:.2f} of them labelled close; from first there to the first "
            f"close label: median {t['median_wait']:.0f} steps; never closed there in "
            f"{t['never_closed']} of {t['episodes']} episodes"
        )
    if not args.runs:
        return
    results = {
        run: diagnose(run, args.episodes, args.ta, args.reach, args.lift) for run in args.runs
    }
    print(f"{'run':48s} " + " ".join(f"{k:>10s}" for k in KINDS))
    for run, episodes in results.items():
        counts = [sum(kind == k for _, kind, _ in episodes) for k in KINDS]
        print(f"{str(run)[-48:]:48s} " + " ".join(f"{c:10d}" for c in counts))
    for run, episodes in results.items():
        print(f"\n{run}: failed episodes")
        print("  seed   kind        can start x, y   closest m  grip m  lift m  final gap m")
        for seed, kind, f in episodes:
            if kind != "success":
                print(
                    f"  {seed:5d}  {kind:10s}  {f['start_x']:+.3f}, {f['start_y']:+.3f}"
                    f"   {f['closest']:.3f}      {f['grip']:.3f}   {f['lift']:.3f}"
                    f"   {f['final_gap']:.3f}"
                )


if __name__ == "__main__":
    main()
