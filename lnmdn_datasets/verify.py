"""The replay self-test of a local dataset (``lnmdn datasets verify``), and its report.

:func:`verify` resets the dataset's recovered env to each demonstration's first stored state
(``infos["state"]``), replays the recorded actions and compares the observations and the final
success with the recorded ones; it also recomputes the content checksum and compares it with the
one written when the dataset was made. Every recipe dataset reproduces exactly (observation error
0, Can included).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lnmdn_datasets.experts import replay_episode
from lnmdn_datasets.minari_io import CHECKSUM_KEY, dataset_checksum, minari_root
from lnmdn_datasets.recipes import RECIPES

__all__ = ["ReplayReport", "verify"]


@dataclass
class ReplayReport:
    """Replay self-test result.

    Attributes:
        dataset_id: the dataset checked.
        checked: episodes replayed.
        reproduced: episodes whose replay reproduced the recorded success (and, when ``atol``
            was given, stayed within it of the recorded observations).
        max_obs_error: largest absolute observation difference over all replayed steps
            (measured: exactly 0 on every built dataset, Can included).
        mismatched: indices of the episodes that did not reproduce.
        checksum: ``content_sha256`` of the stored arrays, computed now.
        recorded_checksum: the one written into the metadata when the dataset was made (None
            for datasets made before checksums were recorded).
    """

    dataset_id: str
    checked: int
    reproduced: int
    max_obs_error: float
    mismatched: list[int]
    checksum: str = ""
    recorded_checksum: str | None = None

    @property
    def checksum_ok(self) -> bool:
        """The stored arrays are those written (True when no checksum was recorded)."""
        return self.recorded_checksum is None or self.recorded_checksum == self.checksum

    @property
    def ok(self) -> bool:
        """Every replayed episode reproduced and the content checksum matches."""
        return self.reproduced == self.checked and self.checksum_ok


def verify(
    dataset_id: str,
    n_episodes: int | None = None,
    atol: float | None = None,
    progress: bool = True,
) -> ReplayReport:
    """Replay self-test: reset to each demonstration's first stored state and replay its actions.

    An episode reproduces when the replay's final success equals the recorded one and, if
    ``atol`` is given, every observation is within ``atol`` of the recorded one (robomimic #230
    is what happens when stored states and actions drift apart).

    Args:
        dataset_id: a local Minari dataset with ``infos["state"]`` and a recoverable env.
        n_episodes: replay only the first ``n_episodes`` (default: all).
        atol: observation tolerance (None: success only; the report has the largest error).
        progress: show a tqdm progress bar.

    Raises:
        FileNotFoundError: the dataset is not local (the message says how to make it).
    """
    import minari
    from tqdm.auto import tqdm

    if dataset_id not in minari.list_local_datasets():
        how = (
            f"build it with `lnmdn datasets build {dataset_id}`"
            if dataset_id in RECIPES
            else f"local datasets: {sorted(minari.list_local_datasets())}"
        )
        raise FileNotFoundError(
            f"dataset {dataset_id!r} not found in the Minari root {minari_root()}; verify "
            f"replays a local dataset: {how}"
        )
    dataset = minari.load_dataset(dataset_id)
    recorded_checksum = dataset.storage.metadata.get(CHECKSUM_KEY)
    env = dataset.recover_environment()
    n = dataset.total_episodes if n_episodes is None else min(n_episodes, dataset.total_episodes)
    reproduced, max_err, mismatched = 0, 0.0, []
    try:
        for i in tqdm(
            range(n), desc=f"replay {dataset_id}", unit="ep", disable=None if progress else True
        ):
            ep = dataset[i]
            infos = ep.infos or {}
            if "state" not in infos:
                raise ValueError(
                    f"{dataset_id} episode {i} has no infos['state']: it cannot be replayed "
                    "(converted datasets keep the source's states only when it has them)"
                )
            observations, is_success = replay_episode(env, infos["state"][0], ep.actions)
            err = float(np.max(np.abs(observations - ep.observations[: len(observations)])))
            success = bool(is_success[-1])
            recorded = bool(infos["is_success"][-1]) if "is_success" in infos else success
            max_err = max(max_err, err)
            if success == recorded and (atol is None or err <= atol):
                reproduced += 1
            else:
                mismatched.append(i)
    finally:
        env.close()
    return ReplayReport(
        dataset_id,
        n,
        reproduced,
        max_err,
        mismatched,
        checksum=dataset_checksum(dataset_id),
        recorded_checksum=str(recorded_checksum) if recorded_checksum else None,
    )
