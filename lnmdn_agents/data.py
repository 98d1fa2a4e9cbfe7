"""Demonstrations as training windows: episodes, Diffusion Policy's padded windows, splits, stats.

Minari stores whole episodes; policies train on windows declared by their config::

    obs window   :  |o(t-1)|o(t)|                               (To = n_obs_steps)
    action window:  |a(t-1)|a(t) ... a(t+14)|                   (T = horizon, starts at t-To+1)

Windows follow Diffusion Policy's ``SequenceSampler`` with ``pad_before = To - 1`` and
``pad_after = Ta - 1``: every step t of an episode of L actions with
``0 <= t <= L - 1 - (T - To) + (Ta - 1)`` starts a window, and an index that falls outside the
episode repeats the episode's first or last step. An episode of L actions gives
``L - T + To + Ta - 1`` windows (Push-T with T=16, To=2, Ta=8: ``L - 7``). No window crosses
episodes.

Splits are episode-level and seeded (:func:`split_episodes`); ``make_splits(...,
split_unit="window")`` instead splits the windows of all episodes at random (the liquid-MDN
paper's reference protocol, :mod:`lnmdn_agents.protocols`: overlapping windows of one episode fall
on both sides). The training fractions
(:data:`TRAINING_FRACTIONS`) are nested subsets of the training episodes (:func:`fraction_subset`);
normalisation statistics come from the training episodes only (:func:`compute_stats`).

Typical use::

    from lnmdn_agents.data import make_splits
    splits = make_splits("lnmdn/pusht/expert-v0", policy_config, seed=0, fraction=0.1)
    loader = torch.utils.data.DataLoader(splits.train, batch_size=64, shuffle=True)
    policy = make_policy("liquid_mdn", policy_config, stats=splits.stats)
"""

from __future__ import annotations

import copy
import importlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
from torch.utils.data import Dataset

if TYPE_CHECKING:
    from lnmdn_agents.policies.base import PolicyConfig

__all__ = [
    "SPLIT_UNITS",
    "TRAINING_FRACTIONS",
    "DataSplits",
    "Episode",
    "WindowDataset",
    "compute_stats",
    "fraction_subset",
    "load_episodes",
    "make_splits",
    "split_episodes",
    "training_targets",
]

logger = logging.getLogger(__name__)

#: Training fractions ``10 ** (-2 + k / 3)`` for k = 0..5 (1% ... 46.42%), plus 100%.
TRAINING_FRACTIONS: tuple[float, ...] = (*(10 ** (-2 + k / 3) for k in range(6)), 1.0)


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


# -- windows ------------------------------------------------------------------------------------
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


# -- loading ------------------------------------------------------------------------------------
def _local_ids() -> list[str]:
    import minari

    return sorted(minari.list_local_datasets())


def _unknown_dataset_error(dataset_id: str) -> FileNotFoundError:
    try:
        from lnmdn_datasets.recipes import RECIPES

        buildable = sorted(RECIPES)
    except ImportError:
        buildable = []
    hint = (
        f" Build it with: lnmdn datasets build {dataset_id}"
        if dataset_id in buildable
        else f" Buildable ids: {buildable}."
        if buildable
        else ""
    )
    return FileNotFoundError(
        f"dataset {dataset_id!r} is not in the local Minari root. Local datasets: "
        f"{_local_ids()}.{hint}"
    )


def _install_if_possible(dataset_id: str) -> bool:
    """Unpack, build or download a missing dataset (:func:`lnmdn_datasets.provision.ensure_local`).

    False when none of those applies.
    """
    try:
        provision = importlib.import_module("lnmdn_datasets.provision")
    except ImportError:
        return False
    return bool(provision.ensure_local(dataset_id))


def _episodes_from_minari(dataset: Any) -> list[Episode]:
    episodes = []
    flatten = None
    if isinstance(dataset.observation_space, gym.spaces.Dict):
        from lnmdn_envs.pointmaze import flatten_d4rl_observation

        flatten = flatten_d4rl_observation
    for ep in dataset.iterate_episodes():
        obs = flatten(ep.observations) if flatten is not None else ep.observations
        episodes.append(Episode(np.asarray(obs), training_targets(ep.actions, ep.infos)))
    return episodes


def training_targets(actions: np.ndarray, infos: dict[str, Any] | None) -> np.ndarray:
    """The actions a policy learns from one stored episode: ``(L, Da)``.

    The executed ``actions``, except where the dataset recorded the expert's own label beside them
    (``infos["expert_action"]``, DART noise injection: ``lnmdn/pusht/expert-v3``): then the
    labels, since the executed actions there are the expert's plus noise.
    """
    labels = (infos or {}).get("expert_action")
    if labels is None:
        return np.asarray(actions)
    labels = np.asarray(labels)[: len(actions)]
    if labels.shape != np.shape(actions) or not np.all(np.isfinite(labels)):
        raise ValueError(
            f"infos['expert_action'] must hold a finite label per action, shape "
            f"{np.shape(actions)} after the last row is dropped; got shape {labels.shape}. "
            "Rebuild the dataset with lnmdn datasets build ID --force"
        )
    return labels


def load_episodes(dataset_id: str) -> list[Episode]:
    """Load every episode of a Minari dataset.

    A missing ``lnmdn/*`` id is provided on first use: the copy shipped inside the package is
    installed (Push-T, seconds), or its recipe is built (PointMaze under a minute, Can about
    6 minutes; ``lnmdn datasets build ID`` does the same ahead of time). ``D4RL/pointmaze/*``
    datasets are mapped to the PointMaze layout ``[x, y, vx, vy, goal_x, goal_y]``; when one is
    not local, it is downloaded (which needs network access).

    Args:
        dataset_id: a Minari id, e.g. ``"lnmdn/pusht/expert-v0"``.

    Returns:
        The episodes, in dataset order.

    Raises:
        FileNotFoundError: the id is neither local nor embedded nor downloadable; the message
            lists the local ids and how to build the missing one.
    """
    import minari

    if dataset_id not in minari.list_local_datasets():
        if not _install_if_possible(dataset_id):
            raise _unknown_dataset_error(dataset_id)
    dataset = minari.load_dataset(dataset_id)
    episodes = _episodes_from_minari(dataset)
    if not episodes:
        raise ValueError(f"dataset {dataset_id!r} has no episodes")
    return episodes


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
