"""The datasets' one episode record: what Minari stores for an episode, and its content checksum.

Experts (:func:`lnmdn_datasets.experts.rollout_expert`), converters, recipes and the Minari I/O
all make or read :class:`EpisodeRecord`; :func:`content_checksum` fingerprints a list of them
(the ``content_sha256`` every dataset records, which ``lnmdn datasets verify`` checks).

``lnmdn_agents.data.Episode`` is a separate, narrower type on purpose: the training view of an
episode (float32 observation and action arrays only, flattened and checked finite), made from
a stored dataset when a policy trains.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["EpisodeRecord", "content_checksum"]


@dataclass
class EpisodeRecord:
    """One episode as Minari stores it (L steps), from an expert, a converter or a dataset.

    Attributes:
        observations: (L + 1, Do); the last one follows the last action. A dict of such arrays
            for dict observation spaces (e.g. D4RL's PointMaze layout).
        actions: (L, Da), as executed.
        rewards: (L,).
        terminations: (L,) bool.
        truncations: (L,) bool.
        infos: per-step extras, each (L + 1, ...): index 0 from ``reset``, index t + 1 from the
            step of ``actions[t]`` (Minari's convention). An expert's episode has ``"state"``
            (``(L + 1, S)`` float64, ``env.unwrapped.get_state()`` before each action and after
            the last, what ``reset(options={"reset_to_state": ...})`` takes, for replay),
            ``"is_success"`` (bool) and ``"score"`` (float), the env's ``info`` values.
        seed: the ``env.reset(seed=...)`` seed of the episode, or None.
    """

    observations: Any
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    infos: dict[str, np.ndarray] = field(default_factory=dict)
    seed: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.observations, dict):
            self.observations = {k: np.asarray(v) for k, v in self.observations.items()}
            n_obs = {len(v) for v in self.observations.values()}
            if len(n_obs) != 1:
                raise ValueError(f"observation dict entries differ in length: {sorted(n_obs)}")
            n_observations = n_obs.pop()
        else:
            self.observations = np.asarray(self.observations)
            n_observations = len(self.observations)
        self.actions = np.asarray(self.actions)
        self.rewards = np.asarray(self.rewards, dtype=np.float64).reshape(-1)
        self.terminations = np.asarray(self.terminations, dtype=bool).reshape(-1)
        self.truncations = np.asarray(self.truncations, dtype=bool).reshape(-1)
        self.infos = {k: np.asarray(v) for k, v in self.infos.items()}
        n = len(self.actions)
        if n < 1 or n_observations != n + 1:
            raise ValueError(
                f"an episode needs L >= 1 actions and L + 1 observations, got "
                f"{n_observations} observations and {n} actions"
            )
        for name in ("rewards", "terminations", "truncations"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} must have L={n} entries, got {len(getattr(self, name))}")
        for key, value in self.infos.items():
            if len(value) != n + 1:
                raise ValueError(
                    f"infos[{key!r}] must have L + 1 = {n + 1} entries, got {len(value)}"
                )

    def __len__(self) -> int:
        """L, the number of steps."""
        return len(self.actions)

    @property
    def success(self) -> bool:
        """Whether the episode ended in success: ``infos["is_success"]`` after its last step.

        Raises:
            KeyError: the episode records no ``is_success`` (e.g. converted from a source
                without it).
        """
        if "is_success" not in self.infos:
            raise KeyError(
                f"this episode records no infos['is_success'] (its infos: {sorted(self.infos)}), "
                "so its success is unknown"
            )
        return bool(self.infos["is_success"][-1])


# -- content checksum ---------------------------------------------------------------------------
def _hash_array(h: Any, name: str, value: Any) -> None:
    if isinstance(value, dict):
        for key in sorted(value):
            _hash_array(h, f"{name}.{key}", value[key])
        return
    arr = np.ascontiguousarray(np.asarray(value))
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    h.update(f"{name}|{arr.dtype.str}|{arr.shape}|".encode())
    h.update(arr.tobytes())


def content_checksum(episodes: Sequence[EpisodeRecord]) -> str:
    """SHA-256 of a dataset's content: every episode's arrays (values, dtypes, shapes) and seed.

    Two datasets with the same checksum hold bit-identical data; metadata (description, build
    time, versions) is not part of it.
    """
    h = hashlib.sha256()
    for i, ep in enumerate(episodes):
        h.update(f"episode {i} seed {ep.seed}|".encode())
        for name in ("observations", "actions", "rewards", "terminations", "truncations"):
            _hash_array(h, name, getattr(ep, name))
        _hash_array(h, "infos", ep.infos)
    return h.hexdigest()
