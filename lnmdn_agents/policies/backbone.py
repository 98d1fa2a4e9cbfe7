"""The shared observation backbone: every head sees the same encoder, so comparisons isolate heads.

A small pre-LayerNorm transformer encoder over the To normalised observations::

    obs (B, To, Do) --Linear--> (B, To, d) + learned position --> L x [LN -> MHA -> LN -> MLP]
        --> LayerNorm --> tokens (B, To, d);  context (B, d) = tokens[:, -1]  (the current step)

Every policy config inherits :class:`BackboneConfig`'s fields (``d_model``, ``n_layers``,
``n_heads``, ``ff_mult``, ``dropout``, ``obs_window``), so "same backbone" is one setting across
heads.

``obs_window="horizon"`` is the liquid-MDN paper's protocol (``lnmdn_agents.protocols``): the
window holds one observation per action of the chunk, ``t-To+1 ... t-To+T``, so it includes the
observations after the current step t; the encoder attends over all of them (no causal mask, as
the paper's), each token is the encoding of its own step, and the context is their mean (the
paper's pooling; the last token would be a future step).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lnmdn_agents.config_fields import check_ints, check_range
from lnmdn_agents.policies.base import PolicyConfig

__all__ = ["OBS_WINDOWS", "BackboneConfig", "ObservationBackbone"]

OBS_WINDOWS = ("history", "horizon")
"""The observation windows a backbone config can declare (``BackboneConfig.obs_window``)."""


@dataclass
class BackboneConfig(PolicyConfig):
    """Policy config fields of the shared observation backbone.

    Attributes:
        d_model: width of the transformer (the paper uses 512; the default 256 keeps the Push-T
            heads near the paper's parameter counts, since our observation is the low-dim state).
        n_layers: transformer encoder layers.
        n_heads: attention heads (must divide ``d_model``).
        ff_mult: MLP width as a multiple of ``d_model``.
        dropout: dropout inside the transformer (0 keeps training losses deterministic).
        obs_window: ``"history"``: the To observations up to the current step (the standard
            protocol); ``"horizon"``: one observation per action of the horizon, future steps
            included (the liquid-MDN paper's reference protocol; offline only, since in closed
            loop the steps after the current one are filled with the current observation).
    """

    d_model: int = 256
    n_layers: int = 2
    n_heads: int = 4
    ff_mult: int = 4
    dropout: float = 0.0
    obs_window: str = "history"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.obs_window not in OBS_WINDOWS:
            raise ValueError(
                f'obs_window must be one of {OBS_WINDOWS}, got {self.obs_window=}; "horizon" '
                "is the reference protocol's window (lnmdn_agents.protocols)"
            )
        check_ints(self, "d_model", "n_layers", "n_heads", "ff_mult")
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model must be divisible by n_heads, got {self.d_model=}, {self.n_heads=}"
            )
        check_range(self, "dropout", ge=0, lt=1)

    @property
    def observation_delta_indices(self) -> list[int]:
        """The history's offsets, or the action chunk's with ``obs_window="horizon"``."""
        if self.obs_window == "horizon":
            return self.action_delta_indices
        return super().observation_delta_indices

    @property
    def input_obs_steps(self) -> int:
        """To, or T with ``obs_window="horizon"``."""
        return self.horizon if self.obs_window == "horizon" else self.n_obs_steps


class ObservationBackbone(nn.Module):
    """Transformer encoder over the observation history (normalised inputs).

    Args:
        config: any policy config deriving from :class:`BackboneConfig`.
    """

    def __init__(self, config: BackboneConfig):
        super().__init__()
        d = config.d_model
        self.d_model = d
        self.input_proj = nn.Linear(config.obs_dim, d)
        self.pool_mean = config.obs_window == "horizon"
        self.pos_emb = nn.Parameter(torch.zeros(1, config.input_obs_steps, d))
        nn.init.normal_(self.pos_emb, std=0.02)
        layer = nn.TransformerEncoderLayer(
            d_model=d,
            nhead=config.n_heads,
            dim_feedforward=config.ff_mult * d,
            dropout=config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, num_layers=config.n_layers, enable_nested_tensor=False
        )
        self.norm = nn.LayerNorm(d)

    def tokens(self, obs: Tensor) -> Tensor:
        """Normalised obs (B, To, Do) -> per-step features (B, To, d_model)."""
        x = self.input_proj(obs) + self.pos_emb
        return self.norm(self.encoder(x))

    def forward(self, obs: Tensor) -> Tensor:
        """Normalised obs (B, To, Do) -> context (B, d_model): the current step's feature.

        With ``obs_window="horizon"`` the context is the mean over the window's tokens.
        """
        tokens = self.tokens(obs)
        return tokens.mean(dim=1) if self.pool_mean else tokens[:, -1]
