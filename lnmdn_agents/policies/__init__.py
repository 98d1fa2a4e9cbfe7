"""Policies behind one protocol, and their registry.

Importing this package registers the built-in policies. Adding a policy: a folder with
``configuration.py`` and ``modeling.py`` (copy the shape of ``liquid_mdn/``), a
``@register_policy("name")`` on the class, and one import line below.
"""

from lnmdn_agents.policies.base import (
    Policy,
    PolicyBase,
    PolicyConfig,
    TrainingHooks,
    available_policies,
    config_from_dict,
    get_policy_class,
    make_policy,
    register_policy,
)
from lnmdn_agents.policies.diffusion import DiffusionPolicy as DiffusionPolicy  # "diffusion"
from lnmdn_agents.policies.liquid_mdn import LiquidMDNPolicy as LiquidMDNPolicy  # + lstm/gru_mdn
from lnmdn_agents.policies.lwd import LWDPolicy as LWDPolicy  # registers "lwd"

__all__ = [
    "Policy",
    "PolicyBase",
    "PolicyConfig",
    "TrainingHooks",
    "available_policies",
    "config_from_dict",
    "get_policy_class",
    "make_policy",
    "register_policy",
]
