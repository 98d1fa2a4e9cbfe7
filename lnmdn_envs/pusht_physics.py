"""Push-T's pymunk simulation, Diffusion Policy's to the float: workspace, walls, agent, T block.

The construction order, the agent's PD controller and the block's mass properties are Diffusion
Policy's (``pusht_env.py``); :mod:`lnmdn_envs.pusht` describes them and puts the task's rules
(goal, coverage, reward, observations) on top. :func:`build_space` makes a fresh space,
:func:`apply_state` places the agent and the block, :func:`simulate` runs one control step.
"""

from __future__ import annotations

import numpy as np
import pymunk

from lnmdn_envs.pusht_geometry import T_RECTS

__all__ = [
    "AGENT_RADIUS",
    "CONTROL_HZ",
    "DT",
    "K_P",
    "K_V",
    "N_SUBSTEPS",
    "SIM_HZ",
    "WALLS",
    "WALL_RADIUS",
    "WORKSPACE",
    "apply_state",
    "build_space",
    "simulate",
]

WORKSPACE = 512.0
SIM_HZ = 100
CONTROL_HZ = 10
DT = 1.0 / SIM_HZ
N_SUBSTEPS = SIM_HZ // CONTROL_HZ
K_P = 100.0
K_V = 20.0
AGENT_RADIUS = 15.0
WALLS = (((5, 506), (5, 5)), ((5, 5), (506, 5)), ((506, 5), (506, 506)), ((5, 506), (506, 506)))
WALL_RADIUS = 2.0


def build_space() -> tuple[pymunk.Space, pymunk.Body, pymunk.Body]:
    """A fresh pymunk space in Diffusion Policy's construction order (walls, agent, block).

    Returns:
        ``(space, agent, block)``: the agent a kinematic circle at (256, 400), the T block at
        (256, 300) with angle 0.
    """
    space = pymunk.Space()
    space.gravity = (0.0, 0.0)
    space.damping = 0.0
    space.add(*[pymunk.Segment(space.static_body, a, b, WALL_RADIUS) for a, b in WALLS])

    agent = pymunk.Body(body_type=pymunk.Body.KINEMATIC)
    agent.position = (256, 400)
    space.add(agent, pymunk.Circle(agent, AGENT_RADIUS))

    # Diffusion Policy's inertia is the bar's moment counted twice.
    bar_moment = pymunk.moment_for_poly(1.0, vertices=list(T_RECTS[0]))
    block = pymunk.Body(1.0, bar_moment + bar_moment)
    shapes = [pymunk.Poly(block, list(rect)) for rect in T_RECTS]
    block.center_of_gravity = (shapes[0].center_of_gravity + shapes[1].center_of_gravity) / 2
    block.angle = 0.0
    block.position = (256, 300)
    space.add(block, *shapes)
    return space, agent, block


def apply_state(
    space: pymunk.Space, agent: pymunk.Body, block: pymunk.Body, state: np.ndarray, legacy: bool
) -> None:
    """Put the agent and the block at ``state`` ``[agent_x, agent_y, block_x, block_y, angle]``.

    ``legacy``: Diffusion Policy's order (block position, then angle, which turns the block about
    its centre of gravity); otherwise the angle first, so the block's origin lands at the given
    position. One physics step settles the state, as in Diffusion Policy.
    """
    ax, ay, bx, by, angle = (float(v) for v in state)
    agent.position = (ax, ay)
    if legacy:
        block.position = (bx, by)
        block.angle = angle
    else:
        block.angle = angle
        block.position = (bx, by)
    space.step(DT)


def simulate(space: pymunk.Space, agent: pymunk.Body, ax: float, ay: float) -> None:
    """Run the 10 physics steps of one control step towards the commanded ``(ax, ay)``."""
    for _ in range(N_SUBSTEPS):
        px, py = agent.position
        vx, vy = agent.velocity
        # Same operation order as Diffusion Policy: v += (k_p (a - p) + k_v (0 - v)) dt.
        vx = vx + (K_P * (ax - px) + K_V * (0.0 - vx)) * DT
        vy = vy + (K_P * (ay - py) + K_V * (0.0 - vy)) * DT
        agent.velocity = (vx, vy)
        space.step(DT)
