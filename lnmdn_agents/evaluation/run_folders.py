"""A run folder read back: its training settings, its metrics, and the table of every run.

``lnmdn train`` writes ``train_config.json`` (the :class:`~lnmdn_agents.training.TrainConfig`)
and ``metrics.jsonl`` (one record per epoch) into each run folder; ``lnmdn eval`` adds
``eval_info.json``. :func:`read_train_config` and :func:`read_metrics` read the first two back
(the selected checkpoint ``RUN/best`` answers with its run's), :func:`run_train_config` rebuilds the
settings themselves, and :func:`list_runs` summarises
every run under a folder (``lnmdn runs list``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lnmdn_agents.checkpoint import BEST_DIR

if TYPE_CHECKING:
    from lnmdn_agents.training.config import TrainConfig

__all__ = ["list_runs", "read_metrics", "read_train_config", "run_train_config"]

logger = logging.getLogger(__name__)


def read_train_config(run_dir: str | Path) -> dict[str, Any]:
    """``train_config.json`` of a run ({} when the folder was not written by training).

    The selected checkpoint ``RUN/best`` answers with its run's, so ``lnmdn eval RUN/best``
    knows the dataset (and the env it was recorded in) as ``lnmdn eval RUN`` does.
    """
    run_dir = Path(run_dir)
    for folder in (run_dir, run_dir.parent) if run_dir.name == BEST_DIR else (run_dir,):
        path = folder / "train_config.json"
        if path.is_file():
            return dict(json.loads(path.read_text()))
    return {}


def run_train_config(run_dir: str | Path) -> TrainConfig:
    """The run's :class:`~lnmdn_agents.training.TrainConfig`, rebuilt from ``train_config.json``.

    Fields this version no longer has are dropped, so a script can replay an older run's
    closed-loop validation (its env, acting and seeds).

    Raises:
        FileNotFoundError: the folder holds no ``train_config.json`` (not a training run).
    """
    from lnmdn_agents.training.config import TrainConfig

    saved = read_train_config(run_dir)
    if not saved:
        raise FileNotFoundError(f"{run_dir}: no train_config.json (not a training run)")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in saved.items() if k in known})


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl`` ([] when absent); malformed lines are skipped."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            logger.warning("skipping a malformed line of %s", path)
    return out


def _best(records: list[dict[str, Any]], key: str, best: Any = max) -> float | None:
    values = [float(r[key]) for r in records if isinstance(r.get(key), (int, float))]
    return best(values) if values else None


def list_runs(root: str | Path = "runs") -> list[dict[str, Any]]:
    """Every training run under ``root`` (folders holding ``train_config.json``), sorted by path.

    Returns:
        One dict per run: ``run`` (path relative to ``root``), ``policy``, ``dataset``,
        ``epochs_done`` (the latest checkpoint's), ``epochs`` (planned), ``best_val_score`` (best
        closed-loop validation mean score, ``eval/mean_score``, or None), ``best_val_nll`` (lowest
        ``val/nll``), ``best_val_loss``, and from ``eval_info.json`` when ``lnmdn eval`` ran:
        ``test_success_rate``, ``test_episodes``, ``test_score``.

    Raises:
        NotADirectoryError: ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(
            f"{root} is not a folder; pass the folder that holds the runs (lnmdn train writes "
            "them under --output-dir, default runs)"
        )
    out = []
    for cfg_path in sorted(root.rglob("train_config.json")):
        run = cfg_path.parent
        try:
            cfg = json.loads(cfg_path.read_text())
        except (OSError, json.JSONDecodeError):
            logger.warning("skipping %s: unreadable train_config.json", run)
            continue
        records = read_metrics(run)
        done = 0
        latest = run / "checkpoints" / "latest.json"
        try:
            done = int(json.loads(latest.read_text())["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            done = len(records)
        entry: dict[str, Any] = {
            "run": str(run.relative_to(root)) if run != root else ".",
            "policy": cfg.get("policy"),
            "dataset": cfg.get("dataset"),
            "epochs_done": done,
            "epochs": cfg.get("epochs"),
            "best_val_score": _best(records, "eval/mean_score"),
            "best_val_nll": _best(records, "val/nll", min),
            "best_val_loss": _best(records, "val/loss", min),
            "test_success_rate": None,
            "test_episodes": None,
            "test_score": None,
        }
        try:
            closed = json.loads((run / "eval_info.json").read_text()).get("closed_loop") or {}
        except (OSError, json.JSONDecodeError):
            closed = {}
        if closed:
            entry["test_success_rate"] = closed.get("success_rate")
            entry["test_episodes"] = closed.get("n_episodes")
            entry["test_score"] = closed.get("mean_score")
        out.append(entry)
    return out
