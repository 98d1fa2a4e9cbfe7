"""Where ``lnmdn bench`` runs its cells: on this machine (``local``) or on a Ray cluster (``ray``).

The local executor computes the cells one after the other in this process (the loop in
:func:`lnmdn_agents.bench.run.run_bench`), or, with the preset's ``jobs`` above 1 (``--jobs``),
several at once in worker processes of this machine (:func:`run_cells_processes`; the standard
library's ``multiprocessing``, nothing to install). Each worker runs whole cells, which write
their results as they do alone, so the numbers are the same and only the timings change.
The Ray executor (``--executor ray``, the ``distributed`` extra) submits each cell as one Ray task
that declares its resources (:func:`cell_resources`), and writes each result the driver gets back
to ``<out>/cells/`` atomically, as the local executor does, so that ``results.json`` and the
resume rule (a cell whose file exists is never recomputed) are the same for both. A cell that
raises, or whose worker or node dies, is resubmitted up to ``max_retries`` times, then reported as
a :class:`CellFailure`; the other cells go on.

Ray is imported only here and only when the Ray executor runs (:func:`require_ray`).
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from lnmdn_agents.bench.cells import cell_dataset, cell_file, cell_id, run_cell
from lnmdn_agents.checkpoint import atomic_write_text

if TYPE_CHECKING:
    from lnmdn_agents.bench.presets import BenchPreset

__all__ = [
    "EXECUTORS",
    "CellFailure",
    "CellsFailedError",
    "cell_resources",
    "local_jobs",
    "require_ray",
    "run_cells_processes",
    "run_cells_ray",
]

logger = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")

# A cell as plan_cells returns it: (task, policy, fraction, seed, protocol).
Cell = tuple[str, str, float, int, str]


@dataclass
class CellFailure:
    """A cell that failed on every attempt.

    Attributes:
        cell: cell id (``pusht/diffusion/frac1/seed0``).
        attempts: how many times it ran.
        error: the last attempt's exception, ``Type: message`` on one line.
        errors: every attempt's ``Type: message``, in order.
        traceback: the last attempt's full traceback (from the worker).
    """

    cell: str
    attempts: int
    error: str
    errors: list[str]
    traceback: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``results.json``'s ``failed`` list)."""
        return asdict(self)


class CellsFailedError(RuntimeError):
    """No cell finished: every cell of the run failed (see ``failures``)."""

    def __init__(self, failures: list[CellFailure]) -> None:
        self.failures = failures
        lines = "; ".join(f"{f.cell} ({f.attempts} attempts): {f.error}" for f in failures)
        super().__init__(f"{len(failures)} cell(s) failed and none finished: {lines}")


def require_ray() -> ModuleType:
    """Import Ray, or fail naming the extra that brings it.

    Raises:
        ImportError: Ray is not installed.
    """
    try:
        import ray
    except ImportError as err:
        raise ImportError(
            "--executor ray needs Ray, which comes with the 'distributed' extra: "
            'pip install "lnmdn[distributed]" (from a clone: pip install -c constraints.txt '
            "-e '.[distributed]'); or run with --executor local"
        ) from err
    return ray


def cell_resources(preset: BenchPreset) -> dict[str, float]:
    """The Ray resources one cell of ``preset`` declares.

    CPUs: the larger of the training and evaluation thread counts (1 when the preset leaves
    them to torch: Ray then sets ``OMP_NUM_THREADS=1`` in the worker, which torch follows).
    GPUs: one when the preset trains on ``cuda`` (``auto`` asks for none: name the device).
    """
    threads = max(preset.train_threads or 1, preset.eval_threads or 1)
    return {
        "num_cpus": float(threads),
        "num_gpus": 1.0 if preset.device.startswith("cuda") else 0.0,
    }


def _ray_cell(
    preset: BenchPreset, cell: Cell, out: str, retrain: bool, command: str | None = None
) -> dict[str, Any]:
    """One cell in a Ray worker (the body of the Ray task)."""
    task, policy, fraction, seed, protocol = cell
    return run_cell(
        preset, task, policy, fraction, seed, Path(out), retrain, progress=False, command=command,
        protocol=protocol,
    )  # fmt: skip


