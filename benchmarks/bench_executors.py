"""Wall time of one tiny ``lnmdn bench`` sweep: in-process, in worker processes, and on Ray.

The same cells (tiny models, one epoch, on a Push-T dataset of a few expert episodes built here,
one torch thread each) run three times into fresh output folders: one after the other in this
process (``--executor local``), in one worker process per core (``--jobs 0``), then as Ray
tasks on a Ray instance started here with one CPU per core (``--executor ray``). Printed: each
sweep's wall time (Ray's start measured apart) and its ratio to the one-after-the-other sweep,
the mean cost of a cell as the cell files record it (training, and training + evaluation), and
whether the three wrote the same numbers.

    .venv/bin/python benchmarks/bench_executors.py               # 4 cells: 2 policies x 2 seeds
    .venv/bin/python benchmarks/bench_executors.py --epochs 20   # longer cells, same count
    .venv/bin/python benchmarks/bench_executors.py --seeds 0 1 2 3 --json results/executors.json

Absolute times depend on the machine and its load; on a 2-core machine the worker processes and
Ray can at best halve the sweep, less their start-up and each worker's first imports.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

TINY_MODELS: dict[str, dict[str, Any]] = {
    "liquid_mdn": {
        "d_model": 16,
        "n_layers": 1,
        "n_heads": 2,
        "rnn_layers": 1,
        "rnn_hidden": 16,
        "cfc_backbone_units": 16,
        "decoder_hidden": 16,
        "action_embed_dim": 8,
    },
    "diffusion": {
        "d_model": 16,
        "n_layers": 1,
        "n_heads": 2,
        "down_dims": (8, 16, 16),
        "n_groups": 4,
        "num_inference_steps": 3,
        "sampler": "ddim",
    },
}


def _same_numbers(a: Path, b: Path) -> bool:
    """Whether two bench folders hold the same cells with the same non-timing numbers."""
    from lnmdn_agents.bench.cells import cell_numbers

    names = sorted(p.name for p in (a / "cells").glob("*.json"))
    if names != sorted(p.name for p in (b / "cells").glob("*.json")):
        return False
    return all(
        cell_numbers(json.loads((a / "cells" / n).read_text()))
        == cell_numbers(json.loads((b / "cells" / n).read_text()))
        for n in names
    )


def _cell_costs(out: Path) -> dict[str, float]:
    cells = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    return {
        "mean_cell_s": sum(c["wall_time_s"] for c in cells) / len(cells),
        "mean_train_s": sum(c["train_wall_time_s"] for c in cells) / len(cells),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policies", nargs="+", default=["liquid_mdn", "diffusion"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--episodes", type=int, default=6, help="expert episodes in the data")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs per cell")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="lnmdn_executors_") as tmp:
        os.environ["MINARI_DATASETS_PATH"] = str(Path(tmp) / "minari")
        import ray

        from lnmdn_agents.bench import make_preset, run_bench
        from lnmdn_agents.bench.executors import local_jobs
        from lnmdn_datasets.recipes import build

        build("lnmdn/pusht/expert-v0", n_episodes=args.episodes, progress=False)
        preset = make_preset(
            "quick",  # trains every cell (the demo's Push-T cells evaluate shipped runs)
            policies=tuple(args.policies),
            seeds=tuple(args.seeds),
            epochs=args.epochs,
            policy_overrides=TINY_MODELS,
            episodes=2,
            n_envs=2,
            videos=0,
            max_windows=32,
            latency_calls=2,
            diffusion_steps=(1, 3),
            sweep_max_windows=16,
            val_max_windows=32,
            trajectory_samples=3,
            train_threads=1,
            jobs=1,
        )
        n_cells = len(args.policies) * len(args.seeds)
        local_out, jobs_out, ray_out = (Path(tmp) / name for name in ("local", "jobs", "ray"))

        t0 = time.perf_counter()
        run_bench(preset, local_out)
        local_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        run_bench(dataclasses.replace(preset, jobs=0), jobs_out)
        jobs_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        ray_start_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        try:
            run_bench(preset, ray_out, executor="ray")
        finally:
            ray_run_s = time.perf_counter() - t1
            ray.shutdown()
        result = {
            "cells": n_cells,
            "epochs": args.epochs,
            "cpus": os.cpu_count(),
            "local_s": round(local_s, 1),
            "jobs": local_jobs(0, n_cells),
            "jobs_s": round(jobs_s, 1),
            "ray_s": round(ray_start_s + ray_run_s, 1),
            "ray_start_s": round(ray_start_s, 1),
            "ray_run_s": round(ray_run_s, 1),
            "local_cells": {k: round(v, 2) for k, v in _cell_costs(local_out).items()},
            "ray_cells": {k: round(v, 2) for k, v in _cell_costs(ray_out).items()},
            "same_numbers": _same_numbers(local_out, ray_out)
            and _same_numbers(local_out, jobs_out),
        }
    print(
        f"{n_cells} tiny cells, {result['cpus']} CPUs: local {result['local_s']} s; "
        f"local with {result['jobs']} worker processes {result['jobs_s']} s "
        f"({result['local_s'] / result['jobs_s']:.2f}x); "
        f"ray {result['ray_s']} s (start {result['ray_start_s']} s + run {result['ray_run_s']} s; "
        f"{result['local_s'] / result['ray_s']:.2f}x); "
        f"mean cell local {result['local_cells']['mean_cell_s']} s "
        f"(training {result['local_cells']['mean_train_s']} s), "
        f"on Ray {result['ray_cells']['mean_cell_s']} s "
        f"(training {result['ray_cells']['mean_train_s']} s); "
        f"same numbers: {result['same_numbers']}"
    )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
