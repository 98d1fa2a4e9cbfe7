"""Closed-loop success of trained runs at several action horizons Ta, on the validation seeds.

    .venv/bin/python examples/action_horizon.py RUN[/best] ... --ta 4,6,8 --episodes 400

A policy predicts a chunk of T = 16 actions and the env executes Ta of them before the policy
sees a new observation (``n_action_steps``; Diffusion Policy executes 8). Ta is a setting of
acting, so one set of weights can be tried at several: this script loads each run, sets its
config's ``n_action_steps`` to each Ta, and runs the closed-loop validation the run was
selected with (its env, its ``eval_deterministic``, its sampling seed), on ``--episodes``
validation starts (seeds 50000+, never the test seeds 100000+), so choosing Ta by what it
prints leaks nothing from the test. Training also reads Ta (the windows at an episode's end
overhang it by ``Ta - 1``, Diffusion Policy's ``pad_after``), so a recipe that changes it is
retrained, not relabelled.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from lnmdn_agents.checkpoint import load_policy
from lnmdn_agents.evaluation.run_folders import run_train_config
from lnmdn_agents.training.validation import closed_loop_env, validate_closed_loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders or their best/")
    parser.add_argument("--ta", default="4,8", help="comma-separated action horizons")
    parser.add_argument("--episodes", type=int, default=100, help="validation episodes per Ta")
    args = parser.parse_args()
    horizons = [int(x) for x in args.ta.split(",")]
    torch.set_num_threads(1)
    print(f"{'run':48s} {'Ta':>3s}  success  score  length")
    for run in args.runs:
        try:
            config = dataclasses.replace(run_train_config(run), eval_episodes=args.episodes)
        except FileNotFoundError as err:
            raise SystemExit(str(err)) from None
        env = closed_loop_env(config)
        if env is None:
            raise SystemExit(f"{run}: its training config has no closed-loop env")
        for ta in horizons:
            policy = load_policy(run)
            policy.config = dataclasses.replace(policy.config, n_action_steps=ta)
            m = validate_closed_loop(policy, config, env)
            print(
                f"{str(run)[-48:]:48s} {ta:3d}  {m['eval/success_rate']:7.2f}  "
                f"{m['eval/mean_score']:5.3f}  {m['eval/mean_length']:6.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
