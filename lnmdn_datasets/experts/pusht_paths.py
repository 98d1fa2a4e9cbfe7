"""The Push-T expert's walks around the T: clearance tests, a ring of waypoints, the shortest walk.

Between pushes the agent walks to its next contact point without touching the block (a bump
would move it off the plan). :func:`segment_clear` tells whether a straight move keeps a
clearance from the T's rectangles; :func:`waypoint_ring` puts waypoints around the T's convex hull
(:func:`convex_hull`); :func:`walk_path` takes the straight move when it is clear, otherwise the
shortest way along the ring, and cuts it into commanded positions. Plain Python floats, as
:mod:`lnmdn_envs.pusht_geometry`.
"""

from __future__ import annotations

import itertools
import math

from lnmdn_envs.pusht import AGENT_RADIUS

__all__ = ["Point", "convex_hull", "segment_clear", "walk_path", "waypoint_ring"]

Point = tuple[float, float]


def _point_segment_distance(p: Point, a: Point, b: Point) -> float:
    abx, aby = b[0] - a[0], b[1] - a[1]
    apx, apy = p[0] - a[0], p[1] - a[1]
    denom = abx * abx + aby * aby
    t = 0.0 if denom == 0.0 else max(0.0, min(1.0, (apx * abx + apy * aby) / denom))
    dx, dy = apx - t * abx, apy - t * aby
    return math.hypot(dx, dy)


def _segments_cross(a: Point, b: Point, c: Point, d: Point) -> bool:
    def orient(p: Point, q: Point, r: Point) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    o1, o2 = orient(a, b, c), orient(a, b, d)
    o3, o4 = orient(c, d, a), orient(c, d, b)
    return (o1 > 0) != (o2 > 0) and (o3 > 0) != (o4 > 0)


def _inside_convex(p: Point, poly: list[Point]) -> bool:
    sign = 0.0
    n = len(poly)
    for i in range(n):
        a, b = poly[i], poly[(i + 1) % n]
        cross = (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
        if cross != 0.0:
            if sign == 0.0:
                sign = cross
            elif (cross > 0) != (sign > 0):
                return False
    return True


def segment_clear(a: Point, b: Point, rects: list[list[Point]], clearance: float) -> bool:
    """Whether segment ab stays at least ``clearance`` away from the T (rectangles ``rects``)."""
    lo_x, hi_x = min(a[0], b[0]) - clearance, max(a[0], b[0]) + clearance
    lo_y, hi_y = min(a[1], b[1]) - clearance, max(a[1], b[1]) + clearance
    for rect in rects:
        if (
            max(p[0] for p in rect) < lo_x
            or min(p[0] for p in rect) > hi_x
            or max(p[1] for p in rect) < lo_y
            or min(p[1] for p in rect) > hi_y
        ):
            continue  # bounding boxes apart by more than the clearance
        if _inside_convex(a, rect) or _inside_convex(b, rect):
            return False
        n = len(rect)
        for i in range(n):
            c, d = rect[i], rect[(i + 1) % n]
            if (
                _segments_cross(a, b, c, d)
                or _point_segment_distance(c, a, b) < clearance
                or _point_segment_distance(a, c, d) < clearance
                or _point_segment_distance(b, c, d) < clearance
            ):
                return False
    return True


def convex_hull(points: list[Point]) -> list[Point]:
    """The convex hull of ``points``, counter-clockwise (Andrew's monotone chain)."""
    pts = sorted(set(points))

    def cross(o: Point, a: Point, b: Point) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[Point] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[Point] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]  # counter-clockwise


def waypoint_ring(hull: list[Point], radius: float) -> list[Point]:
    """Waypoints around a CCW convex hull at distance ~``radius`` (3 per corner)."""
    ring: list[Point] = []
    n = len(hull)
    for i in range(n):
        prev, cur, nxt = hull[i - 1], hull[i], hull[(i + 1) % n]
        normals = []
        for a, b in ((prev, cur), (cur, nxt)):
            ex, ey = b[0] - a[0], b[1] - a[1]
            length = math.hypot(ex, ey)
            normals.append((ey / length, -ex / length))  # outward for a CCW polygon
        (n1x, n1y), (n2x, n2y) = normals
        mx, my = n1x + n2x, n1y + n2y
        ml = math.hypot(mx, my) or 1.0
        for nx, ny in ((n1x, n1y), (mx / ml, my / ml), (n2x, n2y)):
            ring.append((cur[0] + radius * nx, cur[1] + radius * ny))
    return ring


def walk_path(
    start: Point,
    goal: Point,
    rects: list[list[Point]],
    ring: list[Point],
    cache: dict[str, list[int]],
    nav_step: float,
) -> list[Point] | None:
    """Commanded positions that take the agent from ``start`` to ``goal`` around the T.

    ``cache["entries"]`` keeps, per decision, the ring points reachable straight from ``start``;
    consecutive positions are at most ``nav_step`` apart. None when no walk along ``ring`` is
    clear.
    """
    clearance = AGENT_RADIUS + 1.0
    if segment_clear(start, goal, rects, clearance):
        path = [start, goal]
    else:
        n = len(ring)
        seg = [math.dist(ring[i], ring[(i + 1) % n]) for i in range(n)]
        total = sum(seg)
        cum = [0.0]
        for length in seg[:-1]:
            cum.append(cum[-1] + length)
        if "entries" not in cache:
            cache["entries"] = [
                i for i in range(n) if segment_clear(start, ring[i], rects, clearance)
            ]
        entries = cache["entries"]
        exits = [j for j in range(n) if segment_clear(ring[j], goal, rects, clearance)]
        best: tuple[float, list[Point]] | None = None
        for i in entries:
            di = math.dist(start, ring[i])
            for j in exits:
                fwd = (cum[j] - cum[i]) % total
                for direction, arc in ((1, fwd), (-1, total - fwd if fwd else 0.0)):
                    length = di + arc + math.dist(ring[j], goal)
                    if best is None or length < best[0]:
                        idx = [i]
                        while idx[-1] != j:
                            idx.append((idx[-1] + direction) % n)
                        best = (length, [start, *[ring[k] for k in idx], goal])
        if best is None:
            return None
        path = best[1]
    # Discretise into commanded positions, nav_step apart.
    cmds: list[Point] = []
    for a, b in itertools.pairwise(path):
        d = math.dist(a, b)
        k = max(1, math.ceil(d / nav_step))
        for j in range(1, k + 1):
            t = j / k
            cmds.append((a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])))
    return cmds
