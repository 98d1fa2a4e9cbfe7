"""Recurrent mixture-density heads: ``liquid_mdn`` (CfC), ``lstm_mdn``, ``gru_mdn``."""

from lnmdn_agents.policies.liquid_mdn.configuration import (
    GRUMDNConfig,
    LiquidMDNConfig,
    LSTMMDNConfig,
    RecurrentMDNConfig,
)
from lnmdn_agents.policies.liquid_mdn.modeling import (
    GRUMDNPolicy,
    LiquidMDNPolicy,
    LSTMMDNPolicy,
    RecurrentMDNPolicy,
    mixture_log_prob,
)

__all__ = [
    "GRUMDNConfig",
    "GRUMDNPolicy",
    "LSTMMDNConfig",
    "LSTMMDNPolicy",
    "LiquidMDNConfig",
    "LiquidMDNPolicy",
    "RecurrentMDNConfig",
    "RecurrentMDNPolicy",
    "mixture_log_prob",
]
