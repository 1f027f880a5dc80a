"""Orthogonal regularisation of building outlines ("squaring"), with a quality gate.

Method (written for geoseg):

1. The dominant orientation is the length-weighted circular mean of the edge
   directions taken modulo 90 degrees (angles are multiplied by 4 so that
   directions 90 degrees apart vote together), measured on a lightly simplified
   copy so that pixel-scale noise does not vote.
2. The polygon is rotated so that orientation is the x axis. Each edge is
   classed horizontal or vertical by its larger extent; consecutive edges of one
   class form a *run*, which becomes one axis-parallel line placed at the
   extent-weighted mean position of its edges.
3. Runs shorter than ``min_edge`` (noise, pixel steps) are absorbed: the short
   run disappears and its two neighbours (same class) become one line.
4. Consecutive runs intersect in the new vertices; the ring is rotated back.

Works best in a conformal metric frame (UTM), where right angles are right angles
on the ground. The result is accepted only if valid, non-empty and its IoU with
the input is at least ``min_iou``; otherwise the input is returned unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
import shapely.errors
from shapely import affinity
from shapely.geometry import Polygon

REGULARISED = 0
KEPT_ORIGINAL = 1


@dataclass
class _Run:
    """Consecutive edges of one class: a horizontal (y = pos) or vertical (x = pos) line."""

    horizontal: bool
    weight: float  # summed extent of the edges along the run's axis
    weighted_pos: float  # sum of extent * edge-midpoint position across the axis

    @property
    def pos(self) -> float:
        return self.weighted_pos / self.weight

    def absorb(self, other: _Run) -> None:
        self.weight += other.weight
        self.weighted_pos += other.weighted_pos


def regularize(polygon: Polygon, min_iou: float = 0.85, *, min_edge: float | None = None) -> tuple[Polygon, int]:
    """Square ``polygon``'s outline; returns ``(polygon, status)``.

    ``status`` is 0 when the squared outline passed the gate (valid, non-empty,
    IoU >= ``min_iou`` with the input), 1 when the input is returned unchanged.
    ``min_edge`` is the shortest side kept (default: 10 % of sqrt(area)), in the
    polygon's units.
    """
    if not isinstance(polygon, Polygon) or polygon.is_empty or not polygon.is_valid or polygon.area <= 0:
        return polygon, KEPT_ORIGINAL
    edge = 0.1 * math.sqrt(polygon.area) if min_edge is None else float(min_edge)
    try:
        candidate = _squared(polygon, edge)
        if candidate is not None and iou(candidate, polygon) >= min_iou:
            return candidate, REGULARISED
    except shapely.errors.GEOSException:
        pass  # a degenerate candidate: keep the input
    return polygon, KEPT_ORIGINAL


def _squared(polygon: Polygon, min_edge: float) -> Polygon | None:
    """The squared candidate (no gate), or None if it degenerates."""
    angle = dominant_orientation(_smoothed(polygon, 0.5 * min_edge))
    origin = polygon.centroid
    upright = affinity.rotate(polygon, -angle, origin=origin, use_radians=True)
    shell = _square_ring(np.asarray(upright.exterior.coords), min_edge)
    if shell is None:
        return None
    holes = []
    for ring in upright.interiors:
        squared = _square_ring(np.asarray(ring.coords), min_edge)
        holes.append(squared if squared is not None else np.asarray(ring.coords))
    return _cleaned(affinity.rotate(Polygon(shell, holes), angle, origin=origin, use_radians=True))


def dominant_orientation(polygon: Polygon) -> float:
    """Length-weighted dominant edge direction of the exterior, radians in [0, pi/2)."""
    xy = np.asarray(polygon.exterior.coords)
    d = np.diff(xy, axis=0)
    length = np.hypot(d[:, 0], d[:, 1])
    vote = np.sum(length * np.exp(4j * np.arctan2(d[:, 1], d[:, 0])))
    return float(np.angle(vote) / 4) % (math.pi / 2)


def _smoothed(polygon: Polygon, tolerance: float) -> Polygon:
    """A Douglas-Peucker copy whose long edges give a stable orientation (pixel noise removed)."""
    smooth = polygon.simplify(tolerance, preserve_topology=True)
    return smooth if isinstance(smooth, Polygon) and not smooth.is_empty and smooth.area > 0 else polygon


def iou(a: Polygon, b: Polygon) -> float:
    """Intersection over union of two polygons (0 when both are empty)."""
    inter = a.intersection(b).area
    union = a.area + b.area - inter
    return float(inter / union) if union > 0 else 0.0


def _runs(ring_xy: np.ndarray) -> list[_Run]:
    """Group the edges of a closed ring into alternating horizontal/vertical runs."""
    pts = ring_xy[:-1, :2]
    d = np.roll(pts, -1, axis=0) - pts
    mid = pts + d / 2
    runs: list[_Run] = []
    for (dx, dy), (mx, my) in zip(d, mid):
        horizontal = abs(dx) >= abs(dy)
        extent = (abs(dx) if horizontal else abs(dy)) + 1e-12
        run = _Run(horizontal, extent, extent * (my if horizontal else mx))
        if runs and runs[-1].horizontal == horizontal:
            runs[-1].absorb(run)
        else:
            runs.append(run)
    if len(runs) > 1 and runs[0].horizontal == runs[-1].horizontal:
        runs[0].absorb(runs.pop())
    return runs


def _drop_short_runs(runs: list[_Run], min_edge: float) -> list[_Run]:
    """Absorb the shortest run into its neighbours while it is shorter than ``min_edge``."""
    while len(runs) > 4:
        i = min(range(len(runs)), key=lambda k: runs[k].weight)
        if runs[i].weight >= min_edge:
            break
        runs = runs[i - 1 :] + runs[: i - 1] if i > 0 else runs[-1:] + runs[:-1]  # short run now at index 1
        runs[0].absorb(runs[2])
        runs = [runs[0]] + runs[3:]
    return runs


def _square_ring(ring_xy: np.ndarray, min_edge: float) -> np.ndarray | None:
    """The squared version of an (upright) closed ring, or None if it degenerates."""
    if len(ring_xy) < 4:
        return None
    runs = _drop_short_runs(_runs(ring_xy), min_edge)
    if len(runs) < 4 or len(runs) % 2:
        return None
    vertices = []
    for run, nxt in zip(runs, runs[1:] + runs[:1]):
        x, y = (nxt.pos, run.pos) if run.horizontal else (run.pos, nxt.pos)
        vertices.append((x, y))
    return np.asarray(vertices + vertices[:1])


def _cleaned(candidate: Polygon) -> Polygon | None:
    """Drop repeated/collinear vertices; repair if invalid (keeping the largest part)."""
    scale = math.sqrt(max(candidate.area, 1e-300))
    candidate = shapely.simplify(candidate, 1e-9 * scale, preserve_topology=True)
    if not candidate.is_valid:
        candidate = shapely.make_valid(candidate)
    if not isinstance(candidate, Polygon):
        parts = [g for g in getattr(candidate, "geoms", ()) if isinstance(g, Polygon)]
        candidate = max(parts, key=lambda g: g.area) if parts else None
    if candidate is None or candidate.is_empty or not candidate.is_valid:
        return None
    return candidate
