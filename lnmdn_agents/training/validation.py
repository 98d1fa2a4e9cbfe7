"""Validation during training: offline on the validation windows, and in closed loop on seeds.

- :func:`validate`: ``val/loss`` (the training loss) and, for density models, ``val/nll`` on up
  to ``val_max_windows`` validation windows, with the same noise at every validation.
- :func:`validate_closed_loop`: ``eval/success_rate``, ``eval/mean_score``, ``eval/mean_length``
  over ``eval_episodes`` episodes on the validation seeds ``VALIDATION_SEED_BASE, ...`` (above
  the dataset's seeds, below the test seeds 100000+, so selection never sees a test start).
- :class:`BestCheckpoint`: the checkpoint ``TrainConfig.selection`` picks, in ``<run>/best/``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lnmdn_agents.checkpoint import BEST_DIR, save_policy
from lnmdn_agents.training.batches import derived_seed
from lnmdn_agents.training.config import SELECTIONS, VALIDATION_SEED_BASE

if TYPE_CHECKING:
    from lnmdn_agents.data import WindowDataset
    from lnmdn_agents.policies import PolicyBase
    from lnmdn_agents.training.config import TrainConfig

__all__ = [
    "BEST_DIR",
    "BestCheckpoint",
    "closed_loop_env",
    "selected_epoch",
    "validate",
    "validate_closed_loop",
]


@torch.no_grad()
def validate(
    policy: PolicyBase, data: WindowDataset, max_windows: int, seed: int, device: torch.device
) -> dict[str, float]:
    """``val/loss`` (the training loss) and, for density models, ``val/nll`` per action element.

    The windows are a subset seeded by ``seed`` and the torch RNG is reseeded for the loss's
    noise (then restored), so every validation of a run measures the same thing.
    """
    if len(data) == 0:
        return {}
    n = min(len(data), max_windows)
    idx = np.sort(np.random.default_rng(derived_seed(seed, 99)).permutation(len(data))[:n])
    obs_np, act_np = data.window_arrays(idx)
    was_training = policy.training
    policy.eval()
    rng_state = torch.get_rng_state()
    torch.manual_seed(derived_seed(seed, 1234))  # same noise for every validation
    losses, nlls, counts = [], [], []
    c = policy.config
    for s in range(0, n, 256):
        obs = torch.from_numpy(obs_np[s : s + 256]).to(device)
        act = torch.from_numpy(act_np[s : s + 256]).to(device)
        loss, _ = policy.compute_loss({"obs": obs, "action": act})
        losses.append(float(loss) * len(obs))
        counts.append(len(obs))
        log_prob = getattr(policy, "log_prob", None)  # density models only
        if callable(log_prob):
            nlls.append(float(-log_prob(obs, act).sum()) / (c.horizon * c.action_dim))
    torch.set_rng_state(rng_state)
    policy.train(was_training)
    out = {"val/loss": sum(losses) / sum(counts)}
    if nlls:
        out["val/nll"] = sum(nlls) / sum(counts)
    return out


def closed_loop_env(
    config: TrainConfig, *, check_seeds: bool = True
) -> tuple[str, dict[str, Any]] | None:
    """The env of the closed-loop validation (id, task kwargs), or None when ``eval_every`` is 0.

    Args:
        config: the run's settings (``eval_env``, default: the env the dataset was recorded in).
        check_seeds: check that the validation seeds are none of the dataset's (off for
            in-memory demonstrations, which record no seeds).

    Raises:
        ValueError: a validation seed is one the dataset was recorded on.
    """
    if not config.eval_every:
        return None
    from lnmdn_agents.evaluation.runs import env_for_dataset, env_kwargs_for

    if config.eval_env is None:
        env_id, env_kwargs = env_for_dataset(config.dataset)
    else:
        env_id, env_kwargs = config.eval_env, env_kwargs_for(config.eval_env, config.dataset)
    if check_seeds:
        from lnmdn_agents.evaluation.seeds import check_seeds_disjoint

        check_seeds_disjoint(
            range(VALIDATION_SEED_BASE, VALIDATION_SEED_BASE + config.eval_episodes),
            config.dataset,
        )
    return env_id, env_kwargs


def validate_closed_loop(
    policy: PolicyBase, config: TrainConfig, env: tuple[str, dict[str, Any]]
) -> dict[str, float]:
    """``eval/success_rate``, ``eval/mean_score``, ``std_score``, ``mean_length``, ``episodes``.

    Sync envs, actions as ``eval_deterministic`` says, the policy's noise seeded by
    ``config.seed``; the caller's torch RNG is left as it was.
    """
    from lnmdn_agents.evaluation.rollout import evaluate
    from lnmdn_agents.evaluation.seeds import fork_torch_rng

    was_training = policy.training
    policy.eval()
    seeds = list(range(VALIDATION_SEED_BASE, VALIDATION_SEED_BASE + config.eval_episodes))
    with fork_torch_rng(policy):
        result = evaluate(
            policy,
            env[0],
            n_episodes=config.eval_episodes,
            env_kwargs=env[1],
            seeds=seeds,
            n_envs=min(10, config.eval_episodes),
            progress=False,
            deterministic=config.eval_deterministic,
            vectorization_mode="sync",
            torch_seed=config.seed,
        )
    policy.train(was_training)
    return {
        "eval/success_rate": float(result["success_rate"]),
        "eval/mean_score": float(result["mean_score"]),
        "eval/mean_length": float(result["mean_length"]),
        "eval/std_score": float(result["std_score"]),
        "eval/episodes": int(config.eval_episodes),
    }


class BestCheckpoint:
    """The checkpoint closed-loop validation selects so far, kept in ``<run>/best/``.

    ``selection`` (:data:`~lnmdn_agents.training.config.SELECTIONS`) says which:

    - ``"best"``: the highest ``eval/mean_score``; a tie keeps the earlier epoch.
    - ``"latest_within_se"``: the latest whose ``eval/mean_score`` is at least the highest so
      far minus one standard error of that highest mean: ``eval/std_score`` over the square
      root of ``eval/episodes``. A record without a std (logged before it was) counts the
      largest a score in [0, 1] with that mean can have, ``sqrt(m (1 - m))``, exact for a
      success rate; one without ``eval/episodes`` counts ``episodes``. The error is at least
      that of a perfect validation (n successes in n episodes) by the plus-four (Agresti-Coull)
      estimate, ``sqrt(q (1 - q) / (n + 4))`` with ``q = (n + 2) / (n + 4)`` (0.056 for 20
      episodes), since n episodes cannot show a success rate to be exactly 1. Offered in
      epoch order, each new checkpoint is the latest so far, so it replaces the kept one
      exactly when it lies in that band, and the band only moves when a new checkpoint sets
      the highest score (and is kept).

    The weights carry the epoch, the step and the ``eval/*`` metrics they were selected on
    (``lnmdn_agents.checkpoint.policy_metadata(run / "best")``).

    Args:
        directory: the folder to keep it in (``<run>/best``).
        records: the records already logged by the run (a resumed run's checkpointed epochs),
            in epoch order; those without ``eval/mean_score`` are skipped.
        selection: the rule.
        episodes: validation episodes of records that do not say (logged before
            ``eval/episodes`` was): the run's ``eval_episodes``.
    """

    def __init__(
        self,
        directory: Path,
        records: Iterable[dict[str, Any]] = (),
        selection: str = "best",
        episodes: int = 20,
    ):
        if selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {list(SELECTIONS)}, got {selection=}")
        self.directory = directory
        self.selection = selection
        self.episodes = int(episodes)
        self.score = -math.inf  # the highest score so far
        self.error = 0.0  # the standard error of that highest mean
        for record in records:
            if "eval/mean_score" in record:  # epochs without closed-loop validation pass by
                self._admits(record)

    def standard_error(self, record: dict[str, Any]) -> float:
        """One standard error of ``record["eval/mean_score"]`` over its validation episodes."""
        mean = float(record["eval/mean_score"])
        std = record.get("eval/std_score")
        if std is None:
            std = math.sqrt(max(mean * (1.0 - mean), 0.0))
        n = max(int(record.get("eval/episodes", self.episodes)), 1)
        q = (n + 2) / (n + 4)  # plus-four estimate of a perfect validation's success rate
        return max(float(std) / math.sqrt(n), math.sqrt(q * (1.0 - q) / (n + 4)))

    def _admits(self, record: dict[str, Any]) -> bool:
        score = float(record["eval/mean_score"])
        if score > self.score:
            self.score, self.error = score, self.standard_error(record)
            return True
        return self.selection == "latest_within_se" and score >= self.score - self.error

    def offer(self, policy: PolicyBase, record: dict[str, Any], epoch: int, step: int) -> bool:
        """Save ``policy`` if the rule selects it over the checkpoint kept so far.

        Args:
            policy: the policy as validated (the EMA weights when the run keeps an EMA).
            record: the epoch's metrics, with its ``eval/*`` keys.
            epoch: epochs done.
            step: optimiser steps done.

        Returns:
            Whether it was saved.
        """
        if not self._admits(record):
            return False
        evals = {k: v for k, v in record.items() if k.startswith("eval/")}
        save_policy(
            policy,
            self.directory,
            extra={"epoch": epoch, "step": step, "selection": self.selection, **evals},
        )
        return True


def selected_epoch(
    records: Iterable[dict[str, Any]], selection: str = "best", episodes: int = 20
) -> int | None:
    """The epoch (epochs done, as ``best/`` records it) whose checkpoint ``selection`` keeps.

    Replays the rule on a run's ``metrics.jsonl`` records (those with ``eval/mean_score``, in
    epoch order) without touching any weights; None when no record was validated.
    ``episodes``: the run's ``eval_episodes``, for records that do not log ``eval/episodes``.
    """
    rule = BestCheckpoint(Path(), selection=selection, episodes=episodes)
    kept = None
    for record in records:
        if "eval/mean_score" in record and rule._admits(record):
            kept = int(record["epoch"]) + 1
    return kept