def _check_feasible(ray: ModuleType, resources: dict[str, float]) -> None:
    """Fail now, rather than wait forever, when no node of the cluster can run one cell."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    for key, name in (("num_cpus", "CPU"), ("num_gpus", "GPU")):
        need = resources[key]
        best = max((n.get(name, 0.0) for n in nodes), default=0.0)
        if need > best:
            hint = (
                "train on the CPU (--device cpu) or add GPU nodes"
                if name == "GPU"
                else "lower the preset's train_threads / eval_threads or add larger nodes"
            )
            raise ValueError(
                f"each bench cell asks Ray for {need:g} {name}, but the largest node of the "
                f"cluster has {best:g} ({len(nodes)} node(s) alive): the cells would wait "
                f"forever; {hint}"
            )


def _describe(err: BaseException) -> tuple[str, str]:
    """``Type: message`` on one line, and the full text (with the worker's traceback)."""
    cause = getattr(err, "cause", None)  # a RayTaskError carries the worker's exception
    shown = cause if isinstance(cause, BaseException) else err
    full = re.sub(r"\x1b\[[0-9;]*m", "", str(err))  # Ray colours the worker's traceback
    return f"{type(shown).__name__}: {' '.join(str(shown).split())[:500]}", full


def run_cells_ray(
    preset: BenchPreset,
    cells: list[Cell],
    out: Path,
    *,
    force: bool = False,
    address: str | None = None,
    max_retries: int = 2,
    command: str | None = None,
) -> tuple[list[str], list[CellFailure]]:
    """Run ``cells`` as Ray tasks; write each finished cell to ``<out>/cells/`` as it arrives.

    Uses the Ray runtime this process is already connected to, if any; otherwise connects to
    ``address`` (``auto``: the cluster started on this machine with ``ray start``; ``ray://...``:
    Ray Client) or, with ``address`` None and no ``RAY_ADDRESS``, starts a Ray instance on this
    machine (shut down again at the end).

    Args:
        preset: the bench preset (sent to every task).
        cells: the cells to compute (the caller has dropped the finished ones).
        out: the bench output folder; the workers write their run folders under
            ``<out>/runs``, so on a cluster it should be a path every node can write (a shared
            filesystem lets an interrupted cell resume its training on any node).
        force: the first attempt of each cell retrains from scratch (later attempts resume).
        address: Ray cluster address (see above).
        max_retries: resubmissions of a failed cell before it is reported.
        command: the command line recorded in each cell.

    Returns:
        The ids of the cells computed (in finishing order) and the cells that failed.

    Raises:
        ImportError: Ray is not installed (the ``distributed`` extra).
        ValueError: ``max_retries`` is negative, or no node of the cluster has the CPUs or
            GPUs one cell asks for (:func:`cell_resources`).
    """
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, got {max_retries=}")
    if not cells:
        return [], []
    ray = require_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address)
    elif address is not None:
        logger.info("Ray is already initialised in this process; --address %s unused", address)
    computed: list[str] = []
    failures: list[CellFailure] = []
    errors: dict[str, list[str]] = {}
    try:
        resources = cell_resources(preset)
        _check_feasible(ray, resources)
        # Retries are the driver's (below), so that every attempt's error is counted and reported.
        task = ray.remote(_ray_cell).options(max_retries=0, retry_exceptions=False, **resources)
        out = Path(out).resolve()
        logger.info(
            "bench: %d cell(s) as Ray tasks of %g CPU / %g GPU each, up to %d retries each",
            len(cells),
            resources["num_cpus"],
            resources["num_gpus"],
            max_retries,
        )
        pending = {task.remote(preset, c, str(out), force, command): (c, 1) for c in cells}
        with (
            logging_redirect_tqdm(),
            tqdm(total=len(cells), unit="cell", desc="bench", disable=None, leave=False) as bar,
        ):
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                c, attempt = pending.pop(ref)
                cid = cell_id(*c)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as err:
                    line, full = _describe(err)
                    errors.setdefault(cid, []).append(line)
                    if attempt <= max_retries:
                        logger.warning(
                            "bench cell %s failed (attempt %d of %d): %s; retrying",
                            cid,
                            attempt,
                            max_retries + 1,
                            line,
                        )
                        new = task.remote(preset, c, str(out), False, command)
                        pending[new] = (c, attempt + 1)
                        continue
                    failures.append(CellFailure(cid, attempt, line, errors[cid], full))
                    bar.update(1)
                    logger.error(
                        "bench [%d/%d] cell %s FAILED after %d attempt(s): %s",
                        len(computed) + len(failures),
                        len(cells),
                        cid,
                        attempt,
                        line,
                    )
                    continue
                # The driver writes the cell: the worker's own copy may be on another machine.
                atomic_write_text(cell_file(out, cid), json.dumps(result, indent=1) + "\n")
                computed.append(cid)
                bar.update(1)
                logger.info(
                    "bench [%d/%d] cell %s done in %.0f s (training %.0f s)%s",
                    len(computed) + len(failures),
                    len(cells),
                    cid,
                    result["wall_time_s"],
                    result["train_wall_time_s"],
                    f" after {attempt} attempts" if attempt > 1 else "",
                )
    finally:
        if started:
            ray.shutdown()
    return computed, failures


