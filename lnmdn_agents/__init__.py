"""lnmdn agents: policies, training and evaluation over the lnmdn tasks (torch).

import lnmdn_agents
policy = lnmdn_agents.make_policy("liquid_mdn", obs_dim=5, action_dim=2)
lnmdn_agents.save_policy(policy, "runs/demo")
policy = lnmdn_agents.load_policy("runs/demo")
"""

from lnmdn_agents.checkpoint import load_policy, save_policy
from lnmdn_agents.evaluation import evaluate, evaluate_offline
from lnmdn_agents.policies import (
    Policy,
    PolicyBase,
    PolicyConfig,
    available_policies,
    make_policy,
    register_policy,
)

__all__ = [
    "Policy",
    "PolicyBase",
    "PolicyConfig",
    "available_policies",
    "evaluate",
    "evaluate_offline",
    "load_policy",
    "make_policy",
    "register_policy",
    "save_policy",
]
