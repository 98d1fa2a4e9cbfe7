"""Evaluation vector envs live with the tasks: built, recorded and stepped without torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lnmdn_envs.vector import check_env_id, is_mujoco_task, make_eval_env

RECORD = """
import json, sys
import numpy as np
from lnmdn_envs.vector import make_eval_env

env = make_eval_env("lnmdn/PushT-v0", 2, n_obs_steps=2, n_action_steps=8,
                    env_kwargs={"max_episode_steps": 16}, record_frames=True)
env.set_attr("recording", [True, False])
obs, _ = env.reset(seed=[100000, 100001])
env.step(np.zeros((2, 8, 2), dtype=np.float32))
frames = env.call("pop_frames")
print(json.dumps({
    "mode": type(env).__name__,
    "obs": list(obs.shape),
    "frames": [len(f) for f in frames],
    "frame_shape": list(np.asarray(frames[0][0]).shape),
    "torch": "torch" in sys.modules,
}))
env.close()
"""


def test_recorded_frames_are_every_single_step_and_no_torch_is_imported():
    proc = subprocess.run(
        [sys.executable, "-c", RECORD], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["mode"] == "SyncVectorEnv"  # Push-T steps in-process
    assert out["obs"] == [2, 2, 5]
    assert out["frames"] == [1 + 8, 0]  # the reset frame and one per executed step; env 1 is off
    assert len(out["frame_shape"]) == 3 and out["frame_shape"][2] == 3
    assert out["torch"] is False


def test_the_mujoco_tasks_are_the_ones_stepped_in_workers():
    assert is_mujoco_task("lnmdn/Can-v0") and is_mujoco_task("lnmdn_envs:lnmdn/PointMaze-UMaze-v0")
    assert not is_mujoco_task("lnmdn/PushT-v0") and not is_mujoco_task("CartPole-v1")


def test_bad_ids_and_modes_are_named():
    with pytest.raises(ValueError, match=r"unknown env id 'lnmdn/PushT-v9'.*Did you mean"):
        check_env_id("lnmdn/PushT-v9")
    with pytest.raises(ValueError, match="vectorization_mode must be 'sync' or 'async', got 'x'"):
        make_eval_env("lnmdn/PushT-v0", 1, n_obs_steps=2, n_action_steps=8, vectorization_mode="x")
    with pytest.raises(ValueError, match="videos need an lnmdn task id, got 'CartPole-v1'"):
        make_eval_env("CartPole-v1", 1, n_obs_steps=1, n_action_steps=1, record_frames=True)
