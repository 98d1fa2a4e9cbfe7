"""The seeds of closed-loop evaluation, kept apart from the seeds that recorded the datasets.

Every evaluation episode gets its own seed, by default ``EVAL_SEED_BASE + i`` (100000, 100001,
..., like Diffusion Policy's test seeds); the datasets' experts use small seeds from their
recipe's base seed, and :func:`check_seeds_disjoint` verifies it against a dataset's episode
metadata.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "EVAL_SEED_BASE",
    "check_seeds_disjoint",
    "dataset_seeds",
    "eval_seeds",
    "fork_torch_rng",
]

logger = logging.getLogger(__name__)

EVAL_SEED_BASE = 100_000
"""First evaluation seed (Diffusion Policy's test seeds start here; dataset seeds stay below)."""


def fork_torch_rng(policy: Any) -> contextlib.AbstractContextManager[Any]:
    """``torch.random.fork_rng`` over the generators that ``policy``'s sampling draws from.

    The CPU generator always, and the generator of the policy's GPU when it runs on one
    (``torch.manual_seed`` inside reseeds both, so both are restored on exit).
    """
    import torch

    device = torch.device(getattr(policy, "device", "cpu"))
    if device.type != "cuda":
        return torch.random.fork_rng(devices=[])
    index = device.index if device.index is not None else torch.cuda.current_device()
    return torch.random.fork_rng(devices=[index])


def eval_seeds(n_episodes: int, start: int = EVAL_SEED_BASE) -> list[int]:
    """The default evaluation seeds: ``start, start + 1, ..., start + n_episodes - 1``."""
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes=}")
    return list(range(start, start + n_episodes))


def dataset_seeds(dataset_id: str) -> set[int] | None:
    """Reset seeds recorded in a Minari dataset's episode metadata (None when none are stored)."""
    import minari

    from lnmdn_agents.data import load_episodes

    load_episodes(dataset_id)  # installs the embedded data when needed, or fails clearly
    dataset = minari.load_dataset(dataset_id)
    seeds: set[int] = set()
    for meta in dataset.storage.get_episode_metadata(dataset.episode_indices):
        seed = meta.get("seed") if isinstance(meta, dict) else None
        if seed is not None and not (isinstance(seed, float) and math.isnan(seed)):
            seeds.add(int(np.asarray(seed).reshape(-1)[0]))
    return seeds or None


def check_seeds_disjoint(seeds: Sequence[int], dataset_id: str) -> bool:
    """Raise if an evaluation seed was used to record ``dataset_id``.

    Returns:
        True when the dataset records its seeds and none overlaps; False when the dataset
        stores no seeds (nothing could be checked; a warning is logged).

    Raises:
        ValueError: some evaluation seeds are dataset seeds (the message lists them).
    """
    used = dataset_seeds(dataset_id)
    if used is None:
        logger.warning("%s stores no episode seeds; evaluation seeds not checked", dataset_id)
        return False
    overlap = sorted(set(int(s) for s in seeds) & used)
    if overlap:
        raise ValueError(
            f"evaluation seeds {overlap[:10]} (of {len(overlap)}) were used to record "
            f"{dataset_id}; evaluate on unseen initial states, e.g. seeds from "
            f"{EVAL_SEED_BASE} (the default)"
        )
    return True
