"""Configs of the recurrent mixture-density heads: ``liquid_mdn`` (CfC), ``lstm_mdn``, ``gru_mdn``.

One implementation, three registered names: the recurrent cell is the only difference, so the
LSTM/GRU heads isolate the contribution of the liquid (CfC) cell (robomimic's BC-RNN-GMM analogue).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from lnmdn_agents.config_fields import check_ints, check_range
from lnmdn_agents.policies.backbone import BackboneConfig

__all__ = ["CELLS", "GRUMDNConfig", "LSTMMDNConfig", "LiquidMDNConfig", "RecurrentMDNConfig"]

CELLS = ("cfc", "lstm", "gru")
MIXTURES = ("chunk", "step")


@dataclass
class RecurrentMDNConfig(BackboneConfig):
    """Recurrent encoder + autoregressive decoder + mixture density head.

    Shapes: the encoder runs over the backbone's To tokens; its final output (the summary)
    initialises a GRU decoder that emits, for each of the T steps, a K-component diagonal Gaussian
    mixture over the Da action dimensions (normalised units), fed its previous action.

    Attributes:
        cell: recurrent encoder cell: ``"cfc"`` (ncps closed-form continuous-time), ``"lstm"`` or
            ``"gru"``. Fixed by the registered name (``liquid_mdn`` -> cfc, ...).
        rnn_layers: stacked encoder layers (the paper: 5 CfC layers; the LSTM/GRU ablations
            default to 2 layers, robomimic's BC-RNN shape, so all three have about 4.3M
            parameters on Push-T).
        rnn_hidden: encoder hidden size per layer (the paper: 960 with a vision backbone; 576
            lands the Push-T model at 4.29M parameters, the paper's 4.3M; LSTM 400, GRU 460).
        cfc_backbone_units: width of the CfC cell's internal backbone MLP (ncps default 128).
        cfc_backbone_layers: depth of that MLP (ncps default 1).
        decoder_hidden: width of the chunk head's two hidden layers (``mixture="chunk"``), or
            hidden size of the GRU decoder over the horizon (``mixture="step"``; it runs T times
            per chunk, so it dominates batch-1 latency there). 400 lands the default Push-T
            head at 4.29M parameters, the paper's 4.3M.
        action_embed_dim: size of the decoder's per-step input (previous action embedding + step
            embedding + projected summary).
        n_components: K, Gaussian components per step.
        min_std: floor on each component's standard deviation (normalised action units). It
            decides whether the head reads its observation: with 1e-3, demonstrations whose
            actions repeat exact values (a clipped controller's saturated forces, a held
            target) let a near-delta component on the previous action win ~5 nats per element,
            so the decoder learns to copy and ignores the observation (see the module docstring
            of ``modeling.py`` for the ablation). 0.1 for the chunk mixture, 0.03 for the step
            mixture were the best measured.
        free_running_max: weight of the free-running NLL in the loss at the last epoch; the weight
            rises linearly from 0 at the first epoch (the rest is teacher-forced NLL).
        prev_action_dropout: in teacher-forced training, the probability that a step's previous
            action input is replaced by the start embedding, so the decoder cannot lean on
            copying the previous action and must read the observation (0 disables it).
            ``mixture="step"`` only.
        mean_mse_weight: weight of a winner-takes-all regression term beside the NLL
            (``mixture="chunk"`` only): the mean squared error, per action element, between
            the chunk and the closest component's mean. The NLL's pull on a mean shrinks as its
            component widens (gradient error / std^2), so a head can lower its NLL by widening
            components around a smooth mean; this term pulls the nearest mean at full strength
            whatever the width, and only the nearest, so modes stay apart. 0 (the default)
            disables it: on the large maze (v2, 30 epochs) weight 1 lowered the validation NLL
            and changed neither the executed chunk's error nor closed-loop success, because
            the nearest mean was already close; the most likely component was not it (README,
            the long mazes).
        mixture: ``"chunk"``: one K-component mixture over the whole (T, Da) chunk, each
            component a trajectory, decoded in one pass from the summary (no previous-action
            input, so nothing to copy); ``"step"``: the autoregressive GRU decoder with a
            K-component mixture per step, fed its previous action (the paper's design).
        use_ema: train with an exponential moving average of the weights, as Diffusion Policy
            trains its U-Net; validation, ``best/`` and the run folder get the averaged weights
            (``lnmdn_agents.training.ema``). Off by default: runs saved before this field existed
            trained without.
        ema_power: EMA warm-up power (decay = 1 - (1 + step) ** -ema_power).
        ema_max_decay: upper bound on the EMA decay.
    """

    cell: str = "cfc"
    rnn_layers: int = 5
    rnn_hidden: int = 576
    cfc_backbone_units: int = 128
    cfc_backbone_layers: int = 1
    decoder_hidden: int = 400
    action_embed_dim: int = 128
    n_components: int = 5
    min_std: float = 0.1
    free_running_max: float = 0.5
    prev_action_dropout: float = 0.0
    mean_mse_weight: float = 0.0
    mixture: str = "chunk"
    use_ema: bool = False
    ema_power: float = 0.75
    ema_max_decay: float = 0.9999

    required_cell: ClassVar[str | None] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mixture not in MIXTURES:
            raise ValueError(f"mixture must be one of {MIXTURES}, got {self.mixture=}")
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {self.cell=}")
        if self.required_cell is not None and self.cell != self.required_cell:
            raise ValueError(
                f"policy {self.name!r} uses cell={self.required_cell!r}, got {self.cell=}; "
                f"pick the policy by name instead (liquid_mdn=cfc, lstm_mdn=lstm, gru_mdn=gru)"
            )
        check_ints(
            self,
            "rnn_layers",
            "rnn_hidden",
            "cfc_backbone_units",
            "cfc_backbone_layers",
            "decoder_hidden",
            "action_embed_dim",
            "n_components",
        )
        check_range(self, "min_std", gt=0)
        check_range(self, "prev_action_dropout", ge=0, lt=1)
        check_range(self, "free_running_max", ge=0, le=1)
        check_range(self, "mean_mse_weight", ge=0)
        if self.mean_mse_weight > 0 and self.mixture != "chunk":
            raise ValueError(
                f"mean_mse_weight applies to the chunk mixture only, got {self.mean_mse_weight=} "
                f"with {self.mixture=}; set mixture='chunk' or mean_mse_weight=0"
            )
        check_range(self, "ema_max_decay", gt=0, lt=1)
        check_range(self, "ema_power", gt=0)


@dataclass
class LiquidMDNConfig(RecurrentMDNConfig):
    """``liquid_mdn``: CfC encoder (see :class:`RecurrentMDNConfig`)."""

    cell: str = "cfc"
    required_cell: ClassVar[str | None] = "cfc"


@dataclass
class LSTMMDNConfig(RecurrentMDNConfig):
    """``lstm_mdn``: the same head with an LSTM encoder (see :class:`RecurrentMDNConfig`)."""

    cell: str = "lstm"
    rnn_layers: int = 2
    rnn_hidden: int = 400
    required_cell: ClassVar[str | None] = "lstm"


@dataclass
class GRUMDNConfig(RecurrentMDNConfig):
    """``gru_mdn``: the same head with a GRU encoder (see :class:`RecurrentMDNConfig`)."""

    cell: str = "gru"
    rnn_layers: int = 2
    rnn_hidden: int = 460
    required_cell: ClassVar[str | None] = "gru"
