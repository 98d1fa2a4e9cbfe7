"""Behaviour-cloning training: one plain loop for every registered policy.

::

    config = TrainConfig(policy="liquid_mdn", dataset="lnmdn/pusht/expert-v0", epochs=20)
    run_dir = train(config)                    # runs/pusht-expert-v0_liquid_mdn_frac1_seed0/
    run_dir = train(config, resume=True)       # after an interruption: same final weights
    policy = lnmdn_agents.load_policy(run_dir)

The loop: AdamW, linear warm-up then cosine decay to ``min_lr``, gradient clipping, an EMA of the
weights when the policy asks for one (``policy.ema_decay(step)``), the policy's
``on_epoch_start(epoch, n_epochs)`` hook, validation each ``val_every`` epochs, metrics as JSON
lines and an atomic checkpoint each ``checkpoint_every`` epochs.

Run folder::

    config.json, model.safetensors     the policy (EMA weights when the policy uses EMA)
    train_config.json                  this TrainConfig
    metrics.jsonl                      {"epoch", "step", "train/loss", "val/nll", "charts/...", ...}
    checkpoints/latest.json            -> checkpoints/epoch_NNNN/{state.safetensors, state.json}

Reproducibility: the weights are initialised from ``seed``; each epoch's batch order comes from
``(seed, epoch)`` and the torch RNG is reseeded from ``(seed, epoch, rank)`` at each epoch start, so
a run resumed from an epoch checkpoint (model, EMA, optimiser, step, epoch) replays exactly what
the uninterrupted run would have done.

Distributed: launched with ``torchrun --nproc_per_node N``, each process takes a 1/N share of every
global batch (``batch_size`` is global) and DistributedDataParallel averages the gradients (gloo on
CPU, NCCL on CUDA); rank 0 validates and writes the run folder.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import inspect
import json
import logging
import math
import os
import shutil
import tempfile
import time
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from lnmdn_agents.checkpoint import atomic_write_text, current_umask, save_policy
from lnmdn_agents.config_fields import (
    attribute_docs,
    check_field_types,
    parse_field_value,
    plain_help,
)
from lnmdn_agents.policies import PolicyBase, available_policies, get_policy_class, make_policy

if TYPE_CHECKING:
    from lnmdn_agents.data import Episode, WindowDataset

__all__ = ["TrainConfig", "lr_at", "train", "train_command"]

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
BEST_DIR = "best"
VALIDATION_SEED_BASE = 50_000
"""First closed-loop validation seed: above the dataset seeds, below the test seeds (100000+)."""
PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}
"""``TrainConfig.precision`` -> the autocast dtype of the training forward pass."""


@dataclass
class TrainConfig:
    """Everything a training run depends on (written to ``train_config.json``).

    Attributes:
        policy: registered policy name (``lnmdn_agents.available_policies()``).
        dataset: Minari dataset id, e.g. ``lnmdn/pusht/expert-v0``.
        fraction: share of the training episodes to use, in (0, 1] (nested subsets).
        epochs: passes over the training windows.
        seed: seed of the weights, batch order and sampling noise.
        split_seed: seed of the episode-level train/val/test split and of the fraction subset
            (kept apart from ``seed`` so that runs with different seeds see the same test split).
        batch_size: global batch size (split across processes under torchrun).
        lr: peak learning rate of AdamW.
        min_lr: learning rate at the end of the cosine decay (the paper: 3e-7).
        weight_decay: AdamW weight decay.
        warmup_epochs: linear warm-up length in epochs (may be fractional; at most a tenth of
            the run, so short runs still reach the peak and decay).
        grad_clip: maximum gradient norm (0 disables clipping).
        val_every: validate every this many epochs (and after the last).
        val_max_windows: validate on at most this many validation windows (a seeded subset;
            diffusion's bound costs one U-Net pass per diffusion step).
        checkpoint_every: write a resumable checkpoint every this many epochs (and after the last).
        keep_checkpoints: epoch checkpoints kept on disk (oldest removed first).
        output_dir: parent folder of the run folder.
        run_name: run folder name; default ``<dataset>_<policy>_frac<f>_seed<s>``.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available).
        num_threads: torch intra-op threads (None: torch's default).
        precision: ``"float32"`` or ``"bfloat16"``: the training forward pass under
            ``torch.autocast`` in bfloat16 (AMX on recent x86 CPUs, tensor cores on GPUs); the
            weights, optimiser state, loss densities, validation and rollouts stay float32.
        progress: report progress (rank 0 only): a tqdm bar when stderr is a terminal,
            otherwise one log line per epoch (loss, validation, time). False: log lines only.
        policy_overrides: policy config fields to change, e.g. ``{"d_model": 128}``.
        eval_every: closed-loop validation every this many epochs (and after the last); 0
            disables it. The best checkpoint by mean score is kept in ``<run>/best/``.
        eval_env: env of the closed-loop validation; default: the env the dataset was recorded
            in.
        eval_episodes: closed-loop validation episodes, on seeds ``VALIDATION_SEED_BASE, ...``
            (disjoint from the dataset's seeds and from the test seeds 100000+).
        eval_deterministic: act with ``deterministic=True`` in the closed-loop validation.
    """

    policy: str = "liquid_mdn"
    dataset: str = "lnmdn/pusht/expert-v0"
    fraction: float = 1.0
    epochs: int = 120
    seed: int = 0
    split_seed: int = 0
    batch_size: int = 64
    lr: float = 3e-4
    min_lr: float = 3e-7
    weight_decay: float = 1e-6
    warmup_epochs: float = 3.0
    grad_clip: float = 1.0
    val_every: int = 1
    val_max_windows: int = 256
    checkpoint_every: int = 1
    keep_checkpoints: int = 2
    output_dir: str = "runs"
    run_name: str | None = None
    device: str = "cpu"
    num_threads: int | None = None
    precision: str = "float32"
    progress: bool = True
    policy_overrides: dict[str, Any] = field(default_factory=dict)
    eval_every: int = 0
    eval_env: str | None = None
    eval_episodes: int = 20
    eval_deterministic: bool = True

    def __post_init__(self) -> None:
        check_field_types(self)  # every field, named when its type is wrong
        get_policy_class(self.policy)  # unknown names list the known ones
        if not isinstance(self.fraction, (int, float)) or not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction=}")
        for f in ("epochs", "batch_size", "val_every", "checkpoint_every", "keep_checkpoints"):
            value = getattr(self, f)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{f} must be an integer >= 1, got {f}={value!r}")
        for f in ("eval_every", "eval_episodes"):
            value = getattr(self, f)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{f} must be an integer >= 0, got {f}={value!r}")
        if self.eval_every and self.eval_episodes < 1:
            raise ValueError(f"eval_every > 0 needs eval_episodes >= 1, got {self.eval_episodes=}")
        if self.val_max_windows < 1:
            raise ValueError(f"val_max_windows must be >= 1, got {self.val_max_windows=}")
        if not (self.lr > 0 and 0 <= self.min_lr <= self.lr):
            raise ValueError(f"need lr > 0 and 0 <= min_lr <= lr, got {self.lr=}, {self.min_lr=}")
        if self.weight_decay < 0 or self.grad_clip < 0 or self.warmup_epochs < 0:
            raise ValueError(
                "weight_decay, grad_clip and warmup_epochs must be >= 0, got "
                f"{self.weight_decay=}, {self.grad_clip=}, {self.warmup_epochs=}"
            )
        if self.device not in ("cpu", "cuda", "auto") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {self.device=}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or None, got {self.num_threads=}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {self.precision=}")
        if not isinstance(self.policy_overrides, dict):
            raise TypeError(f"policy_overrides must be a dict, got {self.policy_overrides!r}")
        # Fail now, not after loading the data: the overrides must be fields of the policy config.
        cfg_cls = get_policy_class(self.policy).config_class
        known = {f.name for f in dataclasses.fields(cfg_cls)}
        unknown = sorted(set(self.policy_overrides) - known)
        if unknown:
            raise ValueError(
                f"policy_overrides has unknown field(s) {unknown} for policy {self.policy!r}; "
                f"known: {sorted(known)}"
            )

    @property
    def run_dir(self) -> Path:
        """The run folder, ``output_dir / run_name``."""
        if self.run_name:
            return Path(self.output_dir) / self.run_name
        slug = self.dataset.removeprefix("lnmdn/").replace("/", "-")
        return (
            Path(self.output_dir) / f"{slug}_{self.policy}_frac{self.fraction:.4g}_seed{self.seed}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)


# -- small pieces -------------------------------------------------------------------------------
def _derived_seed(*parts: int) -> int:
    """A 63-bit seed from integers (stable across processes and Python versions)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def lr_at(step: int, total_steps: int, warmup_steps: int, lr: float, min_lr: float) -> float:
    """Learning rate at optimiser step ``step``: linear warm-up, then cosine decay to ``min_lr``."""
    if warmup_steps > 0 and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def _dist_info(device: str) -> tuple[int, int, int]:
    """(rank, local_rank, world_size), initialising the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 0, 1
    if not dist.is_initialized():
        cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), dist.get_world_size()


def _resolve_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device={name!r} but CUDA is not available; use --device cpu")
        if name == "cuda":
            return torch.device("cuda", local_rank)
    return torch.device(name)


def _batches(n: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The epoch's global batches of window indices (seeded permutation, last partial dropped)."""
    perm = np.random.default_rng(_derived_seed(seed, epoch, 17)).permutation(n)
    n_full = n // batch_size
    return [perm[i * batch_size : (i + 1) * batch_size] for i in range(n_full)]


# -- checkpoints --------------------------------------------------------------------------------
def _save_checkpoint(
    run_dir: Path,
    epoch: int,
    step: int,
    policy: PolicyBase,
    ema: PolicyBase | None,
    optimizer: torch.optim.Optimizer,
    keep: int,
) -> Path:
    """Write ``checkpoints/epoch_NNNN`` atomically (temp folder + rename), then ``latest.json``."""
    ckpt_root = run_dir / CHECKPOINT_DIR
    ckpt_root.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for k, v in policy.state_dict().items():
        tensors[f"model.{k}"] = v.detach().cpu().contiguous()
    if ema is not None:
        for k, v in ema.state_dict().items():
            tensors[f"ema.{k}"] = v.detach().cpu().contiguous()
    opt_state = optimizer.state_dict()
    for pid, st in opt_state["state"].items():
        for k, v in st.items():
            if not isinstance(v, torch.Tensor):
                raise TypeError(f"optimizer state {pid}.{k} is not a tensor: {v!r}")
            tensors[f"optim.{pid}.{k}"] = v.detach().cpu().contiguous()
    meta = {
        "epoch": epoch,
        "step": step,
        "param_groups": opt_state["param_groups"],
        "policy": policy.config.to_dict(),
    }
    tmp = Path(tempfile.mkdtemp(dir=ckpt_root, prefix=".tmp_"))
    try:
        tmp.chmod(0o777 & ~current_umask())  # mkdtemp's 0700 would hide the checkpoint
        save_file(tensors, str(tmp / "state.safetensors"))
        (tmp / "state.safetensors").chmod(0o666 & ~current_umask())  # safetensors writes 0600
        (tmp / "state.json").write_text(json.dumps(meta, indent=1) + "\n")
        final = ckpt_root / f"epoch_{epoch:04d}"
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(ckpt_root / "latest.json", json.dumps({"path": final.name, "epoch": epoch}))
    old = sorted(p for p in ckpt_root.glob("epoch_*") if p.is_dir())
    for p in old[:-keep]:
        shutil.rmtree(p, ignore_errors=True)
    return final


def _load_checkpoint(
    run_dir: Path, policy: PolicyBase, ema: PolicyBase | None, optimizer: torch.optim.Optimizer
) -> tuple[int, int]:
    """Restore the latest checkpoint; returns (completed epochs, optimiser steps)."""
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
        ema.load_state_dict(part("ema."))
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in part("optim.").items():
        pid, name = k.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return int(meta["epoch"]), int(meta["step"])


# -- validation ---------------------------------------------------------------------------------
@torch.no_grad()
def _validate(
    policy: PolicyBase, data: WindowDataset, max_windows: int, seed: int, device: torch.device
) -> dict[str, float]:
    """``val/loss`` (the training loss) and, for density models, ``val/nll`` per action element."""
    if len(data) == 0:
        return {}
    n = min(len(data), max_windows)
    idx = np.sort(np.random.default_rng(_derived_seed(seed, 99)).permutation(len(data))[:n])
    obs_np, act_np = data.window_arrays(idx)
    was_training = policy.training
    policy.eval()
    rng_state = torch.get_rng_state()
    torch.manual_seed(_derived_seed(seed, 1234))  # same noise for every validation
    losses, nlls, counts = [], [], []
    c = policy.config
    for s in range(0, n, 256):
        obs = torch.from_numpy(obs_np[s : s + 256]).to(device)
        act = torch.from_numpy(act_np[s : s + 256]).to(device)
        loss, _ = policy.compute_loss({"obs": obs, "action": act})
        losses.append(float(loss) * len(obs))
        counts.append(len(obs))
        log_prob = getattr(policy, "log_prob", None)
        if callable(log_prob):
            nlls.append(float(-log_prob(obs, act).sum()) / (c.horizon * c.action_dim))
    torch.set_rng_state(rng_state)
    policy.train(was_training)
    out = {"val/loss": sum(losses) / sum(counts)}
    if nlls:
        out["val/nll"] = sum(nlls) / sum(counts)
    return out


def _validate_closed_loop(
    policy: PolicyBase, config: TrainConfig, env_id: str, seed: int
) -> dict[str, float]:
    """``eval/success_rate`` and ``eval/mean_score`` on the validation seeds (sync envs)."""
    from lnmdn_agents.evaluation.rollout import evaluate

    was_training = policy.training
    policy.eval()
    seeds = list(range(VALIDATION_SEED_BASE, VALIDATION_SEED_BASE + config.eval_episodes))
    with torch.random.fork_rng(devices=[]):
        result = evaluate(
            policy,
            env_id,
            n_episodes=config.eval_episodes,
            seeds=seeds,
            n_envs=min(10, config.eval_episodes),
            progress=False,
            deterministic=config.eval_deterministic,
            vectorization_mode="sync",
            torch_seed=seed,
        )
    policy.train(was_training)
    return {
        "eval/success_rate": float(result["success_rate"]),
        "eval/mean_score": float(result["mean_score"]),
        "eval/mean_length": float(result["mean_length"]),
    }


# -- progress and TensorBoard ------------------------------------------------------------------
def _tensorboard_writer(run_dir: Path, step: int) -> Any:
    """A TensorBoard ``SummaryWriter`` on ``run_dir``, or None when tensorboard is not installed.

    Events at optimiser steps after ``step`` (left by an interrupted run past its checkpoint) are
    purged, as ``metrics.jsonl`` drops their lines.
    """
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    run_dir.mkdir(parents=True, exist_ok=True)
    return SummaryWriter(log_dir=str(run_dir), purge_step=step + 1 if step > 0 else None)


def _report_epoch(record: dict[str, Any], n_epochs: int, bar: Any, tensorboard: Any) -> None:
    """Send one epoch's record to TensorBoard (the keys of metrics.jsonl) and, barless, the log."""
    if tensorboard is not None:
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)):
                tensorboard.add_scalar(key, value, global_step=record["step"])
        tensorboard.flush()
    if bar.disable:
        shown = [
            f"{k} {record[k]:.4g}"
            for k in ("train/loss", "val/loss", "val/nll", "eval/success_rate", "eval/mean_score")
            if isinstance(record.get(k), (int, float))
        ]
        logger.info(
            "epoch %d/%d: %s (%.1f s)",
            record["epoch"] + 1,
            n_epochs,
            ", ".join(shown),
            record.get("charts/epoch_time_s", float("nan")),
        )


