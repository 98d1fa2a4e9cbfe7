"""LWD speed: what the Latent Weight Diffusion paper measures, against ``diffusion``.

Policy size, per-step and per-replan latency, and diffusion queries per episode, with the
``diffusion`` policy measured in the same run.

On Push-T dimensions (Do=5, Da=2, To=2, T=16) at default sizes, batch 1:

* parameters: LWD's generated (inference-time) policy, LWD's whole model (encoder, hypernetwork,
  denoiser, backbone), and Diffusion Policy's network;
* per-replan latency: ``predict`` right after ``reset`` (one diffusion query: backbone, DDIM
  denoising of the latent, hypernetwork decoding, one action), via
  ``lnmdn_agents.evaluation.latency.policy_latency`` as the other policies are timed;
* per-step latency: ``predict`` with decoded weights in hand (the small MLP on the newest
  observation: what runs at every env step between replans);
* mean latency per env step over an episode and diffusion queries per 300-step Push-T episode,
  counted by running ``predict`` 300 times (LWD with ``n_action_steps=1`` and ``replan_every`` R;
  ``diffusion`` with its Ta=8 chunks: one query per chunk).

    .venv/bin/python benchmarks/lwd_speed.py                  # 1 thread, replan_every 8 16 32 64
    .venv/bin/python benchmarks/lwd_speed.py --calls 200 --json results/lwd_speed.json

Absolute times depend on the machine and its load; read the ratios.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lnmdn_agents.evaluation.latency import measure_latency, policy_latency
from lnmdn_agents.policies import make_policy

PUSHT = {"obs_dim": 5, "action_dim": 2}
EPISODE_STEPS = 300  # Push-T's time limit
DIFFUSION_ROWS = {
    "diffusion ddpm-50": {"sampler": "ddpm", "num_inference_steps": 50},
    "diffusion ddim-10": {"sampler": "ddim", "num_inference_steps": 10},
}


def _obs(policy: Any, seed: int = 0) -> np.ndarray:
    """One raw observation window (1, To, Do) inside the normaliser's range."""
    c = policy.config
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, c.n_obs_steps, c.obs_dim, generator=g) * 2 - 1
    lo, hi = policy.normalizer.obs_min, policy.normalizer.obs_max
    return ((x + 1) * 0.5 * (hi - lo) + lo).numpy()


def queries_per_episode(policy: Any, steps: int = EPISODE_STEPS) -> int:
    """Diffusion queries in one episode of ``steps`` env steps, counted through ``predict``."""
    obs = _obs(policy)
    policy.reset(None)
    taken, calls = 0, 0
    before = getattr(policy, "diffusion_queries", None)
    with torch.no_grad():
        while taken < steps:
            policy.predict(obs)
            taken += policy.config.n_action_steps
            calls += 1
    if before is None:  # chunked policies: one denoising per predict call
        return calls
    return int(policy.diffusion_queries - before)


def lwd_rows(replans: list[int], calls: int) -> list[dict[str, Any]]:
    rows = []
    for r in replans:
        torch.manual_seed(0)
        policy = make_policy("lwd", **PUSHT, replan_every=r).eval()
        per_replan = policy_latency(policy, n_calls=calls, warmup=5)["end_to_end_ms"]
        obs = _obs(policy)
        policy.reset(None)
        with torch.no_grad():
            policy.predict(obs)  # decode once; the timed calls below never replan
            policy.config.replan_every = 10**9
            step = lambda p=policy, o=obs: p.predict(o)  # noqa: E731
            per_step = measure_latency(step, calls, 5)["median_ms"]
            policy.config.replan_every = r
        q = queries_per_episode(policy)
        mean_step = (q * per_replan + (EPISODE_STEPS - q) * per_step) / EPISODE_STEPS
        rows.append(
            {
                "row": f"lwd replan-{r}",
                "replan_every": r,
                "parameters_total": policy.num_parameters(),
                "parameters_inference_policy": policy.generated_policy_parameters(),
                "per_replan_ms": per_replan,
                "per_step_ms": per_step,
                "mean_ms_per_env_step": mean_step,
                "queries_per_episode": q,
            }
        )
        logging.info("%s: %s", rows[-1]["row"], rows[-1])
    return rows


def diffusion_rows(calls: int) -> list[dict[str, Any]]:
    rows = []
    for label, overrides in DIFFUSION_ROWS.items():
        torch.manual_seed(0)
        policy = make_policy("diffusion", **PUSHT, **overrides).eval()
        per_chunk = policy_latency(policy, n_calls=calls, warmup=5)["end_to_end_ms"]
        q = queries_per_episode(policy)
        rows.append(
            {
                "row": label,
                "replan_every": policy.config.n_action_steps,
                "parameters_total": policy.num_parameters(),
                "parameters_inference_policy": policy.num_parameters(),
                "per_replan_ms": per_chunk,
                "per_step_ms": 0.0,  # executing a stored chunk costs nothing
                "mean_ms_per_env_step": q * per_chunk / EPISODE_STEPS,
                "queries_per_episode": q,
            }
        )
        logging.info("%s: %s", label, rows[-1])
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    ref = {r["row"]: r for r in rows}
    dp = ref["diffusion ddim-10"]
    lines = [
        "| row | replan every | inference policy params | x smaller than DP | per-replan ms "
        "| per-step ms | mean ms / env step | x vs DDIM-10 | diffusion queries / episode |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        smaller = dp["parameters_inference_policy"] / r["parameters_inference_policy"]
        speed = dp["mean_ms_per_env_step"] / r["mean_ms_per_env_step"]
        lines.append(
            f"| {r['row']} | {r['replan_every']} | {r['parameters_inference_policy']:,}"
            f" | {smaller:.0f} | {r['per_replan_ms']:.2f} | {r['per_step_ms']:.3f}"
            f" | {r['mean_ms_per_env_step']:.3f} | {speed:.1f} | {r['queries_per_episode']} |"
        )
    lwd_total = next(r for r in rows if r["row"].startswith("lwd"))["parameters_total"]
    lines.append(
        f"\nLWD's whole model (encoder, hypernetwork, denoiser, backbone): {lwd_total:,} "
        f"parameters; DP's network: {dp['parameters_total']:,}."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replan-every", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--calls", type=int, default=100, help="timed calls per latency median")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: least noise)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args()
    if args.calls < 1 or min(args.replan_every) < 1:
        parser.error(f"need --calls >= 1 and --replan-every >= 1, got {args.calls}, "
                     f"{args.replan_every}")  # fmt: skip
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    rows = diffusion_rows(args.calls) + lwd_rows(args.replan_every, args.calls)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch 1, median of {args.calls} "
          f"calls; {EPISODE_STEPS}-step Push-T episode\n")  # fmt: skip
    print(table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
