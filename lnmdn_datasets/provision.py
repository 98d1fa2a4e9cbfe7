"""Providing a dataset that is not local yet: unpack its packed copy, build it, or download it.

This module sits above everything it chooses between, so the decision is made in one place and
nothing below imports back up (``tests/datasets/test_layers.py`` keeps it so)::

    provision -> download -> embedded, recipes -> minari_io -> episodes
                                       recipes -> experts -> lnmdn_envs

``lnmdn_agents.data.load_episodes`` calls :func:`ensure_local` for a dataset it does not find;
evaluation asks :func:`dataset_env` which env a dataset was recorded in.
"""

from __future__ import annotations

import logging
from typing import Any

from lnmdn_datasets import embedded, recipes
from lnmdn_datasets.download import download_dataset
from lnmdn_datasets.minari_io import minari_root

__all__ = ["dataset_env", "ensure_local"]

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
            recipes.build(recipe, workers=recipes.build_workers())
        except FileExistsError:
            if dataset_id not in minari.list_local_datasets():
                raise
        return True
    if dataset_id.startswith("D4RL/"):
        download_dataset(dataset_id)
        return True
    return False


def dataset_env(dataset_id: str) -> tuple[str, dict[str, Any]]:
    """The lnmdn task ``dataset_id`` was recorded in and its task keyword arguments.

    Read from the env spec the dataset stores (``make_task_env(env_id, **kwargs)``, as
    :func:`lnmdn_datasets.minari_io.task_env_spec` writes it); for a dataset that is not local
    yet, from its recipe. So ``lnmdn/pusht/expert-v2`` answers
    ``("lnmdn/PushT-v0", {"obs_type": "keypoints"})``.

    Raises:
        ValueError: the dataset's spec names no lnmdn task (a D4RL dataset: pass the env
            explicitly), or the dataset is neither local nor made by a recipe.
    """
    import minari

    if dataset_id in minari.list_local_datasets():
        spec = minari.load_dataset(dataset_id).env_spec
        kwargs = dict(spec.kwargs) if spec is not None else {}
        env_id = kwargs.pop("env_id", None)
        if env_id is None:
            recorded = spec.id if spec is not None else None
            raise ValueError(
                f"dataset {dataset_id!r} was recorded in {recorded!r}, not in an lnmdn task; "
                "pass the env to evaluate in explicitly (--env lnmdn/...)"
            )
        return str(env_id), kwargs
    recipe = recipes.RECIPES.get(dataset_id)
    if recipe is not None:
        return recipe.task_id, dict(recipe.env_kwargs)
    raise ValueError(
        f"cannot tell which env {dataset_id!r} was recorded in: it is not in the Minari root "
        f"{minari_root()} and no recipe makes it; make it local first, or pass --env"
    )
