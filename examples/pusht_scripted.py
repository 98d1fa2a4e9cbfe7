"""Run one real Push-T episode with the scripted expert and save it as a GIF.

    .venv/bin/python examples/pusht_scripted.py            # seed 0, writes pusht_expert.gif
    .venv/bin/python examples/pusht_scripted.py --seed 100000 --legacy-seeding --out ep.gif

The expert (lnmdn_datasets.experts.pusht.PushTExpert) plans pushes in a scratch copy of the
simulator; the episode itself runs on the single-step task env that ``gym.make("lnmdn/PushT-v0")``
wraps. Copy this file and replace ``expert.act`` with your own policy to watch it instead.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import imageio.v2 as imageio
import numpy as np

import lnmdn_envs
from lnmdn_datasets.experts.pusht import PushTExpert


def main() -> None:
    parser = argparse.ArgumentParser(description="One Push-T episode with the scripted expert.")
    parser.add_argument("--seed", type=int, default=0, help="episode seed")
    parser.add_argument("--legacy-seeding", action="store_true", help="Diffusion Policy's starts")
    parser.add_argument("--out", type=Path, default=Path("pusht_expert.gif"), help="GIF path")
    parser.add_argument("--size", type=int, default=256, help="frame side in pixels")
    args = parser.parse_args()

    env = lnmdn_envs.make_task_env(
        "lnmdn/PushT-v0",
        render_mode="rgb_array",
        render_size=args.size,
        legacy_seeding=args.legacy_seeding,
    )
    expert = PushTExpert()
    obs, info = env.reset(seed=args.seed)
    expert.reset(env, np.random.default_rng(args.seed))

    frames = [env.render()]
    start = time.perf_counter()
    best_score, steps = info["score"], 0
    while True:
        obs, reward, terminated, truncated, info = env.step(expert.act(env, obs))
        frames.append(env.render())
        best_score = max(best_score, float(reward))
        steps += 1
        if terminated or truncated:
            break
    seconds = time.perf_counter() - start

    args.out.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimsave(args.out, frames, duration=0.1, loop=0)  # 10 Hz, the control rate
    summary = {
        "seed": args.seed,
        "success": bool(info["is_success"]),
        "steps": steps,
        "final_coverage": round(float(info["coverage"]), 4),
        "max_score": round(best_score, 4),
        "seconds": round(seconds, 2),
        "gif": str(args.out),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
