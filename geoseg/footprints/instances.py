"""Probability map -> labelled building instances.

Foreground is ``prob >= threshold`` on valid pixels. Touching buildings are split
with a marker-controlled watershed; the splitting is deliberately conservative
(under-splitting is preferred to cutting one building in pieces):

* distance mode: markers are the h-maxima (h = 2 px) of the Euclidean distance
  transform of the component with its holes filled (pin holes in a roof must not
  seed extra buildings); after the watershed, neighbouring regions whose shared
  border is nearly as thick as the thinner of the two (saddle of the distance
  >= 0.75 x its peak) are merged again, so a wide neck is never cut.
* border-cut mode (a border probability map is given, e.g. the model's border and
  gap outputs): pixels with a border probability >= 0.5 are cut out of the shape
  before the distance transform, so a predicted wall, even a broken one, becomes
  a neck or a gap between two distance peaks; then as in distance mode. The
  watershed gives the cut pixels back to their buildings. On held-out Banepa this
  raised object F1 over seeding from the border map alone (docs/splitting.md).

A split never leaves a part smaller than ``min_part_px`` pixels (the vectorizer
passes ``VectorizeConfig.min_part_m2`` at the grid's resolution): such a part is
merged into the neighbour it shares the longest border with, smallest first. On
held-out Banepa, split-off pieces under 20 m2 were almost never buildings of their
own, and on fine working grids (0.075 m) they were most of the over-splitting.

Every foreground pixel ends up in exactly one instance; a component with fewer
than two markers (or under 16 pixels) stays whole. Each connected component
(4-connected) of the foreground is split on its own bounding box, so its
labelling never depends on anything outside it (this is what makes banded
vectorisation agree with a whole-raster run).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from geoseg.config import DEFAULT_BORDER_CUT

FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)
EIGHT_CONNECTED = ndimage.generate_binary_structure(2, 2)

H_MAXIMA_PX = 2.0  # a distance peak must rise this many pixels above its saddle to seed a building
MERGE_SADDLE_RATIO = 0.75  # merge neighbours whose border is at least this thick relative to the thinner one
MIN_SPLIT_PIXELS = 16  # smaller components are never split (they cannot hold two distance peaks)
BORDER_CUT = DEFAULT_BORDER_CUT  # border-cut mode: pixels with a border probability at least this are cut out before the distance


def label_instances(
    prob: np.ndarray,
    valid: np.ndarray,
    threshold: float,
    split_touching: bool = True,
    min_pixels: int = 1,
    boundary: np.ndarray | None = None,
    min_part_px: float = 0.0,
    border_cut: float = BORDER_CUT,
) -> np.ndarray:
    """Label building instances in a ``(Y, X)`` probability map.

    ``prob`` is in [0, 1]; ``valid`` is False on nodata (never building, whatever
    ``prob`` says there); ``boundary`` is an optional ``(Y, X)`` border probability
    used for splitting (border-cut mode: pixels at or above ``border_cut`` separate). A split never leaves a part under
    ``min_part_px`` pixels (it joins its neighbour). Instances smaller than
    ``min_pixels`` are dropped. Returns ``int32`` labels ``1..N``, 0 = background.
    """
    prob_yx = np.asarray(prob)
    valid_yx = np.asarray(valid, dtype=bool)
    if prob_yx.ndim != 2 or prob_yx.shape != valid_yx.shape:
        raise ValueError(f"prob {prob_yx.shape} and valid {valid_yx.shape} must be the same (Y, X) shape")
    if boundary is not None and np.shape(boundary) != prob_yx.shape:
        raise ValueError(f"boundary {np.shape(boundary)} must have the shape of prob {prob_yx.shape}")
    fg_yx = (prob_yx >= threshold) & valid_yx  # NaN compares False
    comps_yx, n = ndimage.label(fg_yx, FOUR_CONNECTED)
    if split_touching and n:
        border_yx = None if boundary is None else np.asarray(boundary, dtype=np.float32)
        comps_yx = _split_components(comps_yx, n, border_yx, min_part_px, border_cut)
    return _drop_small(comps_yx, min_pixels)


def _split_components(comps_yx: np.ndarray, n: int, border_yx: np.ndarray | None, min_part_px: float,
                      border_cut: float = BORDER_CUT) -> np.ndarray:
    """Replace every splittable component by its parts (new labels above ``n``)."""
    out_yx = comps_yx.astype(np.int64)
    sizes = np.bincount(comps_yx.ravel(), minlength=n + 1)
    next_label = n + 1
    for comp, box in enumerate(ndimage.find_objects(comps_yx), start=1):
        if sizes[comp] < MIN_SPLIT_PIXELS:
            continue
        inside = comps_yx[box] == comp
        parts = split_component(inside, None if border_yx is None else border_yx[box], min_part_px, border_cut)
        if parts is None:
            continue
        out_yx[box][inside] = parts[inside] + next_label - 1
        next_label += int(parts.max())
    return out_yx


def split_component(inside: np.ndarray, border: np.ndarray | None = None, min_part_px: float = 0.0,
                    border_cut: float = BORDER_CUT) -> np.ndarray | None:
    """Parts ``1..k`` of one component (``inside``: its bounding box), or None if it stays whole.

    ``border`` (same box, float border probability) selects border-cut mode. A part under
    ``min_part_px`` pixels is merged into the neighbour it shares the longest border with.
    Components under ``MIN_SPLIT_PIXELS`` pixels are left to the caller (they are never split).
    """
    return _split_distance(inside, None if border is None else border >= border_cut, min_part_px)


def _split_distance(inside: np.ndarray, cut: np.ndarray | None = None, min_part_px: float = 0.0) -> np.ndarray | None:
    """Parts ``1..k`` of one component (``inside``: its bounding box), or None if it stays whole.

    Distances are to the nearest pixel outside the component with its holes filled
    (outside the raster counts as outside), so pin holes seed nothing; ``cut`` (same box)
    marks predicted borders, which count as outside too.
    """
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    solid = ndimage.binary_fill_holes(np.pad(inside, 1))
    if cut is not None:
        solid &= ~np.pad(cut, 1)
    dist = ndimage.distance_transform_edt(solid)[1:-1, 1:-1]
    peaks, _ = ndimage.label(h_maxima(dist, H_MAXIMA_PX) > 0, EIGHT_CONNECTED)  # a peak may cross a filled hole
    markers = np.where(inside, peaks, 0)
    if np.unique(markers).size < 3:  # background and fewer than two seeds
        return None
    basins = _merge_shallow_cuts(watershed(-dist, markers, mask=inside, connectivity=1), dist)
    basins = _merge_small_parts(_compact(basins), min_part_px)
    return basins if basins.max() > 1 else None


def _merge_small_parts(labels_yx: np.ndarray, min_part_px: float) -> np.ndarray:
    """Merge every part under ``min_part_px`` pixels, smallest first, into the neighbour it shares most border with.

    Ties go to the lower label. A part with no neighbour stays as it is. Sparse in the
    number of neighbour pairs, so a blob of thousands of parts costs no n x n table.
    """
    import heapq

    n = int(labels_yx.max())
    if min_part_px <= 0 or n < 2:
        return labels_yx
    size = np.bincount(labels_yx.ravel(), minlength=n + 1).astype(np.int64)
    nbrs: dict[int, dict[int, int]] = {i: {} for i in range(1, n + 1)}
    for lo, hi, count in zip(*_shared_borders(labels_yx)):
        nbrs[int(lo)][int(hi)] = nbrs[int(hi)][int(lo)] = int(count)
    parent = np.arange(n + 1)
    heap = [(int(size[i]), i) for i in range(1, n + 1) if size[i] < min_part_px]
    heapq.heapify(heap)
    while heap:
        s, i = heapq.heappop(heap)
        if parent[i] != i or s != size[i] or not nbrs[i]:
            continue  # merged already, grown since it was queued, or alone
        j = min(nbrs[i], key=lambda k: (-nbrs[i][k], k))
        for k, count in nbrs.pop(i).items():
            del nbrs[k][i]
            if k != j:
                nbrs[j][k] = nbrs[k][j] = nbrs[j].get(k, 0) + count
        parent[i] = j
        size[j] += size[i]
        if size[j] < min_part_px:
            heapq.heappush(heap, (int(size[j]), j))
    for i in range(1, n + 1):  # parents were alive when set, so they point at later merges: follow to the end
        root = i
        while parent[root] != root:
            root = parent[root]
        parent[i] = root
    return _compact(parent[labels_yx])


def _compact(labels_yx: np.ndarray) -> np.ndarray:
    """Renumber labels to ``1..k`` keeping 0 as 0."""
    values = np.union1d([0], labels_yx)
    return np.searchsorted(values, labels_yx)


def _shared_borders(labels_yx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each pair of 4-adjacent labels ``(lo, hi)``: how many pixel edges they share."""
    lo, hi, count = _border_pairs(labels_yx, np.ones(labels_yx.shape, np.int64), np.add.reduceat)
    return lo, hi, count


