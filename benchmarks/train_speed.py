"""Training throughput: samples/s of one optimiser step per policy, today's loop against candidates.

Every registered policy at its default (paper-scale) config on Push-T dimensions (Do=5, Da=2,
To=2, T=16) trains on real windows of the embedded Push-T data. For each policy the rows are:

* ``baseline``: what the loop did before this benchmark existed: batch 64, float32, 1 thread
  (for the recurrent MDN heads, also their previous default ``mixture="step"`` decoder);
* ``bf16``: the same under ``torch.autocast("cpu", dtype=torch.bfloat16)`` (AMX on this CPU);
* ``threads=2``: two intra-op threads;
* ``batch=256``: a 4x larger batch (the learning rate would scale with it);
* ``batch=256 threads=2`` and ``batch=256 bf16``: the combinations;
* ``compile``: ``torch.compile`` of the loss at batch 256 (compile time excluded, reported apart);
* with ``--device cuda``, the GPU rows instead of the CPU candidates: batches of 64, 256 and
  1024 in float32 and in bfloat16 autocast, the windows kept on the GPU; the ratios are still
  against the CPU baseline, measured in the same run on that machine's CPU.

Rows of one policy are timed in interleaved rounds (each round times a few steps of every row), so
a change of machine load hits all rows alike; the best round of each row is kept. Results are
ratios against the policy's baseline measured in the same run, plus the seconds a 120-epoch Push-T
run would need at that speed (20,479 training windows per epoch).

    .venv/bin/python benchmarks/train_speed.py                          # every policy
    .venv/bin/python benchmarks/train_speed.py --policies liquid_mdn diffusion --rounds 5
    .venv/bin/python benchmarks/train_speed.py --no-compile --json results/train_speed.json
    python benchmarks/train_speed.py --device cuda --no-compile     # a GPU machine's rows too
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lnmdn_agents.data import make_splits
from lnmdn_agents.evaluation.latency import torch_threads
from lnmdn_agents.policies import TrainingHooks, available_policies, make_policy
from lnmdn_agents.training.config import native_bfloat16

PUSHT = "lnmdn/pusht/expert-v0"
TRAIN_WINDOWS = 20_479  # Push-T training windows (140 episodes, To=2, T=16, Ta=8)


def candidates(
    name: str, use_compile: bool, device: str = "cpu"
) -> list[tuple[str, dict[str, Any]]]:
    """(label, settings) of one policy's rows: batch, threads, bf16, compile, overrides, device."""
    base = {
        "batch": 64,
        "threads": 1,
        "bf16": False,
        "compile": False,
        "overrides": {},
        "device": "cpu",
    }
    rows = []
    if name.endswith("_mdn"):
        rows.append(("baseline (step decoder)", {**base, "overrides": {"mixture": "step"}}))
        rows.append(("chunk head", base))
    else:
        rows.append(("baseline", base))
    head = rows[-1][1]
    if device != "cpu":  # a GPU run: today's CPU loop (the ratios' base), then the GPU rows
        for batch in (64, 256, 1024):
            for bf16 in (False, True):
                label = f"{device} batch={batch}" + (" bf16" if bf16 else "")
                rows.append((label, {**head, "batch": batch, "bf16": bf16, "device": device}))
        return rows
    rows += [
        ("bf16", {**head, "bf16": True}),
        ("threads=2", {**head, "threads": 2}),
        ("batch=256", {**head, "batch": 256}),
        ("batch=256 threads=2", {**head, "batch": 256, "threads": 2}),
        ("batch=256 bf16", {**head, "batch": 256, "bf16": True}),
    ]
    if use_compile:
        rows.append(("batch=256 compile", {**head, "batch": 256, "compile": True}))
    return rows


