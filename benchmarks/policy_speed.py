"""Policy speed at default size: parameters, training samples/s, batch-1 latency per chunk.

Every registered policy (``available_policies()``) gets a row at its default config on Push-T
dimensions (Do=5, Da=2, To=2, T=16, Ta=8); ``VARIANTS`` adds rows for sampler settings. Latency is
the median of ``--calls`` calls (>= 100 by default) of ``policy.predict`` on one observation
window, end to end and head alone (the backbone's output cached with
``lnmdn_agents.evaluation.latency.cached_backbone``), as ``policy_latency`` there does, but
interleaved: each of ``--rounds`` rounds times a share of every row's calls, so a change of machine
load hits all rows alike. Speeds are printed as ratios against ``diffusion`` at 50 DDPM steps and
at 10 DDIM steps measured in the same run, since absolute times depend on the machine and its load.

    .venv/bin/python benchmarks/policy_speed.py                     # all policies, 1 thread
    .venv/bin/python benchmarks/policy_speed.py --policies liquid_mdn diffusion --calls 200
    .venv/bin/python benchmarks/policy_speed.py --json results/policy_speed.json

Adding a policy needs nothing here (it is picked up from the registry); a policy with several
inference settings adds an entry to ``VARIANTS``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lnmdn_agents.evaluation.latency import cached_backbone
from lnmdn_agents.policies import TrainingHooks, available_policies, make_policy

PUSHT = {"obs_dim": 5, "action_dim": 2}
REFERENCES = ("diffusion ddpm-50", "diffusion ddim-10")

#: policy name -> [(row label, config overrides)]; a policy not listed gets one default row.
VARIANTS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "diffusion": [
        ("diffusion ddpm-50", {"sampler": "ddpm", "num_inference_steps": 50}),
        ("diffusion ddim-10", {"sampler": "ddim", "num_inference_steps": 10}),
    ],
}


def rows(policies: list[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, policy name, overrides) for every row to measure."""
    out = []
    for name in policies:
        for label, overrides in VARIANTS.get(name, [(name, {})]):
            out.append((label, name, overrides))
    return out


def _raw_obs(policy: Any, seed: int = 0) -> torch.Tensor:
    """One observation window (1, To, Do) in raw units, uniform over the normaliser's range."""
    c = policy.config
    g = torch.Generator().manual_seed(seed)
    obs_n = torch.rand(1, c.n_obs_steps, c.obs_dim, generator=g) * 2 - 1
    lo, hi = policy.normalizer.obs_min, policy.normalizer.obs_max
    return (obs_n + 1) * 0.5 * (hi - lo) + lo


