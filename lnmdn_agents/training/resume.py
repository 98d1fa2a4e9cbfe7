"""Resumable training: the epoch checkpoints, and what happens to a run folder that holds a run.

Not to be confused with :mod:`lnmdn_agents.checkpoint`, which saves and loads a *policy*
(``config.json`` + ``model.safetensors``). A training checkpoint holds everything needed to go on
training exactly where the run stopped::

    checkpoints/latest.json              {"path": "epoch_0012", "epoch": 12}
    checkpoints/epoch_0012/
        state.safetensors                model.*, ema.* (when the policy has an EMA), optim.<id>.*
        state.json                       epoch, step, the optimiser's param_groups, policy config

Each checkpoint is written to a temporary folder and moved into place
(:func:`lnmdn_envs.atomic.replace_directory`), then ``latest.json`` is replaced atomically, so an
interruption at any moment leaves the previous checkpoint intact; the oldest are removed beyond
``keep_checkpoints``. Safetensors and JSON hold data only: loading runs no code.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file

from lnmdn_agents.training.config import RUN_PLACE, config_diff
from lnmdn_agents.training.distributed import barrier
from lnmdn_envs.atomic import atomic_write_text, current_umask, replace_directory

if TYPE_CHECKING:
    from lnmdn_agents.policies import PolicyBase
    from lnmdn_agents.training.config import TrainConfig
    from lnmdn_agents.training.ema import EMA

__all__ = [
    "CHECKPOINT_DIR",
    "TRAIN_CONFIG_NAME",
    "check_run_folder",
    "checkpoint_epoch",
    "has_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
    "write_train_config",
]

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
TRAIN_CONFIG_NAME = "train_config.json"


# -- checkpoints --------------------------------------------------------------------------------
def save_checkpoint(
    run_dir: Path,
    epoch: int,
    step: int,
    policy: PolicyBase,
    ema: EMA | None,
    optimizer: torch.optim.Optimizer,
    keep: int,
) -> Path:
    """Write ``checkpoints/epoch_NNNN`` atomically, point ``latest.json`` at it, keep ``keep``.

    Returns:
        The checkpoint's folder.
    """
    ckpt_root = run_dir / CHECKPOINT_DIR
    ckpt_root.mkdir(parents=True, exist_ok=True)
    tensors, opt_groups = _state_tensors(policy, ema, optimizer)
    meta = {
        "epoch": epoch,
        "step": step,
        "param_groups": opt_groups,
        "policy": policy.config.to_dict(),
    }
    tmp = Path(tempfile.mkdtemp(dir=ckpt_root, prefix=".tmp_"))
    try:
        tmp.chmod(0o777 & ~current_umask())  # mkdtemp's 0700 would hide the checkpoint
        save_file(tensors, str(tmp / "state.safetensors"))
        (tmp / "state.safetensors").chmod(0o666 & ~current_umask())  # safetensors writes 0600
        (tmp / "state.json").write_text(json.dumps(meta, indent=1) + "\n")
        final = ckpt_root / f"epoch_{epoch:04d}"
        replace_directory(tmp, final)  # a checkpoint of the same epoch stays until this one is in
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(ckpt_root / "latest.json", json.dumps({"path": final.name, "epoch": epoch}))
    old = sorted(p for p in ckpt_root.glob("epoch_*") if p.is_dir())
    for p in old[:-keep]:
        shutil.rmtree(p, ignore_errors=True)
    return final


def _state_tensors(
    policy: PolicyBase, ema: EMA | None, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """The training state as flat CPU tensors, and the optimiser's ``param_groups`` (for JSON).

    Tensor keys: ``model.<name>``, ``ema.<name>`` and ``optim.<param id>.<state name>``.
    """
    tensors: dict[str, torch.Tensor] = {}
    for k, v in policy.state_dict().items():
        tensors[f"model.{k}"] = v.detach().cpu().contiguous()
    if ema is not None:
        for k, v in ema.model.state_dict().items():
            tensors[f"ema.{k}"] = v.detach().cpu().contiguous()
    opt_state = optimizer.state_dict()
    for pid, st in opt_state["state"].items():
        for k, v in st.items():
            if not isinstance(v, torch.Tensor):
                raise TypeError(f"optimizer state {pid}.{k} is not a tensor: {v!r}")
            tensors[f"optim.{pid}.{k}"] = v.detach().cpu().contiguous()
    return tensors, opt_state["param_groups"]


def load_checkpoint(
    run_dir: Path, policy: PolicyBase, ema: EMA | None, optimizer: torch.optim.Optimizer
) -> tuple[int, int]:
    """Restore the latest checkpoint into ``policy``, ``ema`` and ``optimizer``.

    Returns:
        ``(completed epochs, optimiser steps)``.

    Raises:
        ValueError: the checkpoint cannot be read (the message says what to delete).
    """
    ckpt_root = run_dir / CHECKPOINT_DIR
    latest = json.loads((ckpt_root / "latest.json").read_text())
    folder = ckpt_root / latest["path"]
    try:
        tensors = load_file(str(folder / "state.safetensors"))
        meta = json.loads((folder / "state.json").read_text())
    except Exception as err:
        raise ValueError(
            f"checkpoint {folder} could not be read ({err}); it is corrupted. Delete it (and "
            f"{ckpt_root / 'latest.json'}) to resume from an older one, or train without --resume."
        ) from err

    def part(prefix: str) -> dict[str, torch.Tensor]:
        n = len(prefix)
        return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix)}

    policy.load_state_dict(part("model."))
    if ema is not None:
        ema.model.load_state_dict(part("ema."))
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in part("optim.").items():
        pid, name = k.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return int(meta["epoch"]), int(meta["step"])


def has_checkpoint(run_dir: Path) -> bool:
    """Whether the run folder holds a training checkpoint (``checkpoints/latest.json``)."""
    return (run_dir / CHECKPOINT_DIR / "latest.json").is_file()


def checkpoint_epoch(run_dir: Path) -> int:
    """Epochs done by the run folder's latest checkpoint (0 without one)."""
    latest = run_dir / CHECKPOINT_DIR / "latest.json"
    if not latest.is_file():
        return 0
    try:
        return int(json.loads(latest.read_text())["epoch"])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"{latest} is unreadable ({err}); delete it to resume from scratch, or pass --overwrite"
        ) from None


