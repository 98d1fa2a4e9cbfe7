"""Per-dimension min-max normalisation to [-1, 1], stored as module buffers (saved with weights)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["MinMaxNormalizer"]

_EPS = 1e-6


class MinMaxNormalizer(nn.Module):
    """Maps raw observations and actions to [-1, 1] per dimension, and actions back.

    A dimension whose range is below ``1e-6`` (constant in the data) maps to 0 and back to its
    constant value, as Diffusion Policy's ``SingleFieldLinearNormalizer`` does.

    Args:
        obs_dim: Do.
        action_dim: Da.
        stats: ``{"obs": {"min": (Do,), "max": (Do,)}, "action": {"min": (Da,), "max": (Da,)}}``
            from the training split; None = identity until :meth:`fit` or a checkpoint load.
    """

    obs_min: Tensor
    obs_max: Tensor
    action_min: Tensor
    action_max: Tensor

    def __init__(
        self, obs_dim: int, action_dim: int, stats: dict[str, dict[str, np.ndarray]] | None = None
    ):
        super().__init__()
        self.register_buffer("obs_min", -torch.ones(obs_dim))
        self.register_buffer("obs_max", torch.ones(obs_dim))
        self.register_buffer("action_min", -torch.ones(action_dim))
        self.register_buffer("action_max", torch.ones(action_dim))
        if stats is not None:
            self.fit(stats)

    def fit(self, stats: dict[str, dict[str, np.ndarray]]) -> None:
        """Set the statistics (see the class docstring for the layout)."""
        for key in ("obs", "action"):
            if key not in stats or not {"min", "max"} <= set(stats[key]):
                raise ValueError(f"stats need {key!r} with 'min' and 'max', got {list(stats)}")
            lo = torch.as_tensor(np.asarray(stats[key]["min"]), dtype=torch.float32).reshape(-1)
            hi = torch.as_tensor(np.asarray(stats[key]["max"]), dtype=torch.float32).reshape(-1)
            buf_lo: Tensor = getattr(self, f"{key}_min")
            if lo.shape != buf_lo.shape or hi.shape != buf_lo.shape:
                raise ValueError(
                    f"{key} stats must have shape {tuple(buf_lo.shape)}, got min {tuple(lo.shape)}"
                    f" and max {tuple(hi.shape)}"
                )
            if not (torch.isfinite(lo).all() and torch.isfinite(hi).all()) or (hi < lo).any():
                raise ValueError(f"{key} stats must be finite with max >= min, got {lo=} {hi=}")
            buf_lo.copy_(lo)
            getattr(self, f"{key}_max").copy_(hi)

    @staticmethod
    def _scale(x: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
        span = hi - lo
        safe = torch.where(span < _EPS, torch.ones_like(span), span)
        out = 2.0 * (x - lo) / safe - 1.0
        return torch.where(span < _EPS, torch.zeros_like(out), out)

    @staticmethod
    def _unscale(y: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
        span = hi - lo
        return torch.where(span < _EPS, lo.expand_as(y), (y + 1.0) * 0.5 * span + lo)

    def normalize_obs(self, obs: Tensor) -> Tensor:
        """Raw (..., Do) -> [-1, 1]."""
        return self._scale(obs, self.obs_min, self.obs_max)

    def normalize_action(self, action: Tensor) -> Tensor:
        """Raw (..., Da) -> [-1, 1]."""
        return self._scale(action, self.action_min, self.action_max)

    def unnormalize_action(self, action: Tensor) -> Tensor:
        """[-1, 1] (..., Da) -> raw units."""
        return self._unscale(action, self.action_min, self.action_max)
