"""Probability map -> labelled building instances.

Foreground is ``prob >= threshold`` on valid pixels. Touching buildings are split
with a marker-controlled watershed; the splitting is deliberately conservative
(under-splitting is preferred to cutting one building in pieces):

* distance mode: markers are the h-maxima (h = 2 px) of the Euclidean distance
  transform of the foreground; after the watershed, neighbouring regions whose
  shared border is nearly as thick as the thinner of the two (saddle of the
  distance >= 0.75 x its peak) are merged again, so a wide neck is never cut.
* boundary mode: markers are the connected components of foreground pixels
  whose border probability is below 0.5; the watershed floods the border map.

Every foreground pixel ends up in exactly one instance (components without a
marker become instances of their own); all instances are 4-connected.
Connected components of the foreground are processed independently, so the
labelling of a component does not depend on anything outside it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)
EIGHT_CONNECTED = ndimage.generate_binary_structure(2, 2)

H_MAXIMA_PX = 2.0  # a distance peak must rise this many pixels above its saddle to seed a building
MERGE_SADDLE_RATIO = 0.75  # merge neighbours whose border is at least this thick relative to the thinner one


def label_instances(
    prob: np.ndarray,
    valid: np.ndarray,
    threshold: float,
    split_touching: bool = True,
    min_pixels: int = 1,
    boundary: np.ndarray | None = None,
) -> np.ndarray:
    """Label building instances in a ``(Y, X)`` probability map.

    ``prob`` is in [0, 1]; ``valid`` is False on nodata (never building, whatever
    ``prob`` says there); ``boundary`` is an optional ``(Y, X)`` border probability
    used for splitting instead of the distance transform. Instances smaller than
    ``min_pixels`` are dropped. Returns ``int32`` labels ``1..N``, 0 = background.
    """
    prob_yx = np.asarray(prob)
    valid_yx = np.asarray(valid, dtype=bool)
    if prob_yx.ndim != 2 or prob_yx.shape != valid_yx.shape:
        raise ValueError(f"prob {prob_yx.shape} and valid {valid_yx.shape} must be the same (Y, X) shape")
    if boundary is not None and np.shape(boundary) != prob_yx.shape:
        raise ValueError(f"boundary {np.shape(boundary)} must have the shape of prob {prob_yx.shape}")
    fg_yx = (prob_yx >= threshold) & valid_yx  # NaN compares False
    if not fg_yx.any():
        return np.zeros(prob_yx.shape, dtype=np.int32)
    if not split_touching:
        labels_yx, _ = ndimage.label(fg_yx, FOUR_CONNECTED)
    elif boundary is not None:
        labels_yx = _split_by_boundary(fg_yx, np.asarray(boundary, dtype=np.float32))
    else:
        labels_yx = _split_by_distance(fg_yx)
    labels_yx = _label_leftovers(labels_yx, fg_yx)
    return _drop_small(labels_yx, min_pixels)


def _split_by_distance(fg_yx: np.ndarray) -> np.ndarray:
    """Watershed on the distance transform, seeded by its h-maxima, then re-merge shallow cuts."""
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    dist_yx = ndimage.distance_transform_edt(fg_yx)
    markers_yx, _ = ndimage.label(h_maxima(dist_yx, H_MAXIMA_PX) > 0, EIGHT_CONNECTED)
    labels_yx = watershed(-dist_yx, markers_yx, mask=fg_yx, connectivity=1)
    return _merge_shallow_cuts(labels_yx, dist_yx)


def _split_by_boundary(fg_yx: np.ndarray, boundary_yx: np.ndarray) -> np.ndarray:
    """Watershed on the border probability, seeded by the foreground cores away from borders."""
    from skimage.segmentation import watershed

    markers_yx, _ = ndimage.label(fg_yx & (boundary_yx < 0.5), FOUR_CONNECTED)
    return watershed(boundary_yx, markers_yx, mask=fg_yx, connectivity=1)


def _neighbour_saddles(labels_yx: np.ndarray, dist_yx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each pair of 4-adjacent labels ``(lo, hi)``: the highest distance along their border."""
    los, his, saddles = [], [], []
    for axis in (0, 1):
        a = labels_yx[:-1, :] if axis == 0 else labels_yx[:, :-1]
        b = labels_yx[1:, :] if axis == 0 else labels_yx[:, 1:]
        da = dist_yx[:-1, :] if axis == 0 else dist_yx[:, :-1]
        db = dist_yx[1:, :] if axis == 0 else dist_yx[:, 1:]
        m = (a != b) & (a > 0) & (b > 0)
        los.append(np.minimum(a[m], b[m]))
        his.append(np.maximum(a[m], b[m]))
        saddles.append(np.minimum(da[m], db[m]))
    lo, hi, saddle = np.concatenate(los), np.concatenate(his), np.concatenate(saddles)
    if lo.size == 0:
        return lo, hi, saddle
    key = lo.astype(np.int64) * (int(labels_yx.max()) + 1) + hi
    order = np.argsort(key, kind="stable")
    key, lo, hi, saddle = key[order], lo[order], hi[order], saddle[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    return lo[starts], hi[starts], np.maximum.reduceat(saddle, starts)


def _merge_shallow_cuts(labels_yx: np.ndarray, dist_yx: np.ndarray) -> np.ndarray:
    """Merge adjacent regions whose shared border is thick compared to the thinner region."""
    n = int(labels_yx.max())
    lo, hi, saddle = _neighbour_saddles(labels_yx, dist_yx)
    if lo.size == 0:
        return labels_yx
    peak = np.zeros(n + 1)
    peak[1:] = ndimage.maximum(dist_yx, labels_yx, index=np.arange(1, n + 1))
    parent = np.arange(n + 1)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for k in np.argsort(-saddle, kind="stable"):
        ra, rb = find(int(lo[k])), find(int(hi[k]))
        if ra != rb and saddle[k] >= MERGE_SADDLE_RATIO * min(peak[ra], peak[rb]):
            parent[rb] = ra
            peak[ra] = max(peak[ra], peak[rb])
    roots = np.array([find(i) for i in range(n + 1)])
    return roots[labels_yx]


def _label_leftovers(labels_yx: np.ndarray, fg_yx: np.ndarray) -> np.ndarray:
    """Give foreground pixels that no marker reached their own 4-connected instances."""
    rest_yx = fg_yx & (labels_yx == 0)
    if rest_yx.any():
        extra_yx, _ = ndimage.label(rest_yx, FOUR_CONNECTED)
        labels_yx = labels_yx.astype(np.int64, copy=True)
        labels_yx[rest_yx] = extra_yx[rest_yx] + labels_yx.max()
    return labels_yx


def _drop_small(labels_yx: np.ndarray, min_pixels: int) -> np.ndarray:
    """Drop instances under ``min_pixels`` and renumber the rest ``1..N`` (int32)."""
    counts = np.bincount(labels_yx.ravel())
    keep = counts >= max(1, int(min_pixels))
    keep[0] = False
    lut = np.zeros(counts.size, dtype=np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return lut[labels_yx]
