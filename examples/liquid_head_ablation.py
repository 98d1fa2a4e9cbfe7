"""The liquid head's ablation on the two-route maze: which setting makes it read its observation.

Trains each variant of the recurrent MDN heads (and diffusion, for reference) with the suite's
trainer at the same small widths, then measures on the held-out test windows and in closed loop:
the error of the chunk's first step (what only the observation can tell), the deterministic chunk
error, best-of-10, and success over 50 test episodes acting deterministically and sampling.
The table it prints is the one in ``lnmdn_agents/policies/liquid_mdn/modeling.py``.

    .venv/bin/python examples/liquid_head_ablation.py                 # every variant (~25 min)
    .venv/bin/python examples/liquid_head_ablation.py --only step-1e-3 chunk-0.1 --epochs 10
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from lnmdn_agents import load_policy
from lnmdn_agents.data import make_splits
from lnmdn_agents.evaluation.rollout import evaluate
from lnmdn_agents.training import TrainConfig, train

DATASET, ENV = "lnmdn/pointmaze-bimodal/expert-v0", "lnmdn/PointMaze-Bimodal-v0"
SMALL = {"d_model": 64, "n_layers": 1, "rnn_layers": 2, "rnn_hidden": 64, "decoder_hidden": 64,
         "action_embed_dim": 32}  # fmt: skip
CFC = {"cfc_backbone_units": 64}
VARIANTS: dict[str, tuple[str, dict]] = {
    "step-1e-3": ("liquid_mdn", {"mixture": "step", "min_std": 1e-3}),
    "step-1e-3-dropout": ("liquid_mdn", {"mixture": "step", "min_std": 1e-3,
                                         "prev_action_dropout": 0.5}),
    "step-0.03": ("liquid_mdn", {"mixture": "step", "min_std": 0.03}),
    "step-0.03-teacher-forcing": ("liquid_mdn", {"mixture": "step", "min_std": 0.03,
                                                 "free_running_max": 0.0}),
    "chunk-1e-3": ("liquid_mdn", {"mixture": "chunk", "min_std": 1e-3}),
    "chunk-0.03": ("liquid_mdn", {"mixture": "chunk", "min_std": 0.03}),
    "chunk-0.1": ("liquid_mdn", {"mixture": "chunk", "min_std": 0.1}),
    "lstm-step-1e-3": ("lstm_mdn", {"mixture": "step", "min_std": 1e-3}),
    "lstm-step-0.03": ("lstm_mdn", {"mixture": "step", "min_std": 0.03}),
    "gru-step-0.03": ("gru_mdn", {"mixture": "step", "min_std": 0.03}),
    "lstm-chunk-0.1": ("lstm_mdn", {"mixture": "chunk", "min_std": 0.1}),
    "gru-chunk-0.1": ("gru_mdn", {"mixture": "chunk", "min_std": 0.1}),
    "diffusion": ("diffusion", {"d_model": 64, "n_layers": 1, "down_dims": [24, 48, 48],
                                "num_inference_steps": 10, "sampler": "ddim"}),
}  # fmt: skip


def run_variant(name: str, epochs: int, episodes: int, out: Path) -> dict:
    policy_name, overrides = VARIANTS[name]
    if policy_name != "diffusion":
        overrides = {**SMALL, **(CFC if policy_name == "liquid_mdn" else {}), **overrides}
    cfg = TrainConfig(policy=policy_name, dataset=DATASET, epochs=epochs, batch_size=128,
                      lr=1e-3, warmup_epochs=0.5, num_threads=1, progress=False,
                      output_dir=str(out), run_name=name, policy_overrides=overrides)  # fmt: skip
    policy = load_policy(train(cfg, resume=(cfg.run_dir / "train_config.json").is_file()))
    policy.eval()
    test = make_splits(DATASET, policy.config, seed=0).test
    obs, act = test.window_arrays(np.arange(0, len(test), max(1, len(test) // 512)))
    obs_t, target = torch.from_numpy(obs), policy.normalizer.normalize_action(torch.from_numpy(act))
    with torch.no_grad():
        det = policy.normalizer.normalize_action(policy.predict_chunk(obs_t, deterministic=True))
        per_step = ((det - target) ** 2).mean(dim=(0, 2))
        torch.manual_seed(0)
        samples = policy.normalizer.normalize_action(policy.sample_chunks(obs_t, 10))
        best10 = ((samples - target[:, None]) ** 2).mean(dim=(2, 3)).min(1).values.mean()
    row = {"variant": name, "params": policy.num_parameters(), "step0_mse": float(per_step[0]),
           "chunk_mse": float(per_step.mean()), "best_of_10": float(best10)}  # fmt: skip
    for deterministic in (True, False):
        r = evaluate(policy, ENV, n_episodes=episodes, n_envs=10, progress=False,
                     deterministic=deterministic, vectorization_mode="sync")  # fmt: skip
        row["success_" + ("det" if deterministic else "sampled")] = r["success_rate"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(VARIANTS), default=None)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("runs/liquid_head_ablation"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'variant':<28}{'step-0 MSE':>11}{'chunk MSE':>10}{'best-of-10':>11}{'success':>15}")
    for name in args.only or list(VARIANTS):
        r = run_variant(name, args.epochs, args.episodes, args.out)
        print(f"{name:<28}{r['step0_mse']:>11.3f}{r['chunk_mse']:>10.3f}{r['best_of_10']:>11.3f}"
              f"{r['success_det']:>8.2f} / {r['success_sampled']:.2f}")  # fmt: skip
        with (args.out / "ablation.jsonl").open("a") as f:
            f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