def _time_calls(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def _train_step_fn(policy: Any, batch_size: int) -> Callable[[], Any]:
    """One training step (loss, backward, AdamW) on random normalised-range data."""
    c = policy.config
    if isinstance(policy, TrainingHooks):  # mid-run: the MDN heads mix teacher-forced and
        policy.on_epoch_start(1, 2)  # free-running decoding
    batch = {
        "obs": torch.rand(batch_size, len(c.observation_delta_indices), c.obs_dim) * 2 - 1,
        "action": torch.rand(batch_size, c.horizon, c.action_dim) * 2 - 1,
    }
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-4)

    def step() -> None:
        policy.train()
        loss, _ = policy.compute_loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        policy.eval()

    return step


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Measure every row, interleaved.

    Each round times a share of every row's calls in turn, so a change of machine load during the
    run hits all rows alike.
    """
    table_rows = rows(args.policies)
    policies, results = [], []
    for label, name, overrides in table_rows:
        torch.manual_seed(0)
        policy = make_policy(name, **PUSHT, **overrides).eval()
        policies.append(policy)
        results.append(
            {"row": label, "policy": name, "overrides": overrides,
             "parameters": policy.num_parameters()}
        )  # fmt: skip
    rounds = max(1, args.rounds)
    per_round = -(-args.calls // rounds)
    train_per_round = -(-args.train_steps // rounds) if args.train_steps > 0 else 0
    # Training speed does not depend on the sampler: one measurement per policy name.
    first_row_of = {}
    for i, (_, name, _) in enumerate(table_rows):
        first_row_of.setdefault(name, i)
    train_fns = {
        name: _train_step_fn(policies[i], args.batch_size) for name, i in first_row_of.items()
    }
    e2e: list[list[float]] = [[] for _ in policies]
    head: list[list[float]] = [[] for _ in policies]
    train_ms: dict[str, list[float]] = {name: [] for name in train_fns}
    with torch.no_grad():
        for policy in policies:  # warm-up
            obs_np = _raw_obs(policy).numpy()
            for _ in range(3):
                policy.predict(obs_np)
    for r in range(rounds):
        for i, policy in enumerate(policies):
            obs = _raw_obs(policy)
            obs_np = obs.numpy()

            def call(p: Any = policy, o: Any = obs_np) -> Any:
                p.reset(None)
                return p.predict(o)

            with torch.no_grad():
                e2e[i] += _time_calls(call, per_round)
                with cached_backbone(policy, obs) as has_backbone:
                    if has_backbone:
                        head[i] += _time_calls(call, per_round)
        for name, fn in train_fns.items():
            if train_per_round:
                fn()  # untimed: first step of the round
                train_ms[name] += _time_calls(fn, train_per_round)
        logging.info("round %d/%d done", r + 1, rounds)
    for i, row in enumerate(results):
        row["end_to_end_ms"] = statistics.median(e2e[i])
        row["head_ms"] = statistics.median(head[i]) if head[i] else None
        row["n_calls"] = len(e2e[i])
        if train_ms.get(row["policy"]):
            row["train_samples_per_s"] = args.batch_size / (
                statistics.median(train_ms[row["policy"]]) / 1000.0
            )
    by_label = {r["row"]: r for r in results}
    for r in results:
        for ref in REFERENCES:
            if ref in by_label:
                for kind in ("end_to_end_ms", "head_ms"):
                    mine, theirs = r[kind], by_label[ref][kind]
                    key = f"speedup_vs_{ref.split()[1]}_{kind.removesuffix('_ms')}"
                    r[key] = theirs / mine if mine and theirs else None
    return results


def table(results: list[dict[str, Any]]) -> str:
    def fmt(x: Any, spec: str) -> str:
        return "-" if x is None else format(x, spec)

    lines = [
        "| policy | parameters | train samples/s | end to end ms | head ms "
        "| x vs DDPM-50 (e2e / head) | x vs DDIM-10 (e2e / head) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['row']} | {r['parameters'] / 1e6:.2f}M"
            f" | {fmt(r.get('train_samples_per_s'), '.0f')}"
            f" | {fmt(r['end_to_end_ms'], '.2f')} | {fmt(r['head_ms'], '.2f')}"
            f" | {fmt(r.get('speedup_vs_ddpm-50_end_to_end'), '.1f')} / "
            f"{fmt(r.get('speedup_vs_ddpm-50_head'), '.1f')}"
            f" | {fmt(r.get('speedup_vs_ddim-10_end_to_end'), '.1f')} / "
            f"{fmt(r.get('speedup_vs_ddim-10_head'), '.1f')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policies", nargs="+", default=available_policies())
    parser.add_argument("--calls", type=int, default=100, help="timed calls per latency median")
    parser.add_argument("--train-steps", type=int, default=10, help="timed training steps")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved measurement rounds")
    parser.add_argument("--batch-size", type=int, default=64, help="training batch size")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: least noise)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    if args.calls < 1 or args.train_steps < 0:
        parser.error(
            f"need --calls >= 1 and --train-steps >= 0, got {args.calls}, {args.train_steps}"
        )
    results = measure(args)
    text = table(results)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch 1 latency, median of "
          f"{args.calls} calls; training batch {args.batch_size}\n")  # fmt: skip
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"threads": args.threads, "rows": results}, indent=2))


if __name__ == "__main__":
    main()
