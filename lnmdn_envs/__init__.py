"""lnmdn task environments: Push-T, robomimic Can and PointMaze behind one chunked interface.

Importing this package registers the ids with Gymnasium::

    import gymnasium as gym
    import lnmdn_envs  # noqa: F401  (registers lnmdn/*)

    env = gym.make("lnmdn/PushT-v0")           # obs (To, Do) = (2, 5), action (Ta, Da) = (8, 2)
    task = lnmdn_envs.make_task_env("lnmdn/PushT-v0")   # the single-step env

``gym.make("lnmdn_envs:lnmdn/PushT-v0")`` works without a prior import. This package never
imports torch.
"""

from lnmdn_envs.registration import TASKS, TaskSpec, make_chunked_env, make_task_env, register_envs
from lnmdn_envs.wrappers import MultiStep, stack_space

__all__ = [
    "TASKS",
    "MultiStep",
    "TaskSpec",
    "make_chunked_env",
    "make_task_env",
    "register_envs",
    "stack_space",
]

register_envs()
