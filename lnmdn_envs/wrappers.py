"""Observation-history / action-chunk wrapper shared by every lnmdn task.

Semantics follow Diffusion Policy's ``MultiStepWrapper``::

    obs window :  |o(t-1)|o(t)|                 (To = n_obs_steps = 2)
    chunk      :        |a(t) ... a(t+7)|        (Ta = n_action_steps = 8, run step by step)

* ``reset`` fills the history by repeating the reset observation To times.
* ``step(chunk)`` executes the Ta actions one by one and stops at the first termination or
  truncation; the returned observation is the history after the last executed step.
* The chunk's reward is the sum of the executed steps' rewards (what Gymnasium and SB3 expect of
  a return); the per-step rewards are kept in ``info["step_rewards"]`` (Ta,), zero after an
  early end, so that vector envs can stack it; ``info["n_steps"]`` says how many steps ran.
* ``info`` is the last executed step's info, plus ``step_rewards`` and ``n_steps``.

The wrapper knows nothing about any task: it sees a Box (or Dict of Box) observation and a Box
action, so Push-T, Can and PointMaze share it unchanged.

:class:`FrameRecorder` sits inside ``MultiStep`` (under the chunking) and keeps a rendered frame of
every single step while its ``recording`` flag is on: the videos of closed-loop evaluation.
"""

from __future__ import annotations

from collections import deque
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = ["FrameRecorder", "MultiStep", "stack_space"]


def stack_space(space: spaces.Space[Any], n: int) -> spaces.Space[Any]:
    """Return the space of ``n`` stacked elements of ``space`` (a Box or a Dict of Box).

    Args:
        space: the per-step space.
        n: how many elements are stacked along a new leading axis.

    Returns:
        A Box of shape ``(n, *space.shape)``, or a Dict of such Boxes.
    """
    if isinstance(space, spaces.Box):
        low = np.repeat(space.low[None], n, axis=0)
        high = np.repeat(space.high[None], n, axis=0)
        return spaces.Box(low=low, high=high, dtype=space.dtype)
    if isinstance(space, spaces.Dict):
        return spaces.Dict({k: stack_space(v, n) for k, v in space.spaces.items()})
    raise TypeError(
        f"MultiStep stacks Box or Dict-of-Box spaces, got {type(space).__name__}: {space}. "
        "Flatten the observation first (gymnasium.wrappers.FlattenObservation)."
    )


def _stack(history: deque[Any]) -> Any:
    first = history[0]
    if isinstance(first, dict):
        return {k: np.stack([h[k] for h in history]) for k in first}
    return np.stack(history)


class MultiStep(gym.Wrapper[Any, np.ndarray, Any, np.ndarray]):
    """Stack the last ``n_obs_steps`` observations and execute ``n_action_steps`` actions per step.

    Observation: ``(To, *obs_shape)``; action: ``(Ta, Da)``.

    Args:
        env: the single-step task env (Box action of shape ``(Da,)``).
        n_obs_steps: To, observations of history returned (>= 1).
        n_action_steps: Ta, actions executed per call to ``step`` (>= 1).
    """

    def __init__(self, env: gym.Env[Any, Any], n_obs_steps: int = 2, n_action_steps: int = 8):
        super().__init__(env)
        if int(n_obs_steps) != n_obs_steps or n_obs_steps < 1:
            raise ValueError(f"n_obs_steps must be an integer >= 1, got {n_obs_steps=}")
        if int(n_action_steps) != n_action_steps or n_action_steps < 1:
            raise ValueError(f"n_action_steps must be an integer >= 1, got {n_action_steps=}")
        act_space = env.action_space
        if not isinstance(act_space, spaces.Box) or len(act_space.shape) != 1:
            raise TypeError(
                f"MultiStep needs a 1-D Box action space (Da,), got {act_space}. "
                "Flatten the task's action first."
            )
        self.n_obs_steps = int(n_obs_steps)
        self.n_action_steps = int(n_action_steps)
        self.observation_space = stack_space(env.observation_space, self.n_obs_steps)
        self.action_space = stack_space(act_space, self.n_action_steps)
        self._history: deque[Any] = deque(maxlen=self.n_obs_steps)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset the task and return the history padded with the reset observation."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._history.clear()
        self._history.extend([obs] * self.n_obs_steps)
        return _stack(self._history), info

    def step(self, action: np.ndarray) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Execute a chunk ``(Ta, Da)`` step by step, stopping at termination or truncation."""
        chunk = np.asarray(action)
        expected = self.action_space.shape
        if chunk.shape != expected:
            raise ValueError(
                f"action chunk must have shape (Ta, Da) = {expected}, got {chunk.shape}. "
                f"Pass n_action_steps={chunk.shape[0] if chunk.ndim == 2 else '...'} to gym.make "
                "to execute chunks of another length."
            )
        if chunk.dtype.kind not in "biuf" or not np.all(np.isfinite(chunk)):
            # Checked before any step runs, so a bad row never leaves the chunk half-executed.
            raise ValueError(
                f"action chunk must be numeric and finite, got dtype {chunk.dtype} and values "
                f"{np.asarray(chunk).tolist()}"
            )
        rewards: list[float] = []
        terminated = truncated = False
        info: dict[str, Any] = {}
        for a in chunk:
            obs, reward, terminated, truncated, info = self.env.step(a)
            self._history.append(obs)
            rewards.append(float(reward))
            if terminated or truncated:
                break
        info = dict(info)
        step_rewards = np.zeros(self.n_action_steps, dtype=np.float64)
        step_rewards[: len(rewards)] = rewards
        info["step_rewards"] = step_rewards
        info["n_steps"] = len(rewards)
        return _stack(self._history), float(np.sum(rewards)), terminated, truncated, info


class FrameRecorder(gym.Wrapper[Any, Any, Any, Any]):
    """Render every single step (and the reset) while ``recording`` is true; keep the frames.

    Wrap the single-step task env (``render_mode="rgb_array"``) and put ``MultiStep`` outside,
    so that a chunk of Ta actions yields Ta frames. A vector env turns recording on per env with
    ``set_attr("recording", [...])`` and collects with ``call("pop_frames")``.
    """

    def __init__(self, env: gym.Env[Any, Any]):
        super().__init__(env)
        self.recording = False
        self.frames: list[np.ndarray] = []

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Reset the task and start a new list of frames (with the reset frame if recording)."""
        out = self.env.reset(**kwargs)
        self.frames = []
        if self.recording:
            self.frames.append(np.asarray(self.env.render()))
        return out

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        """Step the task; keep the rendered frame if recording."""
        out = self.env.step(action)
        if self.recording:
            self.frames.append(np.asarray(self.env.render()))
        return out

    def pop_frames(self) -> list[np.ndarray]:
        """The frames kept since the last call (or reset), handed over and forgotten here."""
        frames, self.frames = self.frames, []
        return frames
