"""The training loop: :func:`train`, one plain loop for every registered policy.

It reads top to bottom: processes and device, data, model and optimiser, the run folder, then
the epochs (optimiser steps; validation, metrics and checkpoints at the epoch's end). The
bookkeeping lives in the package's other modules, named where it is called.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from lnmdn_agents.checkpoint import save_policy
from lnmdn_agents.policies import TrainingHooks, make_policy
from lnmdn_agents.training.batches import derived_seed, epoch_batches, fit_batch_size
from lnmdn_agents.training.config import PRECISIONS, TrainConfig, native_bfloat16
from lnmdn_agents.training.distributed import barrier, setup_process, wrap_ddp
from lnmdn_agents.training.ema import EMA
from lnmdn_agents.training.metrics import RunLog
from lnmdn_agents.training.optim import lr_at, make_optimizer, set_lr, warmup_steps
from lnmdn_agents.training.resume import (
    check_run_folder,
    has_checkpoint,
    load_checkpoint,
    save_checkpoint,
    write_train_config,
)
from lnmdn_agents.training.validation import (
    BEST_DIR,
    BestCheckpoint,
    closed_loop_env,
    validate,
    validate_closed_loop,
)

if TYPE_CHECKING:
    from lnmdn_agents.data import Episode

__all__ = ["train"]

logger = logging.getLogger(__name__)


def train(
    config: TrainConfig,
    resume: bool = False,
    *,
    episodes: Sequence[Episode] | None = None,
    overwrite: bool = False,
) -> Path:
    """Train ``config.policy`` on ``config.dataset`` and write the run folder.

    Args:
        config: the run's settings.
        resume: continue from the run folder's latest checkpoint. The config must be the same,
            except ``epochs``, which may grow: a finished run is then *extended*, the learning-rate
            schedule continuing from the step reached as a run of the new length would (so it
            rises again from ``min_lr``). Without a checkpoint, training starts from scratch (with
            a warning).
        episodes: in-memory demonstrations to use instead of loading ``config.dataset`` (tests,
            custom data); ``config.dataset`` is then only a label.
        overwrite: delete the run already in the run folder and train from scratch.

    Returns:
        The run folder (``config.json`` + ``model.safetensors`` loadable by ``load_policy``).

    Raises:
        FileExistsError: the run folder already holds a run and neither ``resume`` nor
            ``overwrite`` is set.
        ValueError: ``resume`` with a different config than the one in the run folder, or with
            fewer epochs than its checkpoint has done; ``resume`` with ``overwrite``.
    """
    from lnmdn_agents.data import load_episodes, make_splits

    rank, world, device = setup_process(config)
    run_dir = config.run_dir
    check_run_folder(config, resume, overwrite, rank, world)

    # Data: the dimensions come from the dataset.
    eps = list(episodes) if episodes is not None else load_episodes(config.dataset)
    if not eps:
        raise ValueError("training needs at least one episode")
    policy_config = config.policy_config(obs_dim=eps[0].obs_dim, action_dim=eps[0].action_dim)
    splits = make_splits(
        eps,
        policy_config,
        seed=config.split_seed,
        fraction=config.fraction,
        split_unit=config.split_unit,
    )
    n_train = len(splits.train)
    batch_size = fit_batch_size(config.batch_size, n_train, world)
    steps_per_epoch = n_train // batch_size
    total_steps = steps_per_epoch * config.epochs
    warmup = warmup_steps(config.warmup_epochs, steps_per_epoch, total_steps)

    # Model, EMA, optimiser; a resumed run restores all three.
    torch.manual_seed(config.seed)
    policy = make_policy(config.policy, policy_config, stats=splits.stats).to(device)
    policy.train()
    ema = EMA.for_policy(policy)
    optimizer = make_optimizer(policy, config.lr, config.weight_decay)
    start_epoch, step = 0, 0
    if resume and has_checkpoint(run_dir):
        start_epoch, step = load_checkpoint(run_dir, policy, ema, optimizer)
        logger.info("resuming %s after epoch %d (step %d)", run_dir, start_epoch, step)
    model = wrap_ddp(policy, device, world)
    eval_env = closed_loop_env(config, check_seeds=episodes is None)
    if rank == 0:
        write_train_config(config)
    logger.info(
        "training %s (%d parameters) on %s: %d windows, %d epochs x %d steps, %d process(es)",
        config.policy,
        policy.num_parameters(),
        config.dataset,
        n_train,
        config.epochs,
        steps_per_epoch,
        world,
    )
    log = RunLog(config, start_epoch, step, total_steps, active=rank == 0)
    best = BestCheckpoint(run_dir / BEST_DIR, log.records, config.selection, config.eval_episodes)

    # The training windows live where the model trains (one copy to a GPU, not one per batch).
    obs_all, act_all = (torch.from_numpy(a).to(device) for a in splits.train.window_arrays())
    params = [p for p in policy.parameters() if p.requires_grad]
    amp_dtype = PRECISIONS[config.precision]  # float32: autocast off
    if amp_dtype == torch.bfloat16 and not native_bfloat16(device) and rank == 0:
        logger.warning(
            "precision='bfloat16' on %s, which has no bfloat16 arithmetic in hardware (CPUs: "
            "AMX or AVX512-BF16; GPUs: compute capability 8.0+): autocast emulates it and trains "
            "several times slower than float32; drop --precision bfloat16 (float32 is the "
            "default) on this machine",
            device,
        )
    for epoch in range(start_epoch, config.epochs):
        if isinstance(policy, TrainingHooks):
            policy.on_epoch_start(epoch, config.epochs)
        if ema is not None:
            ema.on_epoch_start(epoch, config.epochs)  # the copy follows the same schedule
        torch.manual_seed(derived_seed(config.seed, epoch, rank))
        t0 = time.perf_counter()
        for batch_idx in epoch_batches(n_train, batch_size, config.seed, epoch):
            local = torch.from_numpy(batch_idx[rank::world]).to(device)
            batch = {"obs": obs_all[local], "action": act_all[local]}
            lr = lr_at(step, total_steps, warmup, config.lr, config.min_lr)
            set_lr(optimizer, lr)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype != torch.float32):
                loss, info = model(batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"non-finite loss {float(loss)} at epoch {epoch}, step {step}; lower lr "
                    f"(now {lr:.3g}) or check the data"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = None
            if config.grad_clip > 0:
                grad_norm = float(nn.utils.clip_grad_norm_(params, config.grad_clip))
            optimizer.step()
            step += 1
            if ema is not None:
                ema.update(policy, step)
            log.add_step(epoch, loss, info, grad_norm)
        elapsed = time.perf_counter() - t0

        # The epoch's end: metrics, validation, checkpoints (rank 0 writes the run folder).
        done = epoch + 1
        record = log.epoch_record(epoch, step)  # the means over the epoch's steps
        if rank == 0:
            averaged = policy if ema is None else ema.model  # what is validated and saved
            last = max(0, step - 1)  # the epoch's last step
            record["train/lr"] = lr_at(last, total_steps, warmup, config.lr, config.min_lr)
            if _due(done, config.val_every, config.epochs):
                record.update(
                    validate(averaged, splits.val, config.val_max_windows, config.seed, device)
                )
            if eval_env is not None and _due(done, config.eval_every, config.epochs):
                record.update(validate_closed_loop(averaged, config, eval_env))
                best.offer(averaged, record, done, step)
            record.update(log.charts(elapsed, steps_per_epoch * batch_size, world))
            log.write(record)
            if _due(done, config.checkpoint_every, config.epochs):
                save_policy(averaged, run_dir, extra={"epoch": done, "step": step})
                keep = config.keep_checkpoints
                save_checkpoint(run_dir, done, step, policy, ema, optimizer, keep)
        barrier(world)
    log.close()
    if rank == 0 and start_epoch >= config.epochs:
        logger.info("%s already finished (%d epochs)", run_dir, config.epochs)
    return run_dir


def _due(done: int, every: int, n_epochs: int) -> bool:
    """Whether a task run every ``every`` epochs (and after the last) runs after ``done`` epochs."""
    return done % every == 0 or done == n_epochs
