"""Expert episodes per second of a dataset build: one process against worker processes.

``lnmdn_datasets.recipes.build`` runs a recipe's episodes in ``workers`` processes (forkserver,
each with its own env and expert) and keeps them in seed order, so the dataset is the same for
any worker count (tests/datasets/test_recipes.py). This measures what the workers buy: the same
first ``--episodes`` successful episodes of one recipe (not written), built with 1 worker and
with each count of ``--workers``, alternating in ``--rounds`` rounds so that a change of machine
load hits every setting alike; the best round of each is kept. Worker start-up (a fresh
interpreter importing the env stack) is included, as a user's build pays it. Usage::

    .venv/bin/python benchmarks/dataset_build.py                       # Push-T v3, 40 episodes
    .venv/bin/python benchmarks/dataset_build.py --dataset lnmdn/can/expert-v0 --episodes 10
"""

from __future__ import annotations

import argparse
import os
import time

from lnmdn_datasets.recipes import build, build_workers


def seconds(dataset_id: str, episodes: int, workers: int) -> tuple[float, int]:
    """Wall seconds of building ``episodes`` successes with ``workers`` processes, and attempts."""
    start = time.perf_counter()
    report = build(dataset_id, n_episodes=episodes, write=False, progress=False, workers=workers)
    return time.perf_counter() - start, report.attempted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="lnmdn/pusht/expert-v3")
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=None,
        help="worker counts to compare with 1 (default: every core)",
    )
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    counts = [1, *(w for w in (args.workers or [build_workers()]) if w != 1)]
    best: dict[int, float] = {}
    attempts = 0
    for _ in range(args.rounds):
        for w in counts:
            s, attempts = seconds(args.dataset, args.episodes, w)
            best[w] = min(best.get(w, float("inf")), s)
    print(
        f"{args.dataset}: {args.episodes} kept episodes ({attempts} attempted), "
        f"best of {args.rounds} rounds, {os.cpu_count()} cores"
    )
    print(f"{'workers':>8}  {'seconds':>8}  {'episodes/s':>10}  {'vs 1 worker':>11}")
    for w in counts:
        print(
            f"{w:>8}  {best[w]:>8.1f}  {args.episodes / best[w]:>10.2f}  "
            f"{best[1] / best[w]:>10.2f}x"
        )


if __name__ == "__main__":
    main()