# -- the run folder -----------------------------------------------------------------------------
def _holds_run(run_dir: Path) -> bool:
    return (run_dir / CHECKPOINT_DIR / "latest.json").is_file() or (
        run_dir / "model.safetensors"
    ).is_file()


def _checkpoint_epoch(run_dir: Path) -> int:
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


def _check_run_folder(
    config: TrainConfig, resume: bool, overwrite: bool, rank: int, world: int
) -> None:
    """Refuse a clash with a run already in the folder; ``overwrite`` deletes it (rank 0)."""
    run_dir = config.run_dir
    saved_cfg_path = run_dir / "train_config.json"
    if resume and overwrite:
        raise ValueError(
            f"--resume and --overwrite exclude each other: --resume continues the run in "
            f"{run_dir}, --overwrite deletes it and trains again; pass one"
        )
    if resume:
        if saved_cfg_path.is_file():
            saved = json.loads(saved_cfg_path.read_text())
            ignored = ("progress", "num_threads", "device", "epochs")
            given = json.loads(json.dumps(config.to_dict()))  # as saved: tuples are lists
            diff = {
                k: (saved.get(k), v)
                for k, v in given.items()
                if k not in ignored and saved.get(k) != v
            }
            if diff:
                raise ValueError(
                    f"--resume with a different config than {saved_cfg_path}: "
                    f"{{field: (saved, given)}} = {diff}; use the same settings (only --epochs "
                    "may change), a new --run-name, or --overwrite"
                )
            done = _checkpoint_epoch(run_dir)
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
        if not (run_dir / CHECKPOINT_DIR / "latest.json").is_file():
            logger.warning("no checkpoint in %s: starting from scratch", run_dir)
    elif overwrite:
        if rank == 0 and _holds_run(run_dir):
            logger.warning("--overwrite: deleting the run in %s", run_dir)
            trash = run_dir.with_name(f".{run_dir.name}.deleted-{os.getpid()}")
            os.replace(run_dir, trash)  # the folder disappears at once, whole
            shutil.rmtree(trash, ignore_errors=True)
        if world > 1:
            dist.barrier()  # no process starts before the old run is gone
    elif _holds_run(run_dir):
        raise FileExistsError(
            f"{run_dir} already holds a run; pass --resume to continue it (--resume --epochs N "
            "extends a finished one), --overwrite to delete it and train again, or choose "
            "another --output-dir / --run-name"
        )


