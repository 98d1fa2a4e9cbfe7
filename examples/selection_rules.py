"""Which checkpoint each selection rule keeps, replayed on finished runs' validation logs.

    .venv/bin/python examples/selection_rules.py runs/*/

For each run folder: the closed-loop validation scores logged in ``metrics.jsonl``, the last
validated epoch, and the epoch ``TrainConfig.selection`` keeps under ``"best"`` (the highest
score, the earliest of ties) and ``"latest_within_se"`` (the latest within one standard error of
the highest). Nothing is loaded but the logs, so it also works on runs whose epoch checkpoints
are gone; to test a pick, evaluate ``RUN/best`` (when the run used that rule) or the run itself
(its last weights) with ``lnmdn eval``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lnmdn_agents.evaluation.run_folders import read_metrics, read_train_config
from lnmdn_agents.training.config import SELECTIONS
from lnmdn_agents.training.validation import selected_epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (with metrics.jsonl)")
    args = parser.parse_args()
    header = f"{'run':40s} {'evals':>5s} {'last':>5s} " + " ".join(f"{s:>16s}" for s in SELECTIONS)
    print(header)
    for run in args.runs:
        records = read_metrics(run)
        if not records:
            print(f"{run.name:40s} no metrics.jsonl")
            continue
        evals = [r for r in records if "eval/mean_score" in r]
        if not evals:
            print(f"{run.name:40s} no closed-loop validation (eval_every 0)")
            continue
        episodes = read_train_config(run).get("eval_episodes", 20)
        picks = [selected_epoch(evals, s, episodes) for s in SELECTIONS]
        last = int(evals[-1]["epoch"]) + 1
        cells = " ".join(f"{p:>16d}" for p in picks if p is not None)
        scores = " ".join(f"{r['eval/mean_score']:.2f}" for r in evals)
        print(f"{run.name:40s} {len(evals):5d} {last:5d} {cells}   {scores}")


if __name__ == "__main__":
    main()