# -- local worker processes ----------------------------------------------------------------------
def local_jobs(jobs: int, n_cells: int) -> int:
    """Worker processes for ``n_cells`` cells: ``jobs`` (0: one per usable core), at most n_cells.

    Raises:
        ValueError: ``jobs`` is negative.
    """
    if jobs < 0:
        raise ValueError(f"jobs must be >= 0 (0: one per CPU core), got {jobs=}")
    return max(1, min(jobs or _cores(), n_cells))


def _cores() -> int:
    """CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# The cell a worker process is computing, shown in each of its log lines.
_worker_cell = "-"


class _CellTag(logging.Filter):
    """Tags a worker's log records with its cell, so that interleaved lines stay readable."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.cell = _worker_cell
        return True


def _init_worker(level: int, threads: int) -> None:
    """Set up a worker process: log lines like the CLI's, tagged with the cell; torch threads."""
    import torch

    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s [%(cell)s] %(name)s: %(message)s")
    )
    handler.addFilter(_CellTag())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    torch.set_num_threads(threads)


def _worker_run_cell(args: tuple[BenchPreset, Cell, Path, bool, str | None]) -> str:
    """One cell in a worker process (the cell writes its own result file)."""
    global _worker_cell
    preset, cell, out, retrain, command = args
    task, policy, fraction, seed, protocol = cell
    cid = _worker_cell = cell_id(*cell)
    try:
        run_cell(
            preset, task, policy, fraction, seed, out, retrain, progress=False,
            command=command, protocol=protocol,
        )  # fmt: skip
    finally:
        _worker_cell = "-"
    return cid


def run_cells_processes(
    preset: BenchPreset,
    cells: list[Cell],
    out: Path,
    *,
    jobs: int,
    force: bool = False,
    command: str | None = None,
) -> list[str]:
    """Compute ``cells`` in :func:`local_jobs` worker processes of this machine, whole cells each.

    The datasets the cells read are made local here first, once each (a dataset built on first
    load is not built by two workers at the same time). Workers are spawned (not forked) and
    set torch to the machine's cores divided among them; a cell's training and evaluation use
    the threads its recipe or preset names, as they do alone. The first cell that raises stops
    the others (an interrupted cell resumes its training on the next run) and is raised here.

    Args:
        preset: the bench preset (sent to every worker).
        cells: the cells to compute (the caller has dropped the finished ones).
        out: the bench output folder.
        jobs: worker processes (0: one per CPU core); see :func:`local_jobs`.
        force: retrain each cell from scratch.
        command: the command line recorded in each cell.

    Returns:
        The ids of the cells computed, in finishing order.
    """
    import multiprocessing

    from lnmdn_datasets.provision import ensure_local

    workers = local_jobs(jobs, len(cells))
    for dataset in dict.fromkeys(cell_dataset(preset, c[0], c[1]) for c in cells):
        ensure_local(dataset)
    threads = max(1, _cores() // workers)
    logger.info("bench: %d cell(s) in %d worker processes of this machine", len(cells), workers)
    computed: list[str] = []
    level = logging.getLogger().getEffectiveLevel()
    pool = multiprocessing.get_context("spawn").Pool(
        workers, initializer=_init_worker, initargs=(level, threads)
    )
    try:
        tasks = [(preset, c, out, force, command) for c in cells]
        for cid in pool.imap_unordered(_worker_run_cell, tasks, chunksize=1):
            computed.append(cid)
            logger.info("bench [%d/%d] cell %s done", len(computed), len(cells), cid)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
    return computed
