"""The settings of a training run: :class:`TrainConfig`, checked when it is built.

Every field is an option of ``lnmdn train`` (:mod:`lnmdn_agents.training.cli` generates them) and
a key of a committed recipe; the run folder keeps them in ``train_config.json``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lnmdn_agents.config_fields import check_field_types, check_ints, check_range
from lnmdn_agents.policies import PolicyConfig, get_policy_class
from lnmdn_agents.protocols import get_protocol, protocol_overrides

__all__ = [
    "PRECISIONS",
    "RUN_PLACE",
    "SELECTIONS",
    "VALIDATION_SEED_BASE",
    "TrainConfig",
    "config_diff",
    "native_bfloat16",
]

VALIDATION_SEED_BASE = 50_000
"""First closed-loop validation seed: above the dataset seeds, below the test seeds (100000+)."""
PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}
"""``TrainConfig.precision`` -> the autocast dtype of the training forward pass."""


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` does bfloat16 arithmetic in hardware.

    CPUs: AVX512-BF16 or AMX, as oneDNN reports it; without them autocast emulates bfloat16 in
    float32 units and trains several times *slower* than float32 (README, Training throughput).
    CUDA: compute capability 8.0 or later.
    """
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return True


SELECTIONS = ("best", "latest_within_se")
"""``TrainConfig.selection``: the rules that pick the checkpoint kept in ``<run>/best/``."""


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
            disables it. The checkpoint ``selection`` picks is kept in ``<run>/best/``.
        eval_env: env of the closed-loop validation; default: the env the dataset was recorded
            in.
        eval_episodes: closed-loop validation episodes, on seeds ``VALIDATION_SEED_BASE, ...``
            (disjoint from the dataset's seeds and from the test seeds 100000+).
        eval_deterministic: act with ``deterministic=True`` in the closed-loop validation.
        protocol: ``"standard"`` (To past observations, episode-level split) or ``"reference"``
            (the liquid-MDN paper's: the policy's observation window spans the horizon,
            ``obs_window="horizon"``, and the windows are split at random); see
            :mod:`lnmdn_agents.protocols`. Evaluation reads it from ``train_config.json``.
        selection: which validated checkpoint ``<run>/best/`` keeps (:data:`SELECTIONS`):
            ``"best"``, the highest ``eval/mean_score`` (the earliest of ties); or
            ``"latest_within_se"``, the latest whose score is within one standard error of
            the highest (the error of that highest mean over the validation episodes), so that
            a validation peak no larger than the validation's own noise does not outrank the
            checkpoints trained after it.
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
    protocol: str = "standard"
    selection: str = "best"

    def __post_init__(self) -> None:
        check_field_types(self)  # every field, named when its type is wrong
        get_policy_class(self.policy)  # unknown names list the known ones
        check_range(self, "fraction", gt=0, le=1)
        check_ints(
            self, "epochs", "batch_size", "val_every", "checkpoint_every", "keep_checkpoints"
        )
        check_ints(self, "val_max_windows")
        check_ints(self, "eval_every", "eval_episodes", minimum=0)
        if self.eval_every and self.eval_episodes < 1:
            raise ValueError(f"eval_every > 0 needs eval_episodes >= 1, got {self.eval_episodes=}")
        check_range(self, "lr", gt=0)
        check_range(self, "min_lr", ge=0)
        if self.min_lr > self.lr:
            raise ValueError(
                f"TrainConfig.min_lr must be <= lr, got min_lr={self.min_lr!r}, lr={self.lr!r}"
            )
        for f in ("weight_decay", "grad_clip", "warmup_epochs"):
            check_range(self, f, ge=0)
        if self.device not in ("cpu", "cuda", "auto") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {self.device=}")
        check_ints(self, "num_threads", none_ok=True)
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {self.precision=}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {list(SELECTIONS)}, got {self.selection=}")
        if not isinstance(self.policy_overrides, dict):
            raise TypeError(f"policy_overrides must be a dict, got {self.policy_overrides!r}")
        # Fail now, not after loading the data: the protocol must suit the policy, and the
        # overrides must be fields of the policy config.
        protocol_overrides(self.protocol, self.policy, self.policy_overrides)
        cfg_cls = get_policy_class(self.policy).config_class
        known = {f.name for f in dataclasses.fields(cfg_cls)}
        unknown = sorted(set(self.policy_overrides) - known)
        if unknown:
            raise ValueError(
                f"policy_overrides has unknown field(s) {unknown} for policy {self.policy!r}; "
                f"known: {sorted(known)}"
            )

    @property
    def split_unit(self) -> str:
        """What the protocol splits into train/val/test: ``"episode"`` or ``"window"``."""
        return get_protocol(self.protocol).split_unit

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

    def policy_config(self, obs_dim: int, action_dim: int) -> PolicyConfig:
        """The policy's config: its defaults, ``policy_overrides``, and the dataset's dimensions."""
        cfg_cls = get_policy_class(self.policy).config_class
        fields = protocol_overrides(self.protocol, self.policy, self.policy_overrides)
        return cfg_cls(**{**fields, "obs_dim": obs_dim, "action_dim": action_dim})


RUN_PLACE = frozenset({"output_dir", "run_name", "progress", "num_threads", "device"})
"""TrainConfig fields that say where and how visibly a run trains, not what it learns."""


ADDED_FIELDS: dict[str, Any] = {"precision": "float32", "protocol": "standard", "selection": "best"}
"""TrainConfig fields added after runs were saved -> the value those runs trained with."""


def config_diff(
    saved: dict[str, Any], config: TrainConfig, ignored: Iterable[str] = RUN_PLACE
) -> dict[str, tuple[Any, Any]]:
    """``{field: (saved, given)}``: where ``config`` differs from a saved ``train_config.json``.

    ``ignored`` fields are left out. A field missing from ``saved`` (written before the field
    existed) counts as what such runs did (:data:`ADDED_FIELDS`; otherwise the field's default),
    so older run folders stay comparable when a default changes; tuples compare equal to the
    lists JSON stores.
    """
    before = {**json.loads(json.dumps(TrainConfig().to_dict())), **ADDED_FIELDS}
    given = json.loads(json.dumps(config.to_dict()))
    skip = set(ignored)
    return {
        k: (saved.get(k, before[k]), v)
        for k, v in given.items()
        if k not in skip and saved.get(k, before[k]) != v
    }
