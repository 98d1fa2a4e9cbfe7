"""What a run reports: ``metrics.jsonl``, the progress bar or one log line per epoch, TensorBoard.

One record per epoch, with namespaced keys (cleanrl's ``train/``, ``val/``, ``eval/``,
``charts/``), the same in ``metrics.jsonl`` and in TensorBoard::

    {"epoch": 0, "step": 7,                             epoch: 0-based; step: done after it
     "train/grad_norm", "train/loss", "train/<info>",   means over the epoch's steps
     "train/lr",                                        the rate of the epoch's last step
     "val/loss", "val/nll",                             every val_every epochs
     "eval/success_rate", "eval/mean_score",            every eval_every epochs
     "eval/mean_length", "eval/std_score",
     "eval/episodes",
     "charts/samples_per_sec", "charts/epoch_time_s",   time in optimiser steps only
     "charts/train_minutes", "charts/processes"}
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from lnmdn_agents.checkpoint import atomic_write_text

if TYPE_CHECKING:
    from lnmdn_agents.training.config import TrainConfig

__all__ = ["METRICS_NAME", "RunLog"]

logger = logging.getLogger(__name__)

METRICS_NAME = "metrics.jsonl"
_SHOWN = ("train/loss", "val/loss", "val/nll", "eval/success_rate", "eval/mean_score")
"""The keys of the log line that replaces the bar off a terminal."""


class RunLog:
    """A run's reports: the sums behind each epoch's record, the progress bar, the files.

    Every process makes one; only the ``active`` one (rank 0) writes files and shows a bar: a
    tqdm bar when stderr is a terminal and ``config.progress`` is set, otherwise a log line per
    epoch (``epoch 3/20: train/loss ..., val/loss ... (41.2 s)``). Opening it keeps, in
    ``metrics.jsonl``, only the records of the epochs before ``start_epoch`` (an interrupted run
    may have logged epochs past its checkpoint), and purges the TensorBoard events past ``step``.

    Args:
        config: the run's settings (run folder, epochs, policy name, ``progress``).
        start_epoch: epochs already done (by the checkpoint the run resumes from).
        step: optimiser steps already done.
        total_steps: optimiser steps of the whole run (the bar's length).
        active: whether this process writes (rank 0).

    Attributes:
        records: the records kept from before ``start_epoch``.
        train_seconds: seconds spent in optimiser steps so far, the kept epochs included.
    """

    def __init__(
        self, config: TrainConfig, start_epoch: int, step: int, total_steps: int, *, active: bool
    ):
        self.path = config.run_dir / METRICS_NAME
        self.n_epochs = config.epochs
        self.records = _keep_records_before(self.path, start_epoch) if active else []
        self.train_seconds = sum(
            (float(r.get("charts/epoch_time_s", 0.0)) for r in self.records), 0.0
        )
        self.tensorboard = _tensorboard_writer(config.run_dir, step) if active else None
        self.bar = tqdm(
            total=total_steps,
            initial=step,
            # a bar on a terminal only (disable=None): in a log file its redraws are noise
            disable=True if not (active and config.progress) else None,
            desc=config.policy,
            dynamic_ncols=True,
        )
        self._sums: dict[str, float] = {}
        self._steps = 0

    def add_step(
        self, epoch: int, loss: torch.Tensor, info: dict[str, float], grad_norm: float | None
    ) -> None:
        """Add one optimiser step's loss, loss info and gradient norm; advance the bar."""
        sums = self._sums
        if grad_norm is not None:
            sums["train/grad_norm"] = sums.get("train/grad_norm", 0.0) + grad_norm
        sums["train/loss"] = sums.get("train/loss", 0.0) + float(loss.detach())
        for k, v in info.items():
            sums[f"train/{k}"] = sums.get(f"train/{k}", 0.0) + float(v)
        self._steps += 1
        self.bar.update(1)
        self.bar.set_postfix(epoch=epoch, loss=f"{float(loss.detach()):.4f}")

    def epoch_record(self, epoch: int, step: int) -> dict[str, Any]:
        """The epoch's record so far: the means of its steps; starts the next epoch's sums."""
        record: dict[str, Any] = {"epoch": epoch, "step": step}
        record.update({k: v / max(1, self._steps) for k, v in self._sums.items()})
        self._sums, self._steps = {}, 0
        return record

    def charts(self, elapsed: float, samples: int, processes: int) -> dict[str, float]:
        """The ``charts/*`` of an epoch that took ``elapsed`` seconds of optimiser steps."""
        self.train_seconds += elapsed
        return {
            "charts/samples_per_sec": samples / max(elapsed, 1e-9),
            "charts/epoch_time_s": elapsed,
            "charts/train_minutes": self.train_seconds / 60.0,
            "charts/processes": processes,
        }

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` to ``metrics.jsonl``; send it to TensorBoard and, barless, the log."""
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tensorboard is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.tensorboard.add_scalar(key, value, global_step=record["step"])
            self.tensorboard.flush()
        if self.bar.disable:
            shown = [
                f"{k} {record[k]:.4g}" for k in _SHOWN if isinstance(record.get(k), (int, float))
            ]
            logger.info(
                "epoch %d/%d: %s (%.1f s)",
                record["epoch"] + 1,
                self.n_epochs,
                ", ".join(shown),
                record.get("charts/epoch_time_s", float("nan")),
            )

    def close(self) -> None:
        """Close the bar and the TensorBoard writer."""
        self.bar.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


def _keep_records_before(path: Path, epoch: int) -> list[dict[str, Any]]:
    """Rewrite ``metrics.jsonl`` with its records of the epochs before ``epoch``; return them."""
    kept: list[str] = []
    records: list[dict[str, Any]] = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if rec.get("epoch", 0) < epoch:
                kept.append(line)
                records.append(rec)
    atomic_write_text(path, "".join(f"{line}\n" for line in kept))
    return records


def _tensorboard_writer(run_dir: Path, step: int) -> Any:
    """A TensorBoard ``SummaryWriter`` on ``run_dir``, or None when tensorboard is not installed.

    Events at optimiser steps after ``step`` (left by an interrupted run past its checkpoint) are
    purged, as ``metrics.jsonl`` drops their lines.
    """
    if importlib.util.find_spec("tensorboard") is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    run_dir.mkdir(parents=True, exist_ok=True)
    return SummaryWriter(log_dir=str(run_dir), purge_step=step + 1 if step > 0 else None)
