"""Fail early, naming the extra, when a package of the ``datasets`` extra is missing.

Imported by :mod:`lnmdn_datasets.minari_io`, which every module that stores, builds, converts or
fetches datasets imports; the experts (:mod:`lnmdn_datasets.experts`) and the episode type need
only the base install.
"""

from __future__ import annotations

import importlib.util

DATASETS_EXTRA = ("minari", "tqdm")

for _module in DATASETS_EXTRA:
    if importlib.util.find_spec(_module) is None:
        raise ImportError(
            f"lnmdn_datasets needs {_module!r} to store, build or fetch datasets; it comes with "
            "the 'datasets' extra (also part of 'agents'). Install it with: "
            "pip install -c constraints.txt -e '.[datasets]'"
        )
