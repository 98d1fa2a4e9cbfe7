"""Fail early, naming the extra, when a package of the ``agents`` extra is missing."""

from __future__ import annotations

import importlib.util

AGENTS_EXTRA = ("torch", "ncps", "safetensors", "minari", "typer", "tqdm")

for _module in AGENTS_EXTRA:
    if importlib.util.find_spec(_module) is None:
        raise ImportError(
            f"lnmdn_agents needs {_module!r}, which comes with the 'agents' extra. Install it "
            "with: pip install -c constraints.txt -e '.[agents]' (constraints.txt pins the CPU "
            "build of torch)"
        )
