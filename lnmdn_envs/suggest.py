"""The project's one "Did you mean ...?" for an unknown name (an env id, a policy, a field, ...).

It lives in ``lnmdn_envs``, the lowest layer, so that every package can import it; it needs the
standard library only::

    raise KeyError(f"unknown policy {name!r}.{did_you_mean(name, known)} Available: {known}")
    # KeyError: "unknown policy 'difusion'. Did you mean 'diffusion'? Available: [...]"
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["did_you_mean"]


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``" Did you mean 'x'?"`` for the known name closest to ``name``, or ``""`` if none is close.

    The text starts with a space, to follow a sentence: ``f"unknown id {name!r}.{hint} ..."``.
    Closeness is :func:`difflib.get_close_matches`' (ratio 0.6 or more).
    """
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""
