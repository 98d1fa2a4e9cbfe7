"""Train/val/test splits of the episodes (or windows), the training fractions, and make_splits.

Splits are episode-level and seeded (:func:`split_episodes`); ``make_splits(...,
split_unit="window")`` instead splits the windows of all episodes at random (the liquid-MDN
paper's reference protocol, :mod:`lnmdn_agents.protocols`: overlapping windows of one episode fall
on both sides). The training fractions
(:data:`TRAINING_FRACTIONS`) are nested subsets of the training episodes (:func:`fraction_subset`);
normalisation statistics come from the training episodes only
(:func:`~lnmdn_agents.data.windows.compute_stats`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lnmdn_agents.data.loading import load_episodes
from lnmdn_agents.data.windows import Episode, WindowDataset, compute_stats

if TYPE_CHECKING:
    from lnmdn_agents.policies.base import PolicyConfig

__all__ = [
    "SPLIT_UNITS",
    "TRAINING_FRACTIONS",
    "DataSplits",
    "fraction_subset",
    "make_splits",
    "split_episodes",
]

logger = logging.getLogger(__name__)

#: Training fractions ``10 ** (-2 + k / 3)`` for k = 0..5 (1% ... 46.42%), plus 100%.
TRAINING_FRACTIONS: tuple[float, ...] = (*(10 ** (-2 + k / 3) for k in range(6)), 1.0)


# -- splits and fractions -----------------------------------------------------------------------
def split_episodes(
    n_episodes: int, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15
) -> dict[str, np.ndarray]:
    """Episode-level train/val/test split, seeded.

    Args:
        n_episodes: number of episodes in the dataset.
        seed: permutation seed; the same seed gives the same split.
        val_fraction: share of episodes in validation (rounded; at least one when > 0).
        test_fraction: share of episodes in test (rounded; at least one when > 0).

    Returns:
        ``{"train", "val", "test"}``: sorted int64 episode indices, disjoint, covering
        ``range(n_episodes)``.

    Raises:
        ValueError: fractions outside [0, 1), summing to 1 or more, or too few episodes to leave
            at least one for training.
    """
    if not isinstance(n_episodes, (int, np.integer)) or n_episodes < 1:
        raise ValueError(f"n_episodes must be an integer >= 1, got {n_episodes!r}")
    for name, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= frac < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {name}={frac!r}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction must be < 1, got {val_fraction} + {test_fraction}"
        )
    n_val = max(1, round(n_episodes * val_fraction)) if val_fraction > 0 else 0
    n_test = max(1, round(n_episodes * test_fraction)) if test_fraction > 0 else 0
    if n_episodes - n_val - n_test < 1:
        raise ValueError(
            f"{n_episodes} episodes leave none for training with val_fraction={val_fraction} "
            f"and test_fraction={test_fraction}; use more episodes or smaller fractions"
        )
    perm = np.random.default_rng(seed).permutation(n_episodes).astype(np.int64)
    return {
        "train": np.sort(perm[n_val + n_test :]),
        "val": np.sort(perm[:n_val]),
        "test": np.sort(perm[n_val : n_val + n_test]),
    }


def fraction_subset(train_indices: Sequence[int] | np.ndarray, fraction: float, seed: int = 0):
    """A seeded subset of the training episodes; smaller fractions are nested in larger ones.

    The indices are permuted once by ``seed``; a fraction keeps the first
    ``max(1, round(fraction * n))`` of that permutation, so for one seed every subset contains
    every smaller one.

    Args:
        train_indices: episode indices of the training split.
        fraction: share to keep, in (0, 1] (see :data:`TRAINING_FRACTIONS`).
        seed: permutation seed.

    Returns:
        Sorted int64 array of episode indices (at least one).

    Raises:
        ValueError: fraction outside (0, 1] or no training indices.
    """
    if not (isinstance(fraction, (float, int)) and 0.0 < fraction <= 1.0) or math.isnan(fraction):
        raise ValueError(
            f"fraction must be in (0, 1], got fraction={fraction!r}; "
            f"the paper's fractions are {[round(f, 4) for f in TRAINING_FRACTIONS]}"
        )
    idx = np.asarray(train_indices, dtype=np.int64).reshape(-1)
    if len(idx) == 0:
        raise ValueError("train_indices is empty: no training episodes to take a fraction of")
    perm = np.random.default_rng(seed).permutation(idx)
    n_keep = max(1, round(fraction * len(idx)))
    return np.sort(perm[:n_keep])


# -- all together -------------------------------------------------------------------------------
@dataclass
class DataSplits:
    """Windows of the train/val/test episodes, and statistics of the training episodes.

    Attributes:
        train: windows over the training episodes (after the fraction).
        val: windows over the validation episodes (independent of the fraction).
        test: windows over the test episodes (independent of the fraction).
        stats: :func:`compute_stats` of the training episodes.
        episodes: episode indices per split, ``{"train", "val", "test"}`` (split by window:
            the episodes that give windows to each split, which overlap).
    """

    train: WindowDataset
    val: WindowDataset
    test: WindowDataset
    stats: dict[str, dict[str, np.ndarray]]
    episodes: dict[str, np.ndarray]


SPLIT_UNITS = ("episode", "window")
"""What :func:`make_splits` assigns to train/val/test: whole episodes, or single windows."""


def make_splits(
    dataset_id: str | Sequence[Episode],
    config: PolicyConfig,
    seed: int = 0,
    fraction: float = 1.0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_unit: str = "episode",
) -> DataSplits:
    """Load a dataset and cut it into windowed train/val/test splits.

    Args:
        dataset_id: a Minari id (see :func:`load_episodes`) or a list of episodes.
        config: the policy config (windows; ``obs_dim``/``action_dim`` must match the data).
        seed: seed of the split and of the fraction subset.
        fraction: share of the training episodes (windows, with ``split_unit="window"``) to
            keep, in (0, 1]; val and test do not change.
        val_fraction: share of episodes (or windows) for validation.
        test_fraction: share of episodes (or windows) for test.
        split_unit: ``"episode"`` (the standard protocol: no episode on two sides) or
            ``"window"`` (the reference protocol: every window of every episode drawn at random,
            so neighbouring, overlapping windows of one episode land in train and in test).

    Returns:
        :class:`DataSplits`; its stats come from the kept training episodes only (with
        ``"window"``: every episode that gives a training window, observations and actions).
    """
    if split_unit not in SPLIT_UNITS:
        raise ValueError(
            f'split_unit must be one of {SPLIT_UNITS}, got {split_unit!r} ("window" is the '
            "reference protocol's split)"
        )
    if not (isinstance(fraction, (float, int)) and 0.0 < fraction <= 1.0) or math.isnan(fraction):
        raise ValueError(f"fraction must be in (0, 1], got fraction={fraction!r}")
    episodes = load_episodes(dataset_id) if isinstance(dataset_id, str) else list(dataset_id)
    name = dataset_id if isinstance(dataset_id, str) else "the episodes"
    if not episodes:
        raise ValueError("make_splits needs at least one episode")
    do, da = episodes[0].obs_dim, episodes[0].action_dim
    if (do, da) != (config.obs_dim, config.action_dim):
        raise ValueError(
            f"{name} has Do={do}, Da={da} but the config has obs_dim={config.obs_dim}, "
            f"action_dim={config.action_dim}; build the policy with obs_dim={do}, action_dim={da}"
        )
    if split_unit == "window":
        return _split_windows(episodes, config, seed, fraction, val_fraction, test_fraction, name)
    split = split_episodes(len(episodes), seed, val_fraction, test_fraction)
    split["train"] = fraction_subset(split["train"], fraction, seed)
    parts = {k: WindowDataset([episodes[i] for i in v], config, v) for k, v in split.items()}
    stats = compute_stats([episodes[i] for i in split["train"]])
    logger.info(
        "%s: %d/%d/%d episodes, %d/%d/%d windows (train/val/test, fraction %.4f, seed %d)",
        name,
        *(len(split[k]) for k in ("train", "val", "test")),
        *(len(parts[k]) for k in ("train", "val", "test")),
        fraction,
        seed,
    )
    return DataSplits(parts["train"], parts["val"], parts["test"], stats, split)


def _split_windows(
    episodes: list[Episode],
    config: PolicyConfig,
    seed: int,
    fraction: float,
    val_fraction: float,
    test_fraction: float,
    name: str,
) -> DataSplits:
    """The reference protocol's split: a seeded random split of all windows.

    As the paper's ``random_split`` over windowed samples; then the training fraction of the
    training windows.
    """
    every = WindowDataset(episodes, config)
    # split_episodes' arithmetic (rounding, at least one each) on window indices
    split = split_episodes(len(every), seed, val_fraction, test_fraction)
    split["train"] = fraction_subset(split["train"], fraction, seed)
    parts = {k: every.select(v) for k, v in split.items()}
    used = {k: np.flatnonzero(parts[k].windows_per_episode) for k in parts}
    stats = compute_stats([episodes[i] for i in used["train"]])
    logger.info(
        "%s: %d/%d/%d windows (train/val/test, split by window, fraction %.4f, seed %d) from "
        "%d/%d/%d episodes",
        name,
        *(len(parts[k]) for k in ("train", "val", "test")),
        fraction,
        seed,
        *(len(used[k]) for k in ("train", "val", "test")),
    )
    return DataSplits(parts["train"], parts["val"], parts["test"], stats, used)