# -- the loop -----------------------------------------------------------------------------------
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

    rank, local_rank, world = _dist_info(config.device)
    if config.batch_size % world:
        raise ValueError(
            f"batch_size must be divisible by the number of processes, got "
            f"{config.batch_size=} with {world} processes"
        )
    device = _resolve_device(config.device, local_rank)
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    run_dir = config.run_dir
    ckpt_latest = run_dir / CHECKPOINT_DIR / "latest.json"
    saved_cfg_path = run_dir / "train_config.json"
    _check_run_folder(config, resume, overwrite, rank, world)

    # Data: dimensions come from the dataset.
    eps = list(episodes) if episodes is not None else load_episodes(config.dataset)
    if not eps:
        raise ValueError("training needs at least one episode")
    cfg_cls = get_policy_class(config.policy).config_class
    policy_config = cfg_cls(
        **{**config.policy_overrides, "obs_dim": eps[0].obs_dim, "action_dim": eps[0].action_dim}
    )
    splits = make_splits(eps, policy_config, seed=config.split_seed, fraction=config.fraction)
    n_train = len(splits.train)
    batch_size = config.batch_size
    if n_train < batch_size:
        batch_size = max(world, n_train - n_train % world)
        if n_train < world:
            raise ValueError(f"{n_train} training windows cannot feed {world} processes")
        logger.warning(
            "only %d training windows: batch_size %d -> %d", n_train, config.batch_size, batch_size
        )
    steps_per_epoch = n_train // batch_size
    total_steps = steps_per_epoch * config.epochs
    # A short run (a demo, a test) still reaches the peak and decays: warm-up <= 10% of the run.
    warmup_steps = min(round(config.warmup_epochs * steps_per_epoch), total_steps // 10)

    # Model, EMA, optimiser.
    torch.manual_seed(config.seed)
    policy = make_policy(config.policy, policy_config, stats=splits.stats).to(device)
    policy.train()
    ema: PolicyBase | None = None
    if policy.ema_decay(0) is not None:
        ema = copy.deepcopy(policy).eval()
        ema.requires_grad_(False)
    decay_params = [p for p in policy.parameters() if p.requires_grad and p.ndim >= 2]
    other_params = [p for p in policy.parameters() if p.requires_grad and p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay_params, "weight_decay": config.weight_decay},
            {"params": other_params, "weight_decay": 0.0},
        ],
        lr=config.lr,
    )
    start_epoch, step = 0, 0
    if resume and ckpt_latest.is_file():
        start_epoch, step = _load_checkpoint(run_dir, policy, ema, optimizer)
        logger.info("resuming %s after epoch %d (step %d)", run_dir, start_epoch, step)
    model: nn.Module = policy
    if world > 1:
        model = nn.parallel.DistributedDataParallel(
            policy,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True,
        )

    metrics_path = run_dir / "metrics.jsonl"
    train_seconds, best_score = 0.0, -math.inf
    eval_env = None
    if config.eval_every:
        from lnmdn_agents.evaluation.runs import env_for_dataset

        eval_env = config.eval_env or env_for_dataset(config.dataset)
        if episodes is None:
            from lnmdn_agents.evaluation.rollout import check_seeds_disjoint

            check_seeds_disjoint(
                range(VALIDATION_SEED_BASE, VALIDATION_SEED_BASE + config.eval_episodes),
                config.dataset,
            )
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(saved_cfg_path, json.dumps(config.to_dict(), indent=2) + "\n")
        # Keep only the metrics of checkpointed epochs (a crash may have logged more).
        kept = []
        if metrics_path.is_file():
            for line in metrics_path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if rec.get("epoch", 0) < start_epoch:
                    kept.append(line)
                    train_seconds += float(rec.get("charts/epoch_time_s", 0.0))
                    if "eval/mean_score" in rec:
                        best_score = max(best_score, float(rec["eval/mean_score"]))
        atomic_write_text(metrics_path, "".join(f"{line}\n" for line in kept))
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
    obs_np, act_np = splits.train.window_arrays()
    obs_all, act_all = torch.from_numpy(obs_np), torch.from_numpy(act_np)
    params = [p for p in policy.parameters() if p.requires_grad]
    tensorboard = _tensorboard_writer(run_dir, step) if rank == 0 else None
    bar = tqdm(
        total=total_steps,
        initial=step,
        # a bar on a terminal only (disable=None): in a log file its redraws are noise
        disable=True if (rank != 0 or not config.progress) else None,
        desc=f"{config.policy}",
        dynamic_ncols=True,
    )
    autocast = PRECISIONS[config.precision] is torch.bfloat16
    for epoch in range(start_epoch, config.epochs):
        hook = getattr(policy, "on_epoch_start", None)
        if callable(hook):
            hook(epoch, config.epochs)
        if ema is not None and callable(getattr(ema, "on_epoch_start", None)):
            ema.on_epoch_start(epoch, config.epochs)  # type: ignore[operator]
        torch.manual_seed(_derived_seed(config.seed, epoch, rank))
        t0 = time.perf_counter()
        sums: dict[str, float] = {}
        for batch_idx in _batches(n_train, batch_size, config.seed, epoch):
            local = torch.from_numpy(batch_idx[rank::world])
            batch = {"obs": obs_all[local].to(device), "action": act_all[local].to(device)}
            lr = lr_at(step, total_steps, warmup_steps, config.lr, config.min_lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                loss, info = model(batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"non-finite loss {float(loss)} at epoch {epoch}, step {step}; lower lr "
                    f"(now {lr:.3g}) or check the data"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                gnorm = float(nn.utils.clip_grad_norm_(params, config.grad_clip))
                sums["train/grad_norm"] = sums.get("train/grad_norm", 0.0) + gnorm
            optimizer.step()
            step += 1
            if ema is not None:
                decay = policy.ema_decay(step)
                assert decay is not None
                with torch.no_grad():
                    for pe, p in zip(ema.parameters(), policy.parameters(), strict=True):
                        pe.mul_(decay).add_(p.detach(), alpha=1.0 - decay)
                    for be, b in zip(ema.buffers(), policy.buffers(), strict=True):
                        be.copy_(b)
            sums["train/loss"] = sums.get("train/loss", 0.0) + float(loss.detach())
            for k, v in info.items():
                sums[f"train/{k}"] = sums.get(f"train/{k}", 0.0) + float(v)
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{float(loss.detach()):.4f}")
        elapsed = time.perf_counter() - t0
        done = epoch + 1
        if rank == 0:
            record: dict[str, Any] = {"epoch": epoch, "step": step}
            record.update({k: v / max(1, steps_per_epoch) for k, v in sums.items()})
            record["train/lr"] = lr_at(
                max(0, step - 1), total_steps, warmup_steps, config.lr, config.min_lr
            )
            if done % config.val_every == 0 or done == config.epochs:
                record.update(
                    _validate(
                        ema if ema is not None else policy,
                        splits.val,
                        config.val_max_windows,
                        config.seed,
                        device,
                    )
                )
            if eval_env is not None and (done % config.eval_every == 0 or done == config.epochs):
                final_policy = ema if ema is not None else policy
                record.update(_validate_closed_loop(final_policy, config, eval_env, config.seed))
                if record["eval/mean_score"] > best_score:
                    best_score = record["eval/mean_score"]
                    save_policy(
                        final_policy,
                        run_dir / BEST_DIR,
                        extra={"epoch": done, "step": step, **{
                            k: v for k, v in record.items() if k.startswith("eval/")
                        }},
                    )  # fmt: skip
            train_seconds += elapsed
            record["charts/samples_per_sec"] = steps_per_epoch * batch_size / max(elapsed, 1e-9)
            record["charts/epoch_time_s"] = elapsed
            record["charts/train_minutes"] = train_seconds / 60.0
            record["charts/processes"] = world
            with metrics_path.open("a") as f:
                f.write(json.dumps(record) + "\n")
            _report_epoch(record, config.epochs, bar, tensorboard)
            if done % config.checkpoint_every == 0 or done == config.epochs:
                final_policy = ema if ema is not None else policy
                save_policy(final_policy, run_dir, extra={"epoch": done, "step": step})
                _save_checkpoint(
                    run_dir, done, step, policy, ema, optimizer, config.keep_checkpoints
                )
        if world > 1:
            dist.barrier()
    bar.close()
    if tensorboard is not None:
        tensorboard.close()
    if rank == 0 and start_epoch >= config.epochs:
        logger.info("%s already finished (%d epochs)", run_dir, config.epochs)
    return run_dir


# -- command line -------------------------------------------------------------------------------
def _attribute_docs(cls: type) -> dict[str, str]:
    """``{field: help}`` from the Google-style ``Attributes:`` section, as plain terminal text."""
    return {k: plain_help(v) for k, v in attribute_docs(cls).items()}


def _parse_overrides(items: list[str], policy: str | None = None) -> dict[str, Any]:
    """``--set`` items -> policy config overrides.

    With ``policy``, each value is parsed as its field's type (``down_dims=24,48,48`` -> a tuple,
    ``clip_sample=false`` -> False) and unknown fields are refused; without it, values are JSON
    or bare strings (``["d_model=128", "down_dims=[64,128]"]`` -> ``{"d_model": 128,
    "down_dims": [64, 128]}``).
    """
    cfg_cls = get_policy_class(policy).config_class if policy is not None else None
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(
                f"--set expects FIELD=VALUE, e.g. --set d_model=128, got {item!r} "
                "(`lnmdn policies NAME` lists the fields)"
            )
        if cfg_cls is not None:
            out[key] = parse_field_value(cfg_cls, key, raw)
            continue
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw  # a bare string, e.g. sampler=ddim
    return out


def _make_train_command() -> Any:
    """The ``lnmdn train`` command, its options generated from :class:`TrainConfig`'s fields."""
    import typer

    helps = _attribute_docs(TrainConfig)
    hints = typing.get_type_hints(TrainConfig)
    params = []
    for f in dataclasses.fields(TrainConfig):
        if f.name == "policy_overrides":
            continue
        flag = f.name.replace("_", "-")
        tp = hints[f.name]
        decls = [f"--{flag}/--no-{flag}"] if tp is bool else [f"--{flag}"]
        option = typer.Option(f.default, *decls, help=helps.get(f.name, ""))
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                        annotation=tp))  # fmt: skip
    extra = [
        (
            "set_",
            typer.Option(
                [],
                "--set",
                metavar="FIELD=VALUE",
                help="Set a policy config field; repeat for more: --set d_model=128 --set "
                "down_dims=24,48,48 --set clip_sample=false. lnmdn policies NAME lists the "
                "fields, their types and defaults.",
            ),
            list[str],
        ),
        (
            "recipe",
            typer.Option(
                None,
                "--recipe",
                help="Start from a committed recipe, e.g. pusht/liquid_mdn (lnmdn recipes); "
                "options given here replace its values.",
            ),
            str | None,
        ),
        (
            "resume",
            typer.Option(
                False,
                "--resume",
                help="Continue the run folder's checkpoint; with a larger --epochs, extend a "
                "finished run.",
            ),
            bool,
        ),
        (
            "overwrite",
            typer.Option(
                False, "--overwrite", help="Delete the run already in the run folder and retrain."
            ),
            bool,
        ),
    ]
    for name, option, annotation in extra:
        params.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation
            )
        )
    params.append(
        inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
    )

    def train_command(**kwargs: Any) -> None:
        set_items = kwargs.pop("set_")
        resume = kwargs.pop("resume")
        overwrite = kwargs.pop("overwrite")
        recipe_name = kwargs.pop("recipe")
        ctx = kwargs.pop("ctx")
        if recipe_name is None:
            get_policy_class(kwargs["policy"])  # an unknown policy is named before its --set
            overrides = _parse_overrides(set_items, kwargs["policy"])
            config = TrainConfig(**kwargs, policy_overrides=overrides)
        else:
            from lnmdn_agents.recipes import load_recipe

            recipe = load_recipe(recipe_name)
            # By name: typer bundles its own click, whose ParameterSource is another enum class.
            given = {
                k: v
                for k, v in kwargs.items()
                if getattr(ctx.get_parameter_source(k), "name", None) == "COMMANDLINE"
            }
            policy = str(given.get("policy", recipe.policy))
            overrides = _parse_overrides(set_items, policy)
            merged = {**recipe.train.get("policy_overrides", {}), **overrides}
            config = recipe.train_config(**given, policy_overrides=merged)
        run_dir = train(config, resume=resume, overwrite=overwrite)
        logger.info("run folder: %s", run_dir)

    train_command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    train_command.__annotations__ = {p.name: p.annotation for p in params}
    train_command.__doc__ = (
        "Train a policy on a Minari dataset; writes config.json, model.safetensors, "
        "metrics.jsonl and checkpoints/ to the run folder. Policies: "
        + ", ".join(available_policies())
        + "."
    )
    return train_command


train_command = _make_train_command()
