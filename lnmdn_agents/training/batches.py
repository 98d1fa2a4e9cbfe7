"""What each optimiser step sees: the seeded batch order and the global batch size.

Each epoch's batch order comes from ``(seed, epoch)`` alone, so a run resumed at an epoch boundary
replays the batches of the uninterrupted run; every other seed the trainer needs is derived from
the run's ``seed`` the same way (:func:`derived_seed`).
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np

__all__ = ["derived_seed", "epoch_batches", "fit_batch_size"]

logger = logging.getLogger(__name__)


def derived_seed(*parts: int) -> int:
    """A 63-bit seed from integers (stable across processes and Python versions)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The epoch's global batches of window indices (seeded permutation, last partial dropped)."""
    perm = np.random.default_rng(derived_seed(seed, epoch, 17)).permutation(n)
    n_full = n // batch_size
    return [perm[i * batch_size : (i + 1) * batch_size] for i in range(n_full)]


def fit_batch_size(batch_size: int, n_windows: int, world: int) -> int:
    """The global batch size: ``batch_size``, or all the windows when there are fewer.

    A smaller batch (logged as a warning) stays a multiple of the ``world`` processes, so that
    each gets an equal share.

    Raises:
        ValueError: fewer training windows than processes.
    """
    if n_windows >= batch_size:
        return batch_size
    fitted = max(world, n_windows - n_windows % world)
    if n_windows < world:
        raise ValueError(f"{n_windows} training windows cannot feed {world} processes")
    logger.warning("only %d training windows: batch_size %d -> %d", n_windows, batch_size, fitted)
    return fitted
