"""Episodes as a policy trains on them, their (To, T) windows, and their normalisation statistics.

Minari stores whole episodes; policies train on windows declared by their config::

    obs window   :  |o(t-1)|o(t)|                               (To = n_obs_steps)
    action window:  |a(t-1)|a(t) ... a(t+14)|                   (T = horizon, starts at t-To+1)

Windows follow Diffusion Policy's ``SequenceSampler`` with ``pad_before = To - 1`` and
``pad_after = Ta - 1``: every step t of an episode of L actions with
``0 <= t <= L - 1 - (T - To) + (Ta - 1)`` starts a window, and an index that falls outside the
episode repeats the episode's first or last step. An episode of L actions gives
``L - T + To + Ta - 1`` windows (Push-T with T=16, To=2, Ta=8: ``L - 7``). No window crosses
episodes.

Normalisation statistics (:func:`compute_stats`, per-dimension min and max) come from the
training episodes only; the policy normalises with them.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

if TYPE_CHECKING:
    from lnmdn_agents.policies.base import PolicyConfig

__all__ = ["Episode", "WindowDataset", "compute_stats"]

logger = logging.getLogger(__name__)


@dataclass
class Episode:
    """One demonstration as a policy trains on it, in Minari's convention (L + 1 obs, L actions).

    This is the training view of an episode, not a second record type: the datasets' one
    episode record is :class:`lnmdn_datasets.episodes.EpisodeRecord` (rewards, flags, infos,
    seed, dict observations, the arrays' own dtypes), which experts, converters and the Minari
    I/O exchange. A policy needs only flat float32 observations and actions, checked finite,
    and tests and examples build such episodes from plain arrays (``Episode(obs, actions)``),
    with no rewards or infos to invent. :func:`load_episodes` makes them from a stored dataset
    (flattening D4RL's dict observations).

    Attributes:
        observations: (L + 1, Do) float32; ``observations[t]`` is seen before ``actions[t]``.
        actions: (L, Da) float32.
    """

    observations: np.ndarray
    actions: np.ndarray

    def __post_init__(self) -> None:
        self.observations = np.ascontiguousarray(self.observations, dtype=np.float32)
        self.actions = np.ascontiguousarray(self.actions, dtype=np.float32)
        obs, act = self.observations, self.actions
        if obs.ndim != 2 or act.ndim != 2:
            raise ValueError(
                "an episode needs observations (L+1, Do) and actions (L, Da), got shapes "
                f"{obs.shape} and {act.shape}"
            )
        if len(act) < 1 or len(obs) != len(act) + 1:
            raise ValueError(
                "an episode needs L >= 1 actions and L + 1 observations (Minari's convention), "
                f"got {len(obs)} observations and {len(act)} actions"
            )
        for name, arr in (("observations", obs), ("actions", act)):
            if not np.isfinite(arr).all():
                raise ValueError(f"episode {name} contain NaN or inf; check the dataset")

    def __len__(self) -> int:
        """L, the number of actions."""
        return len(self.actions)

    @property
    def obs_dim(self) -> int:
        """Do."""
        return int(self.observations.shape[1])

    @property
    def action_dim(self) -> int:
        """Da."""
        return int(self.actions.shape[1])


class WindowDataset(Dataset[dict[str, torch.Tensor]]):
    """(To, T) windows over episodes, with Diffusion Policy's padding at episode edges.

    Args:
        episodes: the demonstrations (all with the same Do and Da).
        config: the policy config; its ``observation_delta_indices`` (To offsets),
            ``action_delta_indices`` (T offsets) and ``n_action_steps`` (Ta, for ``pad_after``)
            define the windows.

    Item ``i`` is ``{"obs": (To, Do) float32 tensor, "action": (T, Da) float32 tensor}`` in raw
    units (the policy normalises).

    Raises:
        ValueError: no episodes, mixed dimensions, or every episode too short for the config.
    """

    def __init__(
        self,
        episodes: Sequence[Episode],
        config: PolicyConfig,
        episode_ids: Sequence[int] | np.ndarray | None = None,
    ):
        self.episode_ids = np.asarray(
            range(len(episodes)) if episode_ids is None else episode_ids, dtype=np.int64
        )
        if len(self.episode_ids) != len(episodes):
            raise ValueError(
                f"episode_ids has {len(self.episode_ids)} entries for {len(episodes)} episodes"
            )
        self.obs_delta = np.asarray(config.observation_delta_indices, dtype=np.int64)
        self.action_delta = np.asarray(config.action_delta_indices, dtype=np.int64)
        self.n_action_steps = int(config.n_action_steps)
        if len(self.obs_delta) < 1 or len(self.action_delta) < 1:
            raise ValueError(f"config declares empty windows: {config!r}")
        episodes = list(episodes)
        dims = {(e.obs_dim, e.action_dim) for e in episodes}
        if len(dims) > 1:
            raise ValueError(f"episodes mix (Do, Da) dimensions: {sorted(dims)}")
        (do, da) = dims.pop() if dims else (config.obs_dim, config.action_dim)
        self.obs_dim, self.action_dim = do, da
        self.episode_lengths = np.asarray([len(e) for e in episodes], dtype=np.int64)
        # Observations aligned with actions: o(0..L-1); the final observation o(L) has no action
        # and never enters a window (as in Diffusion Policy's replay buffer).
        self._obs = (
            np.concatenate([e.observations[:-1] for e in episodes])
            if episodes
            else np.zeros((0, do), np.float32)
        )
        self._act = (
            np.concatenate([e.actions for e in episodes])
            if episodes
            else np.zeros((0, da), np.float32)
        )
        starts = np.concatenate([[0], np.cumsum(self.episode_lengths)[:-1]]).astype(np.int64)
        # pad_before = To - 1: the first window's current step is t = 0 (its earlier
        # observations repeat step 0). pad_after = Ta - 1: the action window's end overhangs the
        # episode's last action by at most Ta - 1 steps.
        t_first = 0
        overhang = self.n_action_steps - 1
        per_episode_t: list[np.ndarray] = []
        for length in self.episode_lengths:
            t_last = int(length) - 1 - int(self.action_delta.max()) + overhang
            per_episode_t.append(np.arange(t_first, t_last + 1, dtype=np.int64))
        counts = np.asarray([len(t) for t in per_episode_t], dtype=np.int64)
        self.windows_per_episode = counts
        # Each window: (episode index, t).
        self._episode_of = np.repeat(np.arange(len(episodes), dtype=np.int64), counts)
        self._t = np.concatenate(per_episode_t) if per_episode_t else np.zeros(0, np.int64)
        self._start = starts
        if episodes and len(self._t) == 0:
            need = int(self.action_delta.max()) - overhang + 1
            raise ValueError(
                f"the config's windows (To={len(self.obs_delta)}, T={len(self.action_delta)}, "
                f"Ta={self.n_action_steps}) need episodes of at least {need} actions, but the "
                f"longest episode has {int(self.episode_lengths.max())}. Use a shorter horizon "
                "or a larger n_action_steps."
            )
        short = int((counts == 0).sum())
        if short:
            logger.warning(
                "%d of %d episodes are shorter than the window and give no windows",
                short,
                len(episodes),
            )

    def __len__(self) -> int:
        """Number of windows."""
        return len(self._t)

    def select(self, index: np.ndarray | Sequence[int]) -> WindowDataset:
        """The windows ``index`` (in that order) as a dataset sharing this one's arrays."""
        idx = np.asarray(index, dtype=np.int64).reshape(-1)
        if len(idx) and not (0 <= idx.min() and idx.max() < len(self)):
            raise IndexError(f"window indices must be in [0, {len(self)}), got {idx.tolist()[:5]}")
        out = copy.copy(self)
        out._episode_of = self._episode_of[idx]
        out._t = self._t[idx]
        out.windows_per_episode = np.bincount(out._episode_of, minlength=len(self.episode_ids))
        return out

    def current_steps(
        self, index: np.ndarray | Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each window's episode (its ``episode_ids`` entry) and current step t (offset 0).

        ``t`` indexes the episode's observations (and simulator states): the observation the
        window's action at offset 0 was taken after.
        """
        idx = np.arange(len(self)) if index is None else np.asarray(index, dtype=np.int64)
        ep = self._episode_of[idx]
        t = np.minimum(self._t[idx], self.episode_lengths[ep] - 1)
        return self.episode_ids[ep], t

    def _indices(self, i: np.ndarray | int, delta: np.ndarray) -> np.ndarray:
        ep = self._episode_of[i]
        t = self._t[i]
        length = self.episode_lengths[ep]
        local = np.clip(np.asarray(t)[..., None] + delta, 0, np.asarray(length)[..., None] - 1)
        return np.asarray(self._start[ep])[..., None] + local

    def window_arrays(
        self, index: np.ndarray | int | slice | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Windows as numpy arrays (vectorised, for evaluation).

        Args:
            index: window indices; None = all.

        Returns:
            obs (N, To, Do) and action (N, T, Da), float32, raw units.
        """
        idx = np.arange(len(self))[index] if index is not None else np.arange(len(self))
        return (
            self._obs[self._indices(idx, self.obs_delta)],
            self._act[self._indices(idx, self.action_delta)],
        )

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        """Window ``i``: ``{"obs": (To, Do), "action": (T, Da)}`` float32 tensors."""
        n = len(self)
        if not -n <= int(i) < n:
            raise IndexError(f"window index {i} out of range for {n} windows")
        i = int(i) % n
        obs = self._obs[self._indices(i, self.obs_delta)]
        act = self._act[self._indices(i, self.action_delta)]
        return {"obs": torch.from_numpy(obs), "action": torch.from_numpy(act)}


def compute_stats(episodes: Sequence[Episode]) -> dict[str, dict[str, np.ndarray]]:
    """Per-dimension min and max of observations and actions (pass the training episodes only).

    Returns:
        ``{"obs": {"min": (Do,), "max": (Do,)}, "action": {"min": (Da,), "max": (Da,)}}``.
    """
    episodes = list(episodes)
    if not episodes:
        raise ValueError("compute_stats needs at least one episode")
    obs = np.concatenate([e.observations for e in episodes])
    act = np.concatenate([e.actions for e in episodes])
    return {
        "obs": {"min": obs.min(axis=0), "max": obs.max(axis=0)},
        "action": {"min": act.min(axis=0), "max": act.max(axis=0)},
    }
