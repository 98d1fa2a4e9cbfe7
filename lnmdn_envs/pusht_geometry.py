"""The Push-T block's geometry: its shape, its pose in the world, and exact T-on-T overlap.

Plain Python floats throughout (these 4- and 9-point polygons are faster as lists than as numpy
arrays). The env (coverage, keypoint observations), the scripted expert (planning) and the zarr
converter (coverage of recorded states) all place the T with :func:`body_to_world`, so they
round identically.

The T block is the union of two rectangles with disjoint interiors (Diffusion Policy's ``add_tee``
with ``scale=30``, ``length=4``):

::

    bar  : x in [-60, 60], y in [0, 30]
    stem : x in [-15, 15], y in [30, 120]        (body frame; the origin is the bar's edge centre)

so ``area(block ∩ goal)`` is the sum over the four rectangle pairs of the area of a convex-convex
intersection. Each pair is clipped exactly (Sutherland–Hodgman against the goal rectangle's four
half-planes) and measured with the shoelace formula. This is the same quantity Diffusion Policy
and gym-pusht get from shapely's ``MultiPolygon.intersection(...).area``, about ten times faster
for these 4-vertex polygons, and with no GEOS dependency.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = [
    "T_AREA",
    "T_KEYPOINTS",
    "T_OUTLINE",
    "T_RECTS",
    "body_to_world",
    "intersection_area",
    "t_overlap_area",
    "t_world_rects",
]

Point = tuple[float, float]
Polygon = list[Point]

# The two rectangles of the T in its body frame, as Diffusion Policy defines the vertices.
T_RECTS: tuple[tuple[Point, ...], ...] = (
    ((-60.0, 30.0), (60.0, 30.0), (60.0, 0.0), (-60.0, 0.0)),
    ((-15.0, 30.0), (-15.0, 120.0), (15.0, 120.0), (15.0, 30.0)),
)
T_AREA = 120.0 * 30.0 + 30.0 * 90.0  # 6300 px^2

# The T's outline in its body frame (a simple polygon; the stem hangs off the bar at y = 30).
T_OUTLINE: tuple[Point, ...] = (
    (-60.0, 0.0),
    (60.0, 0.0),
    (60.0, 30.0),
    (15.0, 30.0),
    (15.0, 120.0),
    (-15.0, 120.0),
    (-15.0, 30.0),
    (-60.0, 30.0),
)

# The 9 block keypoints of the ``keypoints`` observation (body frame): the T's 8 outline corners,
# then its centre of mass (0, 45).
T_KEYPOINTS: tuple[Point, ...] = (*T_OUTLINE, (0.0, 45.0))


def _signed_area(poly: Polygon) -> float:
    s = 0.0
    n = len(poly)
    for i in range(n):
        x0, y0 = poly[i]
        x1, y1 = poly[(i + 1) % n]
        s += x0 * y1 - x1 * y0
    return 0.5 * s


def body_to_world(points: Iterable[Point], x: float, y: float, angle: float) -> list[Point]:
    """Body-frame points of a T at pose ``(x, y, angle)``, in world coordinates.

    The one place the T's body-to-world transform is written: rotate by ``angle`` about the body
    origin, then translate by ``(x, y)``, evaluated as ``x + c px - s py`` and ``y + s px + c py``
    in that order (the order fixes the rounding, which recorded datasets depend on). For a
    direction (an edge normal), pass ``x = y = 0``.

    Args:
        points: ``(px, py)`` pairs in the body frame (e.g. :data:`T_KEYPOINTS`).
        x: body-frame origin x (pymunk ``body.position``).
        y: body-frame origin y.
        angle: body angle in radians.

    Returns:
        The points in world coordinates, in the same order.
    """
    c = math.cos(angle)
    s = math.sin(angle)
    return [(x + c * px - s * py, y + s * px + c * py) for px, py in points]


def t_world_rects(x: float, y: float, angle: float) -> list[Polygon]:
    """World vertices of the T's two rectangles at pose ``(x, y, angle)``, each counter-clockwise.

    Args:
        x: body-frame origin x (pymunk ``body.position``).
        y: body-frame origin y.
        angle: body angle in radians.

    Returns:
        Two 4-vertex polygons, counter-clockwise in the (x, y) plane.
    """
    rects = []
    for rect in T_RECTS:
        poly = body_to_world(rect, x, y, angle)
        if _signed_area(poly) < 0.0:
            poly.reverse()
        rects.append(poly)
    return rects


def intersection_area(subject: Polygon, clipper: Polygon) -> float:
    """Area of the intersection of two convex polygons (the clipper counter-clockwise).

    Args:
        subject: convex polygon, either orientation.
        clipper: convex polygon, counter-clockwise.

    Returns:
        The intersection's area (0.0 when they are disjoint or touch along an edge).
    """
    out = subject
    n = len(clipper)
    for i in range(n):
        if not out:
            return 0.0
        px, py = clipper[i]
        qx, qy = clipper[(i + 1) % n]
        ex = qx - px
        ey = qy - py
        inp = out
        out = []
        m = len(inp)
        sx, sy = inp[-1]
        s_in = ex * (sy - py) - ey * (sx - px)
        for j in range(m):
            cx, cy = inp[j]
            c_in = ex * (cy - py) - ey * (cx - px)
            if c_in >= 0.0:
                if s_in < 0.0:
                    t = s_in / (s_in - c_in)
                    out.append((sx + t * (cx - sx), sy + t * (cy - sy)))
                out.append((cx, cy))
            elif s_in >= 0.0:
                t = s_in / (s_in - c_in)
                out.append((sx + t * (cx - sx), sy + t * (cy - sy)))
            sx, sy, s_in = cx, cy, c_in
    if len(out) < 3:
        return 0.0
    return abs(_signed_area(out))


def _bbox(poly: Polygon) -> tuple[float, float, float, float]:
    xs = [p[0] for p in poly]
    ys = [p[1] for p in poly]
    return min(xs), min(ys), max(xs), max(ys)


def t_overlap_area(block: list[Polygon], goal: list[Polygon]) -> float:
    """Area of ``block ∩ goal`` for two Ts given as their rectangles (``t_world_rects``).

    Args:
        block: the block's two world rectangles.
        goal: the goal's two world rectangles (counter-clockwise).

    Returns:
        The overlap area in px^2 (at most ``T_AREA``).
    """
    total = 0.0
    goal_boxes = [_bbox(g) for g in goal]
    for b in block:
        bx0, by0, bx1, by1 = _bbox(b)
        for g, (gx0, gy0, gx1, gy1) in zip(goal, goal_boxes, strict=True):
            if bx0 >= gx1 or gx0 >= bx1 or by0 >= gy1 or gy0 >= by1:
                continue
            total += intersection_area(b, g)
    return total