def make_step(name: str, settings: dict[str, Any], data: Any) -> tuple[Callable[[], Any], float]:
    """A closure running one training step, and the compile time (s, 0 when not compiled)."""
    torch.manual_seed(0)
    splits = data[0]
    policy = make_policy(name, stats=splits.stats, obs_dim=5, action_dim=2, **settings["overrides"])
    device = torch.device(settings["device"])
    policy.to(device).train()
    if isinstance(policy, TrainingHooks):  # mid-run: the step decoder then mixes in its
        policy.on_epoch_start(1, 2)  # free-running pass
    obs_all, act_all = data[1].to(device), data[2].to(device)  # the windows live on the device
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-4)
    model: Callable[..., Any] = policy
    if settings["compile"]:
        model = torch.compile(policy)
    b = settings["batch"]
    g = torch.Generator().manual_seed(1)

    def step() -> None:
        idx = torch.randint(0, len(obs_all), (b,), generator=g).to(device)
        batch = {"obs": obs_all[idx], "action": act_all[idx]}
        ctx = (
            torch.autocast(device.type, dtype=torch.bfloat16)
            if settings["bf16"]
            else contextlib.nullcontext()
        )
        with ctx:
            loss, _ = model(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()

    t0 = time.perf_counter()
    with torch_threads(settings["threads"]):
        step()  # warm-up (and compilation)
        step()
        sync(device)
    return step, (time.perf_counter() - t0) if settings["compile"] else 0.0


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a GPU runs asynchronously of the timer)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    name: str, rounds: int, steps: int, use_compile: bool, data: Any, device: str = "cpu"
) -> list[dict]:
    """Samples/s of every candidate row of ``name``, interleaved over ``rounds``."""
    rows = candidates(name, use_compile, device)
    built = []
    for label, settings in rows:
        step, compile_s = make_step(name, settings, data)
        built.append((label, settings, step, compile_s, []))
    for _ in range(rounds):
        for _label, settings, step, _c, times in built:
            with torch_threads(settings["threads"]):
                t0 = time.perf_counter()
                for _ in range(steps):
                    step()
                sync(torch.device(settings["device"]))
                times.append((time.perf_counter() - t0) / steps)
    base = None
    out = []
    for label, settings, _step, compile_s, times in built:
        rate = settings["batch"] / min(times)
        if base is None:
            base = rate
        out.append(
            {
                "policy": name,
                "row": label,
                "batch": settings["batch"],
                "threads": settings["threads"],
                "bf16": settings["bf16"],
                "compile": settings["compile"],
                "device": settings["device"],
                "samples_per_s": rate,
                "x_baseline": rate / base,
                "epoch_s": TRAIN_WINDOWS / rate,
                "run_120_min": 120 * TRAIN_WINDOWS / rate / 60,
                "compile_s": compile_s,
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policies", nargs="*", default=None, help="default: every policy")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument("--steps", type=int, default=4, help="optimiser steps per row per round")
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument(
        "--device", default="cpu", help="cuda or cuda:N adds GPU rows (default: cpu rows only)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    names = args.policies or available_policies()
    cpu = torch.device("cpu")
    print(
        f"CPU: {torch.backends.cpu.get_cpu_capability()}, bfloat16 in hardware (AMX / "
        f"AVX512-BF16): {native_bfloat16(cpu)}, torch threads {torch.get_num_threads()}"
    )
    results = []
    for name in names:
        probe = make_policy(name, obs_dim=5, action_dim=2)
        splits = make_splits(PUSHT, probe.config, seed=0)
        obs, act = splits.train.window_arrays()
        data = (splits, torch.from_numpy(obs), torch.from_numpy(act))
        results += measure(name, args.rounds, args.steps, args.compile, data, args.device)
        header = f"{'policy':<11} {'row':<24} {'samples/s':>9} {'x base':>7} {'epoch s':>8}"
        print(f"\n{header} {'120 ep min':>10} {'compile s':>9}")
        for r in results:
            if r["policy"] != name:
                continue
            print(
                f"{r['policy']:<11} {r['row']:<24} {r['samples_per_s']:>9.0f} "
                f"{r['x_baseline']:>7.2f} {r['epoch_s']:>8.1f} {r['run_120_min']:>10.1f} "
                f"{r['compile_s']:>9.1f}"
            )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
