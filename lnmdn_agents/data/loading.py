"""Stored demonstrations as :class:`~lnmdn_agents.data.windows.Episode` lists, from Minari.

:func:`load_episodes` reads every episode of a Minari dataset (provisioning a missing ``lnmdn/*``
id on first use, flattening D4RL's dict observations); :func:`training_targets` says which
actions of a stored episode a policy learns (the expert's labels where the dataset recorded
them beside noisy executed actions).
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym
import numpy as np

from lnmdn_agents.data.windows import Episode

__all__ = ["load_episodes", "training_targets"]


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
