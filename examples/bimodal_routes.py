"""Which route does a policy take through the two-route maze? Counts left and right per episode.

``lnmdn/PointMaze-Bimodal-v0`` has two equally short routes from the start to the goal, around
either side of a central wall; its expert takes both (about half each). A policy that models the
demonstrations' modes should take both too, and one that averages them drives into the wall.
The route of an episode is the side of the wall (x < 0: left, x > 0: right) where the ball
crosses the wall's row (y = 0).

    RUN=runs/bench/results/runs/pointmaze-bimodal_liquid_mdn_frac1_seed0
    .venv/bin/python examples/bimodal_routes.py $RUN/best
    .venv/bin/python examples/bimodal_routes.py $RUN/best --episodes 100 --sample   # sampled
"""

from __future__ import annotations

import argparse
import json

import gymnasium as gym

import lnmdn_agents
import lnmdn_envs  # noqa: F401  (registers the lnmdn/* ids)


def route_counts(policy, n_episodes: int, deterministic: bool, seed: int = 100_000) -> dict:
    """Roll out ``n_episodes`` on test seeds; count successes and the side of each crossing."""
    c = policy.config
    env = gym.make(
        "lnmdn/PointMaze-Bimodal-v0", n_obs_steps=c.n_obs_steps, n_action_steps=c.n_action_steps
    )
    counts = {"left": 0, "right": 0, "none": 0, "success": 0}
    for i in range(n_episodes):
        obs, _ = env.reset(seed=seed + i)
        policy.reset()
        side, done, info = "none", False, {}
        while not done:
            actions, _ = policy.predict(obs, deterministic=deterministic)
            obs, _, terminated, truncated, info = env.step(actions)
            done = terminated or truncated
            x, y = obs[-1, 0], obs[-1, 1]
            if side == "none" and abs(y) < 0.25:  # in the wall's row
                side = "left" if x < 0 else "right"
        counts[side] += 1
        counts["success"] += int(bool(info.get("is_success")))
    env.close()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a run folder (or its best/ checkpoint)")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--sample", action="store_true", help="sampled, not deterministic, actions")
    args = parser.parse_args()
    policy = lnmdn_agents.load_policy(args.run)
    counts = route_counts(policy, args.episodes, deterministic=not args.sample)
    print(json.dumps({"run": args.run, "deterministic": not args.sample, **counts}))


if __name__ == "__main__":
    main()
