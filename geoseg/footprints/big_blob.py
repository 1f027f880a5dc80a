"""Split a component of touching buildings larger than the vectorizer's window, one window at a time.

The vectorizer splits a component on its own bounding box when that fits in memory (``raster.py``). A larger one
(a dense town whose roofs touch for kilometres) is cut into the vectorizer's blocks: each block's *window* (its core
plus a halo) is split as a single-block run splits it, and each pixel takes the part its own block's window gives it.
The pieces of one part in neighbouring cores are joined when both windows agree across the core border: the two
pixels on either side are in the same part in the window above (or left) and in the window below (or right). The
halo keeps each window's split of the pixels near its core as the whole component's, so parts cross the borders
whole; where two windows disagree a part is cut at the border instead (under-splitting is not forced). Every pixel
of the component ends in exactly one footprint, and memory is one window at a time, as for the rest of the raster.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from affine import Affine
from scipy import ndimage

from geoseg.footprints.instances import FOUR_CONNECTED, _split_components
from geoseg.footprints.polygons import traced_polygons


def split_by_windows(poly, box: tuple[int, int, int, int], read: Callable, foreground: Callable, values: Callable,
                     core: int, halo: int, min_part_px: float, border_cut: float) -> list[tuple[object, int, float]]:
    """``(polygon, pixels, probability sum)`` of each part of the component traced as ``poly`` (pixel coordinates,
    ``box`` = ``(row0, row1, col0, col1)`` its bounding box). ``read(window)`` gives a window's ``(band 1, valid,
    border or None)``; ``foreground``/``values`` turn band 1 into the foreground and probabilities."""
    from rasterio.features import rasterize
    from shapely import clip_by_rect

    y0, y1, x0, x1 = box
    rows, cols = range(y0, y1, core), range(x0, x1, core)
    pieces = _Pieces()
    below: dict[tuple[int, int], tuple] = {}  # (i, j) -> labels of its window on its last core row and the next
    right: dict[tuple[int, int], tuple] = {}
    for i, r0 in enumerate(rows):
        for j, c0 in enumerate(cols):
            cr1, cc1 = min(y1, r0 + core), min(x1, c0 + core)
            wr0, wr1, wc0, wc1 = max(y0, r0 - halo), min(y1, cr1 + halo), max(x0, c0 - halo), min(x1, cc1 + halo)
            part = clip_by_rect(poly, wc0, wr0, wc1, wr1)
            if part.is_empty:
                continue
            shape = (wr1 - wr0, wc1 - wc0)
            inside = rasterize([part], out_shape=shape, transform=Affine.translation(wc0, wr0), dtype=np.uint8) > 0
            raw, valid, border = read((wr0, wr1, wc0, wc1))
            inside &= foreground(raw) & valid  # the component's pixels (its outline is traced from exactly these)
            comps, n = ndimage.label(inside, FOUR_CONNECTED)
            border = None if border is None else _probability(border)
            labels = _split_components(comps, n, border, min_part_px, border_cut) if n else comps
            core_sl = (slice(r0 - wr0, cr1 - wr0), slice(c0 - wc0, cc1 - wc0))
            ids = pieces.add(labels[core_sl], (r0, c0), values(raw[core_sl]))
            # a part's pieces within one core are the same part
            pieces.join_same(ids, labels[core_sl])
            lab = labels[core_sl]
            above = labels[r0 - 1 - wr0, c0 - wc0 : cc1 - wc0] if r0 > wr0 else None  # our halo row above the core
            left = labels[r0 - wr0 : cr1 - wr0, c0 - 1 - wc0] if c0 > wc0 else None
            if (i - 1, j) in below:  # the border with the core above: its last row and our first
                _join(pieces, below.pop((i - 1, j)), (above, lab[0], ids[0]))
            if (i, j - 1) in right:
                _join(pieces, right.pop((i, j - 1)), (left, lab[:, 0], ids[:, 0]))
            if cr1 < y1:
                under = labels[cr1 - wr0, c0 - wc0 : cc1 - wc0] if cr1 < wr1 else None  # our halo row below it
                below[(i, j)] = (lab[-1], under, ids[-1])
            if cc1 < x1:
                beside = labels[r0 - wr0 : cr1 - wr0, cc1 - wc0] if cc1 < wc1 else None
                right[(i, j)] = (lab[:, -1], beside, ids[:, -1])
    return pieces.parts()


def _join(pieces: _Pieces, before: tuple, after: tuple) -> None:
    """Join the pieces on either side of a core border that are one part in both windows.

    ``before``: the first window's labels on its last core row and on the next one (None: outside its window), and
    its piece ids on that last row; ``after``: the second window's labels on the row before its core (None: outside
    its window), on its first core row, and its piece ids there. One value per pixel along the border. Both windows
    see both rows: a part of the first and a part of the second are the same when each is the other's best match
    over those pixels (a wall pixel the two windows give to different neighbours does not join the neighbours)."""
    b_last, b_next, b_ids = before
    a_prev, a_first, a_ids = after
    if b_next is None or a_prev is None:  # no halo: no window saw both sides
        return
    first = np.concatenate([b_last, b_next])  # the first window's labels on both rows
    second = np.concatenate([a_prev, a_first])  # the second's, on the same pixels
    both = (first > 0) & (second > 0)
    pairs, votes = np.unique(np.stack([first[both], second[both]]), axis=1, return_counts=True)
    best_of_first: dict[int, tuple[int, int]] = {}
    best_of_second: dict[int, tuple[int, int]] = {}
    for (x, y), n in zip(pairs.T.tolist(), votes.tolist()):
        if n > best_of_first.get(x, (0, 0))[1]:
            best_of_first[x] = (y, n)
        if n > best_of_second.get(y, (0, 0))[1]:
            best_of_second[y] = (x, n)
    for x, (y, _) in best_of_first.items():
        if best_of_second[y][0] != x:
            continue
        ids = np.concatenate([b_ids[b_last == x], a_ids[a_first == y]])
        ids = np.unique(ids[ids > 0])
        for other in ids[1:].tolist():
            pieces.union(int(ids[0]), other)


def _probability(border_yx: np.ndarray) -> np.ndarray:
    from geoseg.footprints.raster import _as_probability

    return _as_probability(border_yx)


class _Pieces:
    """The pieces of the component in each core (connected pixels of one part there), joined by union-find."""

    def __init__(self) -> None:
        self.parent: list[int] = [0]
        self.polys: list = [None]
        self.count: list[int] = [0]
        self.total: list[float] = [0.0]

    def add(self, labels_core: np.ndarray, origin: tuple[int, int], probs_core: np.ndarray) -> np.ndarray:
        """Number the core's pieces (connected pixels with one label); returns their ids per pixel (0: none)."""
        from skimage.measure import label as same_value_regions

        local = same_value_regions(labels_core, background=0, connectivity=1).astype(np.int64)
        n = int(local.max())
        first = len(self.parent)
        count = np.bincount(local.ravel(), minlength=n + 1)
        total = np.bincount(local.ravel(), weights=probs_core.ravel().astype(np.float64), minlength=n + 1)
        polys = traced_polygons(local.astype(np.int32), Affine.translation(origin[1], origin[0]))
        for k in range(1, n + 1):
            self.parent.append(first + k - 1)
            self.polys.append(polys[k])
            self.count.append(int(count[k]))
            self.total.append(float(total[k]))
        return np.where(local > 0, local + first - 1, 0)

    def join_same(self, ids: np.ndarray, labels_core: np.ndarray) -> None:
        """Join the pieces of a core that its window put in one part (they meet outside the core)."""
        flat_ids, flat_labels = ids.ravel(), labels_core.ravel()
        keep = flat_ids > 0
        first_of: dict[int, int] = {}
        for lab, pid in set(zip(flat_labels[keep].tolist(), flat_ids[keep].tolist())):
            if lab in first_of:
                self.union(first_of[lab], pid)
            else:
                first_of[lab] = pid

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def parts(self) -> list[tuple[object, int, float]]:
        """Each joined part's polygons dissolved: ``(polygon, pixels, probability sum)``; a part whose pieces do not
        touch in the end gives one footprint per connected piece, so no pixel is lost."""
        import shapely
        from shapely.geometry import Polygon

        groups: dict[int, list[int]] = {}
        for k in range(1, len(self.parent)):
            groups.setdefault(self.find(k), []).append(k)
        out = []
        for members in groups.values():
            union = shapely.union_all([self.polys[k] for k in members])
            geoms = [union] if isinstance(union, Polygon) else [g for g in union.geoms if isinstance(g, Polygon)]
            if len(geoms) == 1:
                out.append((geoms[0], sum(self.count[k] for k in members), sum(self.total[k] for k in members)))
                continue
            for g in geoms:  # share the counts by the pieces each connected part holds
                ks = [k for k in members if g.contains(self.polys[k].representative_point())]
                out.append((g, sum(self.count[k] for k in ks), sum(self.total[k] for k in ks)))
        return out
