"""lnmdn agents: policies, training and evaluation over the lnmdn tasks (torch).

Example::

    import lnmdn_agents
    from lnmdn_agents import TrainConfig

    run = lnmdn_agents.train(TrainConfig(policy="liquid_mdn", dataset="lnmdn/pusht/expert-v0"))
    policy = lnmdn_agents.load_policy(run)  # config.json + model.safetensors, no pickle
    offline = lnmdn_agents.evaluate_offline(policy, "lnmdn/pusht/expert-v0")
    closed_loop = lnmdn_agents.evaluate(policy, "lnmdn/PushT-v0", n_episodes=50)
"""

import lnmdn_agents._requirements  # noqa: F401  (first: a missing extra fails here, named)
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
from lnmdn_agents.training import TrainConfig, train

__all__ = [
    "Policy",
    "PolicyBase",
    "PolicyConfig",
    "TrainConfig",
    "available_policies",
    "evaluate",
    "evaluate_offline",
    "load_policy",
    "make_policy",
    "register_policy",
    "save_policy",
    "train",
]
