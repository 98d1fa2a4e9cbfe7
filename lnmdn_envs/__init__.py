"""lnmdn task environments: Push-T, robomimic Can and PointMaze behind one chunked interface.

Importing this package registers the ids with Gymnasium::

    import gymnasium as gym
    import lnmdn_envs  # noqa: F401  (registers lnmdn/*)

    env = gym.make("lnmdn/PushT-v0")           # obs (To, Do) = (2, 5), action (Ta, Da) = (8, 2)
    task = gym.make("lnmdn/PushT-Step-v0")     # the single-step env: obs (5,), action (2,)

``gym.make("lnmdn_envs:lnmdn/PushT-v0")`` works without a prior import. This package never
imports torch.

On Linux without a display, importing it sets ``MUJOCO_GL=egl`` unless ``MUJOCO_GL`` is already
set (robosuite does the same on import), so that MuJoCo's offscreen rendering (videos of Can and
PointMaze) works headless, also in vector-env workers.
"""

import os
import sys

from lnmdn_envs.registration import (
    TASKS,
    TaskSpec,
    make_chunked_env,
    make_task_env,
    register_envs,
    step_env_id,
)
from lnmdn_envs.wrappers import MultiStep, stack_space

__all__ = [
    "TASKS",
    "MultiStep",
    "TaskSpec",
    "make_chunked_env",
    "make_task_env",
    "register_envs",
    "stack_space",
    "step_env_id",
]

if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")

register_envs()
