"""Action checks shared by the task envs: one rule for bad input and for out-of-range values."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

__all__ = ["check_action"]


def check_action(action: Any, space: spaces.Box) -> np.ndarray:
    """Validate a single-step action and clip it into ``space``.

    The rule every lnmdn task follows: an action must be numeric (bool, int or float), have the
    space's shape and be finite; otherwise a ValueError names what was wrong. A finite value
    outside the bounds is clipped to them (the commanded position of Push-T, the normalised
    command of Can and PointMaze), as Diffusion Policy's and robosuite's controllers do.

    Args:
        action: the action, array-like of shape ``space.shape``.
        space: the task's action space.

    Returns:
        A float64 copy, clipped to ``[space.low, space.high]``.
    """
    arr = np.asarray(action)
    if arr.dtype.kind not in "biuf":
        raise ValueError(
            f"action must be a numeric array of shape {space.shape}, got dtype {arr.dtype} "
            f"({action!r:.80})"
        )
    if arr.shape != space.shape:
        raise ValueError(f"action must have shape {space.shape}, got {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"action must be finite, got {arr.tolist()}")
    return np.clip(arr, space.low, space.high)
