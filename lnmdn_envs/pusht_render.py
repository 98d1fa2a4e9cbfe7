"""Push-T's top-down drawing (OpenCV, anti-aliased, sub-pixel), in Diffusion Policy's colours.

:func:`draw_scene` draws the goal T, the walls, the block and the agent (x right, y down, as
Diffusion Policy's images) at any size; the env uses it for its ``pixels`` observations and for
``render()`` (which also marks the last commanded position).
"""

from __future__ import annotations

import cv2
import numpy as np

from lnmdn_envs.pusht_geometry import t_world_rects
from lnmdn_envs.pusht_physics import AGENT_RADIUS, WALL_RADIUS, WALLS, WORKSPACE

__all__ = ["draw_scene"]

# Colours (RGB) of Diffusion Policy's renderer.
_WHITE = (255, 255, 255)
_GOAL_COLOR = (144, 238, 144)  # LightGreen
_BLOCK_COLOR = (119, 136, 153)  # LightSlateGray
_AGENT_COLOR = (65, 105, 225)  # RoyalBlue
_WALL_COLOR = (211, 211, 211)  # LightGray
_ACTION_COLOR = (255, 0, 0)
_SHIFT = 4  # sub-pixel bits for cv2 drawing


def draw_scene(
    size: int,
    goal_rects: list[list[tuple[float, float]]],
    agent_pos: tuple[float, float],
    block_pose: tuple[float, float, float],
    last_action: np.ndarray | None,
) -> np.ndarray:
    """Draw the scene top-down (x right, y down, as Diffusion Policy's images) at ``size``.

    Args:
        size: side of the ``(size, size, 3)`` uint8 image.
        goal_rects: the goal T's two rectangles in the world.
        agent_pos: the agent's ``(x, y)``.
        block_pose: the block's ``(x, y, angle)``.
        last_action: the last commanded position, marked with a cross; None: no mark.
    """
    img = np.full((size, size, 3), _WHITE, dtype=np.uint8)
    scale = size / WORKSPACE * (1 << _SHIFT)

    def fill(rects: list[list[tuple[float, float]]], color: tuple[int, int, int]) -> None:
        pts = [np.round(np.asarray(r) * scale).astype(np.int32) for r in rects]
        cv2.fillPoly(img, pts, color, lineType=cv2.LINE_AA, shift=_SHIFT)

    fill(goal_rects, _GOAL_COLOR)
    thickness = max(1, round(2 * WALL_RADIUS * size / WORKSPACE))
    for a, b in WALLS:
        p0 = (round(a[0] * scale), round(a[1] * scale))
        p1 = (round(b[0] * scale), round(b[1] * scale))
        cv2.line(img, p0, p1, _WALL_COLOR, thickness, cv2.LINE_AA, _SHIFT)
    bx, by, angle = block_pose
    fill(t_world_rects(bx, by, angle), _BLOCK_COLOR)
    ax, ay = agent_pos
    center = (round(ax * scale), round(ay * scale))
    cv2.circle(img, center, round(AGENT_RADIUS * scale), _AGENT_COLOR, -1, cv2.LINE_AA, _SHIFT)
    if last_action is not None:
        coord = (
            int(last_action[0] * size / WORKSPACE),
            int(last_action[1] * size / WORKSPACE),
        )
        cv2.drawMarker(
            img,
            coord,
            _ACTION_COLOR,
            markerType=cv2.MARKER_CROSS,
            markerSize=max(3, int(8 / 96 * size)),
            thickness=max(1, int(1 / 96 * size)),
        )
    return img
