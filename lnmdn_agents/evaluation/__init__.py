"""Evaluation: offline metrics on held-out windows, closed-loop rollouts, latency and size.

from lnmdn_agents.evaluation import evaluate, evaluate_offline
result = evaluate(policy, "lnmdn/PushT-v0", n_episodes=50)       # success rate, score, ...
metrics = evaluate_offline(policy, "lnmdn/pusht/expert-v0")      # NLL, best-of-K MSE, ...
"""

from lnmdn_agents.evaluation.offline import evaluate_offline, offline_metrics

__all__ = ["evaluate_offline", "offline_metrics"]
