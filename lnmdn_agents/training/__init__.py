"""Behaviour-cloning training: one plain loop for every registered policy.

::

    config = TrainConfig(policy="liquid_mdn", dataset="lnmdn/pusht/expert-v0", epochs=20)
    run_dir = train(config)                    # runs/pusht-expert-v0_liquid_mdn_frac1_seed0/
    run_dir = train(config, resume=True)       # after an interruption: same final weights
    policy = lnmdn_agents.load_policy(run_dir)

The loop: AdamW, linear warm-up then cosine decay to ``min_lr``, gradient clipping, an EMA of the
weights when the policy's config asks for one (``use_ema``: see ``ema``), the policy's
``on_epoch_start(epoch, n_epochs)`` hook (:class:`~lnmdn_agents.policies.TrainingHooks`),
validation each ``val_every`` epochs, metrics as JSON lines and an atomic checkpoint each
``checkpoint_every`` epochs.

One job per module:

- ``loop``: :func:`train`, the loop itself, read top to bottom;
- ``config``: :class:`TrainConfig` and its checks;
- ``cli``: the ``lnmdn train`` command, generated from :class:`TrainConfig`;
- ``optim``: AdamW and the learning-rate schedule (:func:`lr_at`);
- ``ema``: the moving average of the weights;
- ``batches``: the seeded batch order and the batch size;
- ``distributed``: processes under torchrun, the device, DDP;
- ``validation``: offline and closed-loop validation, the best checkpoint (``best/``);
- ``metrics``: ``metrics.jsonl``, the progress bar or log line, TensorBoard;
- ``resume``: the resumable checkpoints and the rules for a run folder that holds a run.

Run folder::

    config.json, model.safetensors     the policy (EMA weights when the policy uses EMA)
    train_config.json                  this TrainConfig
    metrics.jsonl                      {"epoch", "step", "train/loss", "val/nll", "charts/...", ...}
    checkpoints/latest.json            -> checkpoints/epoch_NNNN/{state.safetensors, state.json}
    best/                              the policy closed-loop validation selected (eval_every > 0)

Reproducibility: the weights are initialised from ``seed``; each epoch's batch order comes from
``(seed, epoch)`` and the torch RNG is reseeded from ``(seed, epoch, rank)`` at each epoch start, so
a run resumed from an epoch checkpoint (model, EMA, optimiser, step, epoch) replays exactly what
the uninterrupted run would have done.

Distributed: launched with ``torchrun --nproc_per_node N``, each process takes a 1/N share of every
global batch (``batch_size`` is global) and DistributedDataParallel averages the gradients (gloo on
CPU, NCCL on CUDA); rank 0 validates and writes the run folder.
"""

from lnmdn_agents.training.cli import train_command
from lnmdn_agents.training.config import (
    PRECISIONS,
    RUN_PLACE,
    VALIDATION_SEED_BASE,
    TrainConfig,
    config_diff,
)
from lnmdn_agents.training.loop import train
from lnmdn_agents.training.optim import lr_at
from lnmdn_agents.training.resume import CHECKPOINT_DIR
from lnmdn_agents.training.validation import BEST_DIR

__all__ = [
    "BEST_DIR",
    "CHECKPOINT_DIR",
    "PRECISIONS",
    "RUN_PLACE",
    "VALIDATION_SEED_BASE",
    "TrainConfig",
    "config_diff",
    "lr_at",
    "train",
    "train_command",
]
