"""Providing a dataset that is not local yet: unpack its packed copy, build it, or download it.

This module sits above everything it chooses between, so the decision is made in one place and
nothing below imports back up (``tests/datasets/test_layers.py`` keeps it so)::

    provision -> download -> embedded, recipes -> minari_io -> episodes
                                       recipes -> experts -> lnmdn_envs

``lnmdn_agents.data.load_episodes`` calls :func:`ensure_local` for a dataset it does not find.
"""

from __future__ import annotations

import logging

from lnmdn_datasets import embedded, recipes
from lnmdn_datasets.download import download_dataset
from lnmdn_datasets.minari_io import minari_root

__all__ = ["ensure_local"]

logger = logging.getLogger(__name__)


def ensure_local(dataset_id: str) -> bool:
    """Make ``dataset_id`` local if possible: install the embedded copy, build it, or download it.

    In order: the packaged copy (``lnmdn_datasets/embedded``: Push-T); a recipe marked
    ``auto_build`` (PointMaze, under a minute; Can, about 6 minutes); a download for remote
    namespaces (``D4RL/``).

    Returns:
        True when the dataset is now local; False when nothing could provide it (then
        ``lnmdn datasets build`` or a converter must make it).

    Raises:
        lnmdn_datasets.download.DatasetDownloadError: a remote dataset's download failed.
    """
    import minari

    if dataset_id in minari.list_local_datasets():
        return True
    if embedded.embedded_path(dataset_id).is_file():
        try:
            embedded.install_embedded(dataset_id)
        except (FileExistsError, OSError):
            # Another process installed it at the same time: fine if it is there now.
            if dataset_id not in minari.list_local_datasets():
                raise
        return True
    recipe = recipes.RECIPES.get(dataset_id)
    if recipe is not None and recipe.auto_build:
        logger.warning(
            "%s is not in the Minari root %s: building it now from its recipe (%d episodes of "
            "%s; `lnmdn datasets build %s` does the same)",
            dataset_id,
            minari_root(),
            recipe.n_episodes,
            recipe.expert_name,
            dataset_id,
        )
        try:
            recipes.build(recipe)
        except FileExistsError:
            if dataset_id not in minari.list_local_datasets():
                raise
        return True
    if dataset_id.startswith("D4RL/"):
        download_dataset(dataset_id)
        return True
    return False
