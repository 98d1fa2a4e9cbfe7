"""Does the fast training path learn as well? Float32 batch 64 against bf16 and batch 256.

``benchmarks/train_speed.py`` times single optimiser steps; this script runs the real trainer
(``lnmdn_agents.training.train``) on the embedded Push-T data for a fixed number of epochs per
setting and seed, then reports, on the validation windows of the episode split:

* ``val/loss`` and ``val/nll`` (per action element, density heads) as the trainer logs them;
* best-of-10 MSE (normalised units) from :func:`lnmdn_agents.evaluation.offline.offline_metrics`;
* training samples/s of the whole loop (data path, optimiser, EMA included) and its ratio to
  the baseline row of the same policy.

Settings (rows): ``float32 b64`` (the trainer's earlier default: batch 64, lr 3e-4),
``bfloat16 b64`` (the precision alone), ``float32 b256`` (batch 256 with the learning rate scaled
by sqrt(4) = 2, as for Adam) and ``bfloat16 b256`` (both). A setting holds when its mean lies
within the baseline seeds' worst value plus their spread (or better); the verdict column says
which. Batch 256 takes a quarter of the optimiser steps per epoch, so at a fixed epoch count it is
judged on less training, not on the same.

    .venv/bin/python benchmarks/train_precision.py                       # 3 policies, 5 epochs
    .venv/bin/python benchmarks/train_precision.py --policies liquid_mdn --epochs 8 --json out.json
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from lnmdn_agents.checkpoint import load_policy
from lnmdn_agents.data import make_splits
from lnmdn_agents.evaluation.offline import offline_metrics, window_index
from lnmdn_agents.training import TrainConfig, train

DATASET = "lnmdn/pusht/expert-v0"
SETTINGS: dict[str, dict[str, Any]] = {
    "float32 b64": {"precision": "float32", "batch_size": 64, "lr": 3e-4},
    "bfloat16 b64": {"precision": "bfloat16", "batch_size": 64, "lr": 3e-4},
    "float32 b256": {"precision": "float32", "batch_size": 256, "lr": 6e-4},
    "bfloat16 b256": {"precision": "bfloat16", "batch_size": 256, "lr": 6e-4},
}
# Diffusion's default sampler is DDPM with 100 steps; ten DDIM steps keep best-of-10 affordable.
EVAL_OVERRIDES = {"diffusion": {"num_inference_steps": 10, "sampler": "ddim"}}


def run_one(policy: str, setting: str, seed: int, epochs: int, root: Path, windows: int) -> dict:
    """Train one (policy, setting, seed) and measure it on the validation windows."""
    config = TrainConfig(
        policy=policy,
        dataset=DATASET,
        epochs=epochs,
        seed=seed,
        num_threads=1,
        val_every=epochs,
        checkpoint_every=epochs,
        keep_checkpoints=1,
        output_dir=str(root),
        run_name=f"{policy}_{setting.replace(' ', '_')}_seed{seed}",
        progress=False,
        policy_overrides=EVAL_OVERRIDES.get(policy, {}),
        **SETTINGS[setting],
    )
    run_dir = train(config)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    last = records[-1]
    policy_obj = load_policy(run_dir)
    splits = make_splits(DATASET, policy_obj.config, seed=0)
    idx = window_index(len(splits.val), windows, seed=0)
    obs, act = splits.val.window_arrays(idx)
    offline = offline_metrics(policy_obj, obs, act, ks=(1, 10), seed=0)
    seconds = sum(r["charts/epoch_time_s"] for r in records)
    samples = sum(r["charts/samples_per_sec"] * r["charts/epoch_time_s"] for r in records)
    return {
        "policy": policy,
        "setting": setting,
        "seed": seed,
        "epochs": epochs,
        "val_loss": last.get("val/loss"),
        "val_nll": last.get("val/nll"),
        "best_of_10_mse": offline["best_of_k_mse"]["10"],
        "samples_per_s": samples / seconds,
        "train_minutes": seconds / 60,
    }


def verdict(rows: list[dict], base: list[dict], key: str) -> str:
    """'holds' when the setting's mean is within (or better than) the baseline seeds' range."""
    values = [r[key] for r in rows if r[key] is not None]
    ref = [r[key] for r in base if r[key] is not None]
    if not values or not ref:
        return "-"
    spread = max(ref) - min(ref)
    return "holds" if np.mean(values) <= max(ref) + spread else "worse"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policies", nargs="*", default=["liquid_mdn", "diffusion", "lwd"])
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--windows", type=int, default=256, help="validation windows measured")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for policy in args.policies:
            for setting in args.settings:
                for seed in args.seeds:
                    row = run_one(policy, setting, seed, args.epochs, Path(tmp), args.windows)
                    rows.append(row)
                    print(json.dumps(rows[-1]), flush=True)
                    if args.json:
                        args.json.parent.mkdir(parents=True, exist_ok=True)
                        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    head = f"{'policy':<11} {'setting':<14} {'seed':>4} {'val loss':>9} {'val nll':>8}"
    print(f"\n{head} {'bo10 mse':>9} {'samples/s':>9} {'x base':>7} {'verdict':>8}")
    for policy in args.policies:
        mine = [r for r in rows if r["policy"] == policy]
        base = [r for r in mine if r["setting"] == args.settings[0]]
        base_rate = np.mean([r["samples_per_s"] for r in base])
        for setting in args.settings:
            group = [r for r in mine if r["setting"] == setting]
            checks = {verdict(group, base, k) for k in ("val_nll", "best_of_10_mse")} - {"-"}
            label = "worse" if "worse" in checks else "holds"
            for r in group:
                nll = f"{r['val_nll']:.3f}" if r["val_nll"] is not None else "-"
                print(
                    f"{policy:<11} {setting:<14} {r['seed']:>4} {r['val_loss']:>9.4f} {nll:>8} "
                    f"{r['best_of_10_mse']:>9.4f} {r['samples_per_s']:>9.0f} "
                    f"{r['samples_per_s'] / base_rate:>7.2f} {label:>8}"
                )


if __name__ == "__main__":
    main()
