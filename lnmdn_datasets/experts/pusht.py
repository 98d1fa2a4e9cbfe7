"""Push-T expert: a push planner over our own simulator.

The expert repeats one decision until the block sits on the goal::

    1. candidate contacts : points on the T's outline (every ``contact_spacing`` px), each pushed
                            along the edge's inward normal (contacts are frictionless, so only
                            the normal component of a push acts);
    2. lookahead          : each candidate push is simulated in a scratch PushTEnv from the
                            current block pose (``reset_to_state``), recording the pose error
                            after every step of the push;
    3. choice             : the (contact, length) with the best error decrease per env step,
                            counting the steps to walk around the block to the contact; one of the
                            near-best options is drawn at random, so demonstrations differ;
    4. execution          : walk around the T (a ring of waypoints outside its convex hull),
                            push, then decide again (also when the block moved unexpectedly).

The walks of steps 3 and 4 (clearance tests, the ring, the shortest way along it) are
:mod:`lnmdn_datasets.experts.pusht_paths`.

The pose error is the mean squared distance between the block's and the goal's keypoints (the
T's 8 outline corners and its centre of mass), which weighs translation and rotation together and
has a single minimum. Pushes shorten as the error shrinks, which is what the final ~2 px / ~2 deg
precision of coverage > 0.95 needs.

Usage (the Expert protocol, on the single-step task env)::

    env = lnmdn_envs.make_task_env("lnmdn/PushT-v0")
    expert = PushTExpert()
    obs, info = env.reset(seed=0)
    expert.reset(env, np.random.default_rng(0))
    while True:
        obs, reward, terminated, truncated, info = env.step(expert.act(env, obs))
        if terminated or truncated:
            break

``measure_success(n_episodes, seed)`` runs that loop over seeded episodes and reports success rate,
episode lengths and speed.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from lnmdn_datasets.experts import rollout_expert
from lnmdn_datasets.experts.pusht_paths import (
    Point,
    convex_hull,
    segment_clear,
    walk_path,
    waypoint_ring,
)
from lnmdn_envs.pusht import AGENT_RADIUS, GOAL_POSE, WORKSPACE, PushTEnv
from lnmdn_envs.pusht_geometry import T_KEYPOINTS, T_OUTLINE, body_to_world

__all__ = ["PushTExpert", "measure_success"]

logger = logging.getLogger(__name__)

_RECTS_LOCAL: tuple[tuple[Point, ...], ...] = (
    ((-60.0, 0.0), (60.0, 0.0), (60.0, 30.0), (-60.0, 30.0)),
    ((-15.0, 30.0), (15.0, 30.0), (15.0, 120.0), (-15.0, 120.0)),
)


def _keypoints(x: float, y: float, angle: float) -> np.ndarray:
    """(9, 2) world keypoints of the block at ``(x, y, angle)``."""
    return np.asarray(body_to_world(T_KEYPOINTS, x, y, angle))


_GOAL_KP = _keypoints(*GOAL_POSE)


def pose_error(x: float, y: float, angle: float) -> float:
    """Mean squared keypoint distance (px^2) between the block at ``(x, y, angle)`` and the goal."""
    d = _keypoints(x, y, angle) - _GOAL_KP
    return float(np.mean(np.sum(d * d, axis=1)))


@dataclass
class _Option:
    score: float
    waypoints: list[Point]
    pushes: list[Point]
    retreat: Point


class PushTExpert:
    """Push planner for ``lnmdn/PushT-v0`` (the Expert protocol of ``lnmdn_datasets.experts``).

    Args:
        contact_spacing: spacing (px) of candidate contact points along the T's outline.
        max_push_steps: longest push considered, in env steps.
        nav_step: commanded advance (px) per env step while walking around the block.
        ring_margin: clearance (px) between the agent's edge and the T's convex hull on the walk.
        near_best: options scoring at least this fraction of the best are drawn uniformly (the
            source of variation between demonstrations); 1.0 always takes the best.
        push_scale: range of the per-episode push speed factor, drawn uniformly at ``reset``
            (a hidden variable of the demonstration); ``(1.0, 1.0)`` fixes it.

    With ``near_best=1.0`` and ``push_scale=(1.0, 1.0)`` the expert is deterministic: each
    decision is a function of the state it is taken in (the block does not move while the agent
    walks to its contact, so the decision can be read off the observations that follow it too).
    That is what ``lnmdn/pusht/expert-v1`` records.
    """

    def __init__(
        self,
        contact_spacing: float = 15.0,
        max_push_steps: int = 8,
        nav_step: float = 25.0,
        ring_margin: float = 14.0,
        near_best: float = 0.8,
        push_scale: tuple[float, float] = (0.8, 1.25),
    ):
        if contact_spacing <= 0 or max_push_steps < 1 or nav_step <= 0 or ring_margin < 0:
            raise ValueError(
                "PushTExpert needs contact_spacing > 0, max_push_steps >= 1, nav_step > 0, "
                f"ring_margin >= 0; got {contact_spacing=}, {max_push_steps=}, {nav_step=}, "
                f"{ring_margin=}"
            )
        if not 0.0 < near_best <= 1.0:
            raise ValueError(f"near_best must be in (0, 1], got {near_best=}")
        lo, hi = (float(v) for v in push_scale)
        if not 0.0 < lo <= hi:
            raise ValueError(
                f"push_scale must be a range (lo, hi) with 0 < lo <= hi, got {push_scale=}"
            )
        self.push_scale = (lo, hi)
        self.contact_spacing = float(contact_spacing)
        self.max_push_steps = int(max_push_steps)
        self.nav_step = float(nav_step)
        self.ring_margin = float(ring_margin)
        self.near_best = float(near_best)
        self._scratch = PushTEnv(obs_type="state")
        self._rng = np.random.default_rng(0)
        self._queue: list[Point] = []
        self._planned_block: np.ndarray | None = None
        self._push_scale = 1.0
        self._walk_left = 0
        contacts = self._contact_points()
        self._contact_xy = [p for p, _ in contacts]  # body frame
        self._normal_xy = [n for _, n in contacts]

    # ------------------------------------------------------------------ Expert protocol
    def reset(self, env: gym.Env[Any, Any], rng: np.random.Generator) -> None:
        """Start an episode; ``rng`` draws this demonstration's push speed and choices."""
        self._check_env(env)
        self._rng = rng
        self._queue = []
        self._planned_block = None
        self._walk_left = 0
        lo, hi = self.push_scale
        self._push_scale = lo if lo == hi else float(rng.uniform(lo, hi))

    def act(self, env: gym.Env[Any, Any], obs: np.ndarray) -> np.ndarray:
        """Return the commanded agent position ``(2,)`` float32 for the current state."""
        sim = self._check_env(env)
        state = sim.get_state()
        block = state[2:]
        if self._queue and self._walk_left > 0 and self._planned_block is not None:
            moved = np.abs(block - self._planned_block)
            if moved[0] > 0.5 or moved[1] > 0.5 or moved[2] > 0.01:
                self._queue = []  # bumped the block while walking to the contact: decide again
        if not self._queue:
            self._queue = self._plan(state)
            self._planned_block = block.copy()
        self._walk_left -= 1
        return np.asarray(self._queue.pop(0), dtype=np.float32)

    # ------------------------------------------------------------------ planning
    @staticmethod
    def _check_env(env: gym.Env[Any, Any]) -> PushTEnv:
        sim = env.unwrapped
        if not isinstance(sim, PushTEnv):
            raise TypeError(
                f"PushTExpert drives lnmdn/PushT-v0 (PushTEnv), got {type(sim).__name__}; "
                "build the env with lnmdn_envs.make_task_env('lnmdn/PushT-v0')"
            )
        return sim

    def _contact_points(self) -> list[tuple[Point, Point]]:
        """(point, outward normal) pairs along the T's outline, in the body frame."""
        out = []
        edges = list(zip(T_OUTLINE, T_OUTLINE[1:] + T_OUTLINE[:1], strict=True))
        area2 = sum(ax * by - bx * ay for (ax, ay), (bx, by) in edges)
        orient = 1.0 if area2 > 0 else -1.0
        for (ax, ay), (bx, by) in edges:
            length = math.hypot(bx - ax, by - ay)
            nx, ny = orient * (by - ay) / length, -orient * (bx - ax) / length
            k = max(1, round(length / self.contact_spacing))
            for j in range(k):
                t = (j + 0.5) / k
                out.append(((ax + t * (bx - ax), ay + t * (by - ay)), (nx, ny)))
        return out

    def _plan(self, state: np.ndarray) -> list[Point]:
        agent = (float(state[0]), float(state[1]))
        bx, by, angle = (float(v) for v in state[2:])
        err0 = pose_error(bx, by, angle)
        rects = [body_to_world(r, bx, by, angle) for r in _RECTS_LOCAL]
        hull = convex_hull([p for r in rects for p in r])
        ring = waypoint_ring(hull, AGENT_RADIUS + self.ring_margin)
        # Contacts and their outward normals in the world (a normal is a direction: no translation).
        contacts = body_to_world(self._contact_xy, bx, by, angle)
        normals = body_to_world(self._normal_xy, 0.0, 0.0, angle)
        # Push length per step shrinks with the error: long pushes far away, fine ones near.
        step = self._push_scale * min(12.0, max(1.0, 0.12 * math.sqrt(err0)))
        options: list[_Option] = []
        cache: dict[str, list[int]] = {}  # ring points the agent can walk to straight away
        for (wx, wy), (wnx, wny) in zip(contacts, normals, strict=True):
            gap = AGENT_RADIUS + 2.0
            pre = (wx + gap * wnx, wy + gap * wny)
            if not (0.0 <= pre[0] <= WORKSPACE and 0.0 <= pre[1] <= WORKSPACE):
                continue
            if not segment_clear(pre, pre, rects, AGENT_RADIUS + 1.0):
                continue  # the agent does not fit there (inside the T's corners)
            self._scratch.reset(options={"reset_to_state": [pre[0], pre[1], bx, by, angle]})
            gains: list[tuple[int, float, Point]] = []  # (push steps, error decrease, last cmd)
            for k in range(1, self.max_push_steps + 1):
                cmd = (pre[0] - wnx * step * k, pre[1] - wny * step * k)
                _, _, terminated, _, info = self._scratch.step(cmd)
                x, y, a = info["block_pose"]
                gain = err0 - (0.0 if terminated else pose_error(x, y, a))
                if gain > 0:
                    gains.append((k, gain, cmd))
                if terminated:
                    break
            if not gains:
                continue
            walk = walk_path(agent, pre, rects, ring, cache, self.nav_step)
            if walk is None:
                continue
            for k, gain, cmd in gains:
                pushes = [
                    (pre[0] - wnx * step * j, pre[1] - wny * step * j) for j in range(1, k + 1)
                ]
                retreat = (cmd[0] + wnx * (step + 6.0), cmd[1] + wny * (step + 6.0))
                options.append(_Option(gain / (len(walk) + k + 1), walk, pushes, retreat))
        if not options:
            # Nothing helps from here (rare): step back from the block and look again.
            away = np.asarray(agent) - np.asarray([bx, by])
            away = away / (np.linalg.norm(away) + 1e-9) * 20.0
            target = np.clip(np.asarray(agent) + away, 0, WORKSPACE)
            self._walk_left = 0
            return [(float(target[0]), float(target[1]))]
        best = max(o.score for o in options)
        if self.near_best >= 1.0:
            choice = next(o for o in options if o.score == best)  # no draw: deterministic
        else:
            pool = [o for o in options if o.score >= self.near_best * best]
            choice = pool[int(self._rng.integers(len(pool)))]
        self._walk_left = len(choice.waypoints)
        return [*choice.waypoints, *choice.pushes, choice.retreat]


