"""lnmdn agents: policies, training and evaluation over the lnmdn tasks (torch).

Example::

    import lnmdn_agents
    from lnmdn_agents import TrainConfig

    run = lnmdn_agents.train(TrainConfig(policy="liquid_mdn", dataset="lnmdn/pusht/expert-v0"))
    policy = lnmdn_agents.load_policy(run)  # config.json + model.safetensors, no pickle
    offline = lnmdn_agents.evaluate_offline(policy, "lnmdn/pusht/expert-v0")
    closed_loop = lnmdn_agents.evaluate(policy, "lnmdn/PushT-v0", n_episodes=50)

The names above are imported on first use, so that ``import lnmdn_agents.cli`` (the ``lnmdn``
command, whose ``--help`` and ``datasets`` commands need no torch) does not import torch.
A missing ``agents`` extra still fails at ``import lnmdn_agents``, named.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import lnmdn_agents._requirements  # noqa: F401  (first: a missing extra fails here, named)

if TYPE_CHECKING:
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

#: Public name -> the module that defines it (imported on first access).
_PUBLIC = {
    "Policy": "lnmdn_agents.policies",
    "PolicyBase": "lnmdn_agents.policies",
    "PolicyConfig": "lnmdn_agents.policies",
    "TrainConfig": "lnmdn_agents.training",
    "available_policies": "lnmdn_agents.policies",
    "evaluate": "lnmdn_agents.evaluation",
    "evaluate_offline": "lnmdn_agents.evaluation",
    "load_policy": "lnmdn_agents.checkpoint",
    "make_policy": "lnmdn_agents.policies",
    "register_policy": "lnmdn_agents.policies",
    "save_policy": "lnmdn_agents.checkpoint",
    "train": "lnmdn_agents.training",
}

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


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access (PEP 562)."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'lnmdn_agents' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, the not yet imported public ones included."""
    return sorted({*globals(), *_PUBLIC})
