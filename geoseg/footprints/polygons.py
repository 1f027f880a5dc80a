"""Instance labels -> polygons in map coordinates (one per instance, holes kept)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import shapely
from affine import Affine
from shapely.geometry import Polygon, shape


def polygons_from_labels(labels: np.ndarray, transform: Affine, prob: np.ndarray) -> list[tuple[Polygon, float, int]]:
    """One ``(polygon, p_mean, label)`` per instance of a ``(Y, X)`` label image, by label.

    ``transform`` maps ``(col, row)`` to map ``(x, y)``; ``p_mean`` is the mean of
    ``prob`` over the instance's pixels. Pixels are traced 4-connected, so a
    4-connected instance is one polygon; should one yield several parts, their
    union is taken and, if still disjoint, the largest part is kept.
    """
    labels_yx = np.ascontiguousarray(labels, dtype=np.int32)
    prob_yx = np.asarray(prob, dtype=np.float64)
    if labels_yx.shape != prob_yx.shape:
        raise ValueError(f"labels {labels_yx.shape} and prob {prob_yx.shape} must have the same (Y, X) shape")
    if labels_yx.size == 0 or labels_yx.max() <= 0:
        return []
    count, total = label_sums(labels_yx, prob_yx)
    polygons = traced_polygons(labels_yx, transform)
    return [(poly, float(total[lab] / count[lab]), lab) for lab, poly in sorted(polygons.items())]


def traced_polygons(labels: np.ndarray, transform: Affine) -> dict[int, Polygon]:
    """One polygon per label (> 0) of a ``(Y, X)`` label image, traced 4-connected (see :func:`polygons_from_labels`)."""
    labels_yx = np.ascontiguousarray(labels, dtype=np.int32)
    if labels_yx.size == 0:
        return {}
    return {lab: merge_parts(parts) for lab, parts in _traced_parts(labels_yx, transform).items()}


def label_sums(labels_yx: np.ndarray, prob_yx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel count and probability sum per label (index = label)."""
    flat = labels_yx.ravel()
    valid = flat > 0
    count = np.bincount(flat[valid], minlength=int(flat.max()) + 1)
    total = np.bincount(flat[valid], weights=prob_yx.ravel()[valid], minlength=count.size)
    return count, total


def _traced_parts(labels_yx: np.ndarray, transform: Affine) -> dict[int, list[Polygon]]:
    from rasterio import features

    parts: dict[int, list[Polygon]] = defaultdict(list)
    for geom, value in features.shapes(labels_yx, mask=labels_yx > 0, connectivity=4, transform=transform):
        parts[int(value)].append(shape(geom))
    return parts


def merge_parts(parts: list[Polygon]) -> Polygon:
    """Union of polygon parts; the largest piece if the union is still disjoint."""
    merged = parts[0] if len(parts) == 1 else shapely.union_all(parts)
    if isinstance(merged, Polygon):
        return merged
    pieces = [g for g in getattr(merged, "geoms", ()) if isinstance(g, Polygon)]
    if not pieces:
        raise ValueError(f"traced pixels gave a {merged.geom_type}, not a polygon")
    return max(pieces, key=lambda g: g.area)
