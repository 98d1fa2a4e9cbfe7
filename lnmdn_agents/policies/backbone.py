"""The shared observation backbone: every head sees the same encoder, so comparisons isolate heads.

A small pre-LayerNorm transformer encoder over the To normalised observations::

    obs (B, To, Do) --Linear--> (B, To, d) + learned position --> L x [LN -> MHA -> LN -> MLP]
        --> LayerNorm --> tokens (B, To, d);  context (B, d) = tokens[:, -1]  (the current step)

Every policy config inherits :class:`BackboneConfig`'s fields (``d_model``, ``n_layers``,
``n_heads``, ``ff_mult``, ``dropout``), so "same backbone" is one setting across heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lnmdn_agents.config_fields import check_ints, check_range
from lnmdn_agents.policies.base import PolicyConfig

__all__ = ["BackboneConfig", "ObservationBackbone"]


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
    """

    d_model: int = 256
    n_layers: int = 2
    n_heads: int = 4
    ff_mult: int = 4
    dropout: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ints(self, "d_model", "n_layers", "n_heads", "ff_mult")
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model must be divisible by n_heads, got {self.d_model=}, {self.n_heads=}"
            )
        check_range(self, "dropout", ge=0, lt=1)


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
        self.pos_emb = nn.Parameter(torch.zeros(1, config.n_obs_steps, d))
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
        """Normalised obs (B, To, Do) -> context (B, d_model): the current step's feature."""
        return self.tokens(obs)[:, -1]
