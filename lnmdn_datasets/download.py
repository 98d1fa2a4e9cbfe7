"""Fetching hosted Minari datasets (``D4RL/...``), with a clear error where there is no network.

:func:`download_dataset` is what ``lnmdn datasets download`` runs. An ``lnmdn/...`` id is never
hosted: asking for one fails at once, without a network round trip, with how to make it here
(its packed copy, its recipe, or a converter).
"""

from __future__ import annotations

import shutil

from lnmdn_datasets import embedded
from lnmdn_datasets.minari_io import minari_root
from lnmdn_datasets.recipes import RECIPES

__all__ = ["DatasetDownloadError", "download_dataset"]


class DatasetDownloadError(RuntimeError):
    """A dataset could not be downloaded (no network, missing extra, unknown remote id)."""


def download_dataset(dataset_id: str) -> None:
    """Download a Minari dataset (e.g. ``D4RL/pointmaze/umaze-v2``) with a clear error offline.

    Raises:
        DatasetDownloadError: the download failed; the message says why and what to do.
    """
    import minari

    root = minari_root()
    local_only = _local_only_advice(dataset_id)
    if local_only is not None:
        raise DatasetDownloadError(local_only)  # no network round trip for an id never hosted
    existed = (root / dataset_id).exists()
    advice = (
        f"Download it where the network allows (`minari download {dataset_id}`) and copy the "
        f"folder <minari root>/{dataset_id} into this machine's Minari root ({root}; set by "
        "MINARI_DATASETS_PATH)."
    )
    try:
        minari.download_dataset(dataset_id)
    except ImportError as err:
        raise DatasetDownloadError(
            f"cannot download {dataset_id!r}: {err}. Install the 'datasets' extra "
            "(pip install -c constraints.txt -e '.[datasets]'; 'agents' includes it), which "
            "includes minari[hf]. " + advice
        ) from err
    except Exception as err:
        if not existed:
            shutil.rmtree(root / dataset_id, ignore_errors=True)
        raise DatasetDownloadError(
            f"could not download {dataset_id!r} from Minari's remote "
            f"({type(err).__name__}: {err}). This machine may have no network access. " + advice
        ) from err


def _local_only_advice(dataset_id: str) -> str | None:
    """For an id that is made locally and never hosted (``lnmdn/...``): how to make it."""
    if not dataset_id.startswith("lnmdn/"):
        return None
    if embedded.embedded_path(dataset_id).is_file():
        how = f"it ships inside the package: `lnmdn datasets build {dataset_id}` installs it"
    elif dataset_id in RECIPES:
        how = f"build it from its recipe here: `lnmdn datasets build {dataset_id}`"
    else:
        how = (
            f"it has no recipe (recipes: {sorted(RECIPES)}); make it with `lnmdn datasets "
            "convert` from its source, or copy its folder into the Minari root "
            f"({minari_root()}) from the machine that made it"
        )
    return (
        f"{dataset_id!r} is not hosted on any Minari remote (lnmdn datasets are made "
        f"locally); {how}"
    )