# -- the run folder -----------------------------------------------------------------------------
def _holds_run(run_dir: Path) -> bool:
    return has_checkpoint(run_dir) or (run_dir / "model.safetensors").is_file()


def write_train_config(config: TrainConfig) -> None:
    """Write ``train_config.json`` (the settings ``--resume`` checks) into the run folder."""
    config.run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        config.run_dir / TRAIN_CONFIG_NAME, json.dumps(config.to_dict(), indent=2) + "\n"
    )


def check_run_folder(
    config: TrainConfig, resume: bool, overwrite: bool, rank: int, world: int
) -> None:
    """Refuse a clash with a run already in the folder; ``overwrite`` deletes it (rank 0).

    Raises:
        FileExistsError: the folder holds a run and neither ``resume`` nor ``overwrite`` is set.
        ValueError: ``resume`` with ``overwrite``; ``resume`` with settings other than the saved
            ones (``epochs`` and the :data:`~lnmdn_agents.training.config.RUN_PLACE` fields
            aside) or with fewer epochs than already done.
    """
    run_dir = config.run_dir
    if resume and overwrite:
        raise ValueError(
            f"--resume and --overwrite exclude each other: --resume continues the run in "
            f"{run_dir}, --overwrite deletes it and trains again; pass one"
        )
    if resume:
        _check_resume(config)
    elif overwrite:
        if rank == 0 and _holds_run(run_dir):
            logger.warning("--overwrite: deleting the run in %s", run_dir)
            trash = run_dir.with_name(f".{run_dir.name}.deleted-{os.getpid()}")
            os.replace(run_dir, trash)  # the folder disappears at once, whole
            shutil.rmtree(trash, ignore_errors=True)
        barrier(world)  # no process starts before the old run is gone
    elif _holds_run(run_dir):
        raise FileExistsError(
            f"{run_dir} already holds a run; pass --resume to continue it (--resume --epochs N "
            "extends a finished one), --overwrite to delete it and train again, or choose "
            "another --output-dir / --run-name"
        )


def _check_resume(config: TrainConfig) -> None:
    """``--resume``: the saved settings must match, and ``epochs`` may only grow.

    Where and how visibly the run trains (``RUN_PLACE``: folder, device, threads, progress) may
    change too, so a moved run folder resumes.
    """
    run_dir = config.run_dir
    saved_cfg_path = run_dir / TRAIN_CONFIG_NAME
    if saved_cfg_path.is_file():
        saved = json.loads(saved_cfg_path.read_text())
        diff = config_diff(saved, config, ignored=RUN_PLACE | {"epochs"})
        if diff:
            raise ValueError(
                f"--resume with a different config than {saved_cfg_path}: "
                f"{{field: (saved, given)}} = {diff}; use the same settings (only --epochs "
                "may change), a new --run-name, or --overwrite"
            )
        done = checkpoint_epoch(run_dir)
        if config.epochs < done:
            raise ValueError(
                f"{run_dir} has already trained {done} epochs; --resume --epochs "
                f"{config.epochs} cannot shorten it: pass --epochs {done} or more to extend "
                "it, or --overwrite to train again"
            )
        if config.epochs != saved.get("epochs"):
            logger.info(
                "%s: epochs %s -> %d; from epoch %d on, the learning rate follows the "
                "schedule of a %d-epoch run",
                run_dir,
                saved.get("epochs"),
                config.epochs,
                done,
                config.epochs,
            )
    if not has_checkpoint(run_dir):
        logger.warning("no checkpoint in %s: starting from scratch", run_dir)