def _neighbour_saddles(labels_yx: np.ndarray, dist_yx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each pair of 4-adjacent labels ``(lo, hi)``: the highest distance along their border."""
    return _border_pairs(labels_yx, dist_yx, np.maximum.reduceat)


def _border_pairs(labels_yx: np.ndarray, values_yx: np.ndarray, reduceat) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each pair of 4-adjacent labels ``(lo, hi)``: ``reduceat`` over their border edges of the lower
    of the two ``values_yx`` on each edge (lo < hi, sorted by pair)."""
    los, his, edge_values = [], [], []
    for first, second in ((np.s_[:-1, :], np.s_[1:, :]), (np.s_[:, :-1], np.s_[:, 1:])):  # down, right
        a, b = labels_yx[first], labels_yx[second]
        m = (a != b) & (a > 0) & (b > 0)
        los.append(np.minimum(a[m], b[m]))
        his.append(np.maximum(a[m], b[m]))
        edge_values.append(np.minimum(values_yx[first][m], values_yx[second][m]))
    lo, hi, value = np.concatenate(los), np.concatenate(his), np.concatenate(edge_values)
    if lo.size == 0:
        return lo, hi, value
    key = lo.astype(np.int64) * (int(labels_yx.max()) + 1) + hi
    order = np.argsort(key, kind="stable")
    key, lo, hi, value = key[order], lo[order], hi[order], value[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    return lo[starts], hi[starts], reduceat(value, starts)


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


def _drop_small(labels_yx: np.ndarray, min_pixels: int) -> np.ndarray:
    """Drop instances under ``min_pixels`` and renumber the rest ``1..N`` (int32)."""
    counts = np.bincount(labels_yx.ravel())
    keep = counts >= max(1, int(min_pixels))
    keep[0] = False
    lut = np.zeros(counts.size, dtype=np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return lut[labels_yx]
