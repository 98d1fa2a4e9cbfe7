"""Evaluation: offline metrics on held-out windows, closed-loop rollouts, latency and size.

from lnmdn_agents.evaluation import evaluate, evaluate_offline
result = evaluate(policy, "lnmdn/PushT-v0", n_episodes=50)       # success rate, score, ...
metrics = evaluate_offline(policy, "lnmdn/pusht/expert-v0")      # NLL, best-of-K MSE, ...
"""

from lnmdn_agents.evaluation.latency import count_parameters, measure_latency, policy_latency
from lnmdn_agents.evaluation.offline import evaluate_offline, offline_metrics
from lnmdn_agents.evaluation.rollout import evaluate, rollout, wilson_interval
from lnmdn_agents.evaluation.seeds import EVAL_SEED_BASE, check_seeds_disjoint, eval_seeds
from lnmdn_envs.vector import make_eval_env

__all__ = [
    "EVAL_SEED_BASE",
    "check_seeds_disjoint",
    "count_parameters",
    "eval_seeds",
    "evaluate",
    "evaluate_offline",
    "make_eval_env",
    "measure_latency",
    "offline_metrics",
    "policy_latency",
    "rollout",
    "wilson_interval",
]
