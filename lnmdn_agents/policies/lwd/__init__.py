"""Latent Weight Diffusion (``lwd``): diffusion over the weights of small closed-loop policies."""

from lnmdn_agents.policies.lwd.configuration import LWDConfig
from lnmdn_agents.policies.lwd.modeling import LWDPolicy
from lnmdn_agents.policies.lwd.networks import DecodedPolicy

__all__ = ["DecodedPolicy", "LWDConfig", "LWDPolicy"]