def measure_success(
    n_episodes: int = 200, seed: int = 0, expert: PushTExpert | None = None
) -> dict[str, Any]:
    """Run the expert on ``n_episodes`` seeded episodes of lnmdn/PushT-v0 (300-step limit).

    Episode ``i`` resets with seed ``seed + i`` and gives the expert
    ``np.random.default_rng([seed, i])``.

    Returns:
        ``success_rate``, ``mean_score`` (final coverage score), ``lengths`` (per episode),
        ``mean_length``, ``successes`` (per episode), ``seconds_per_episode``, ``steps_per_second``.
    """
    import lnmdn_envs

    env = lnmdn_envs.make_task_env("lnmdn/PushT-v0")
    expert = expert or PushTExpert()
    successes, lengths, scores = [], [], []
    start = time.perf_counter()
    for i in range(n_episodes):
        ep = rollout_expert(env, expert, seed + i, np.random.default_rng([seed, i]))
        successes.append(ep.success)
        lengths.append(len(ep.actions))
        scores.append(float(ep.infos["score"][-1]))
        logger.info("episode %d: success=%s length=%d", i, successes[-1], lengths[-1])
    elapsed = time.perf_counter() - start
    return {
        "n_episodes": n_episodes,
        "success_rate": float(np.mean(successes)),
        "mean_score": float(np.mean(scores)),
        "mean_length": float(np.mean(lengths)),
        "lengths": lengths,
        "successes": successes,
        "seconds_per_episode": elapsed / n_episodes,
        "steps_per_second": float(np.sum(lengths)) / elapsed,
    }
