"""Probability raster -> building footprints, in bounded memory (2D blocks with halos).

The raster is cut into blocks whose *core* is ``band_rows`` rows by ``BLOCK_COLS``
columns (``band_rows`` when None: square blocks); each block is read with
``halo_rows`` more rows and columns on every side (its *window*, clipped to the
raster), one window at a time, so memory depends on neither the raster's width nor
its height. Seams are reconciled on connected components (4-connected) of the
foreground, with one rule that every block applies alike and no state carried from
block to block:

* A component is *small* if every block whose core meets its bounding box has a
  window that holds the whole component without touching the window's artificial
  (non-raster) edges. That is a property of the component alone; a block holding a
  pixel of a small component in its core sees all of it, so every block that can
  emit it classifies it the same way (a block that does not see a component whole
  knows it is not small). Components smaller than the halo, and components inside
  one core, are always small.
* A small component is emitted whole by the block whose core holds its anchor (the
  top-left corner of its bounding box), split into instances exactly as a
  single-block run splits it (:func:`label_instances` works per component).
* Any other component is *big*: every block emits the component's pixels in its own
  core as fragments, and fragments 4-adjacent across a core border are dissolved
  into one polygon (exact in pixel space) as soon as no unread block can add to
  them; only the fragments of unfinished components are held. A finished big
  component whose bounding box holds no more pixels than a window is then read
  again on its own (just its bounding box) and split exactly as a single-block run
  splits it; a larger one (a dense town whose roofs touch for kilometres) is split
  one window at a time (:mod:`geoseg.footprints.big_blob`).

So the result equals a single-block run except for components whose bounding box holds more pixels than a window
(``band_rows + 2 * halo_rows`` by ``cols + 2 * halo_rows``): their parts are the windows' (the same wherever the halo
shows a window all of a part; where two windows split a part differently it is cut at their core border).

Each block's instances are finished at once (canonical rings, map and metric
coordinates, simplification, squaring, area filter, output CRS), so only the final
geometries and their attributes accumulate. ``halo_rows=0`` acts as 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from affine import Affine
from scipy import ndimage

from geoseg.aoi import mask
from geoseg.config import DEFAULT_BORDER_CUT, VectorizeConfig
from geoseg.errors import ConfigError, InputError, RasterReadError
from geoseg.footprints.finish import COLUMNS, Finisher  # noqa: F401 (COLUMNS: re-exported, the output columns)
from geoseg.footprints.instances import FOUR_CONNECTED, MIN_SPLIT_PIXELS, split_component
from geoseg.footprints.polygons import merge_parts, traced_polygons
from geoseg.georef import ground_gsd_m, parse_crs
from geoseg.grid import RasterGrid
from geoseg.io.prob_raster import check_bands, read_window
from geoseg.progress import NullProgress, Progress, check_cancel
from geoseg.window import PixelWindow

BLOCK_COLS: int | None = None  # core columns per block; None: band_rows (square blocks)
_SUM_ROWS = 256  # rows per pass when summing probabilities per label
GDAL_CACHE_BYTES = 32 * 2**20  # GDAL block cache while reading (lowered to this, never raised): each tile is read 1-2 times


@dataclass(frozen=True)
class BlockLayout:
    """Block cores ``rows x cols`` (row-major, clipped to the raster) and their windows (``halo`` more on each side)."""

    height: int
    width: int
    rows: int
    cols: int
    halo: int

    @property
    def shape(self) -> tuple[int, int]:
        return max(1, math.ceil(self.height / self.rows)), max(1, math.ceil(self.width / self.cols))

    @property
    def n_blocks(self) -> int:
        return self.shape[0] * self.shape[1]

    def blocks(self):
        n_rows, n_cols = self.shape
        return ((i, j) for i in range(n_rows) for j in range(n_cols))

    def core(self, i: int, j: int) -> tuple[int, int, int, int]:
        """``(row0, row1, col0, col1)``, ends exclusive."""
        return (i * self.rows, min(self.height, (i + 1) * self.rows),
                j * self.cols, min(self.width, (j + 1) * self.cols))

    def window(self, i: int, j: int) -> tuple[int, int, int, int]:
        r0, r1, c0, c1 = self.core(i, j)
        h = self.halo
        return max(0, r0 - h), min(self.height, r1 + h), max(0, c0 - h), min(self.width, c1 + h)

    def small(self, top: np.ndarray, bottom: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Whether components with these bounding boxes (inclusive, raster pixels) are small (module doc)."""
        return self._fits(top, bottom, self.rows, self.height) & self._fits(left, right, self.cols, self.width)

    def _fits(self, lo: np.ndarray, hi: np.ndarray, step: int, size: int) -> np.ndarray:
        """Along one axis: every window of the blocks spanning ``[lo, hi]`` holds it clear of artificial edges.

        Window starts grow with the block index and window ends too, so the last
        block's start and the first block's end are the binding ones.
        """
        last_start = (hi // step) * step - self.halo  # the last block's window start (artificial if > 0)
        first_end = (lo // step + 1) * step + self.halo  # the first block's window end (artificial if < size)
        return ((last_start <= 0) | (lo > last_start)) & ((first_end >= size) | (hi < first_end - 1))


class _Probability:
    """Band values -> probability (float32) and foreground, exactly as ``float32(raw) / 255 >= threshold``."""

    def __init__(self, dtype: np.dtype, threshold: float) -> None:
        self.threshold = threshold
        self.lut = np.arange(256, dtype=np.float32) / np.float32(255) if dtype == np.uint8 else None
        self.fg_lut = None if self.lut is None else self.lut >= threshold

    def values(self, raw: np.ndarray) -> np.ndarray:
        return raw.astype(np.float32, copy=False) if self.lut is None else self.lut[raw]

    def foreground(self, raw_yx: np.ndarray) -> np.ndarray:
        return raw_yx >= self.threshold if self.lut is None else self.fg_lut[raw_yx]


@dataclass
class _Group:
    """Fragments of one big component joined so far (their union kept as few parts as possible)."""

    members: list[int]
    parts: list
    count: int
    total: float
    pending: int  # core borders of its fragments whose neighbouring block is still unread
    seed: tuple[int, int]  # (row, col) of one of its pixels


@dataclass
class _BlockTracer:
    """Turns blocks into instances, reconciling the seams between blocks (module doc)."""

    layout: BlockLayout
    prob: _Probability
    split_touching: bool
    finisher: Finisher
    read: Callable  # (row0, row1, col0, col1) -> (band 1 values, valid, boundary values or None)
    parent: dict[int, int] = field(default_factory=dict)  # fragment id -> union-find parent
    groups: dict[int, _Group] = field(default_factory=dict)  # root fragment id -> its group
    bottom_edges: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    right_edges: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    next_id: int = 0
    min_part_px: float = 0.0  # split parts under this many pixels join a neighbour (VectorizeConfig.min_part_m2)
    border_cut: float = DEFAULT_BORDER_CUT  # separator probability cut out before splitting (VectorizeConfig.border_cut)

    def add_block(self, i: int, j: int, raw_yx: np.ndarray, valid_yx: np.ndarray, boundary_yx: np.ndarray | None) -> None:
        lay = self.layout
        wr0, wr1, wc0, wc1 = lay.window(i, j)
        cr0, cr1, cc0, cc1 = lay.core(i, j)
        fg_yx = self.prob.foreground(raw_yx)
        fg_yx &= valid_yx
        comp_yx, n = ndimage.label(fg_yx, FOUR_CONNECTED)
        del fg_yx
        core = (slice(cr0 - wr0, cr1 - wr0), slice(cc0 - wc0, cc1 - wc0))
        polys: list = []
        p_mean: list[float] = []
        groups: list[int] = []  # the component each polygon comes from (split parts share it)
        big_core_yx = inst_yx = None
        if n:
            boxes = ndimage.find_objects(comp_yx)
            bb = np.array([(b[0].start, b[0].stop - 1, b[1].start, b[1].stop - 1) for b in boxes], dtype=np.int64)
            top, bottom, left, right = bb[:, 0] + wr0, bb[:, 1] + wr0, bb[:, 2] + wc0, bb[:, 3] + wc0
            cut = (((top == wr0) & (wr0 > 0)) | ((bottom == wr1 - 1) & (wr1 < lay.height))
                   | ((left == wc0) & (wc0 > 0)) | ((right == wc1 - 1) & (wc1 < lay.width)))
            small = ~cut & lay.small(top, bottom, left, right)
            own = small & (top // lay.rows == i) & (left // lay.cols == j)
            big = np.concatenate([[False], ~small])
            if big.any():
                big_core_yx = big[comp_yx[core]]
            if own.any():  # owned components start in the core: crop the window's top and left halo
                own_ids = np.flatnonzero(own) + 1
                lut = np.zeros(n + 1, dtype=np.int32)
                lut[own_ids] = np.arange(1, own_ids.size + 1, dtype=np.int32)
                inst_yx = lut[comp_yx[cr0 - wr0 :, cc0 - wc0 :]]
        del comp_yx
        if inst_yx is not None:
            dr, dc = cr0 - wr0, cc0 - wc0
            own_boxes = [(slice(boxes[k - 1][0].start - dr, boxes[k - 1][0].stop - dr),
                          slice(boxes[k - 1][1].start - dc, boxes[k - 1][1].stop - dc)) for k in own_ids]
            self._whole(inst_yx, own_boxes, raw_yx[dr:, dc:], None if boundary_yx is None else boundary_yx[dr:, dc:],
                        (cr0, cc0), polys, p_mean, groups)
        self._fragments(i, j, big_core_yx, raw_yx[core], (cr0, cc0), polys, p_mean, groups)
        if polys:
            self.finisher.add(polys, p_mean, groups)

    def _whole(self, inst_yx, boxes, raw_yx, boundary_yx, origin, polys, p_mean, groups) -> None:
        """Split the components this block owns (labelled ``1..len(boxes)`` in ``inst_yx``, in place) and trace them."""
        component = list(range(len(boxes) + 1))  # label -> the component it is (a part of)
        if self.split_touching:
            next_label = len(boxes) + 1
            for lab, box in enumerate(boxes, start=1):
                if (box[0].stop - box[0].start) * (box[1].stop - box[1].start) < MIN_SPLIT_PIXELS:
                    continue  # fewer pixels than that for sure
                inside = inst_yx[box] == lab  # parts of split components have labels > len(boxes)
                if np.count_nonzero(inside) < MIN_SPLIT_PIXELS:
                    continue
                border = None if boundary_yx is None else _as_probability(boundary_yx[box])
                parts = split_component(inside, border, self.min_part_px, self.border_cut)
                if parts is None:
                    continue
                inst_yx[box][inside] = parts[inside] + (next_label - 1)
                component += [lab] * int(parts.max())
                next_label += int(parts.max())
        count, total = self._sums(inst_yx, raw_yx)
        first = len(groups) and max(groups) + 1  # unique within this block's batch
        for lab, poly in traced_polygons(inst_yx, Affine.translation(origin[1], origin[0])).items():
            polys.append(poly)
            p_mean.append(float(total[lab] / count[lab]))
            groups.append(first + component[lab])

    def _sums(self, labels_yx: np.ndarray, raw_yx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel count and probability sum per label (index = label), a few rows at a time."""
        size = int(labels_yx.max()) + 1
        count, total = np.zeros(size, dtype=np.int64), np.zeros(size, dtype=np.float64)
        for r0 in range(0, labels_yx.shape[0], _SUM_ROWS):
            flat = labels_yx[r0 : r0 + _SUM_ROWS].ravel()
            at = np.flatnonzero(flat)
            labs = flat[at]
            count += np.bincount(labs, minlength=size)
            total += np.bincount(labs, weights=self.prob.values(raw_yx[r0 : r0 + _SUM_ROWS].ravel()[at]), minlength=size)
        return count, total

    # -- big components ---------------------------------------------------------------------------

    def _fragments(self, i, j, big_core_yx, raw_core_yx, origin, polys, p_mean, groups) -> None:
        """Add this core's big-component pieces, link them to the pieces of the blocks above and to the left,
        and finish every group that no unread block can reach any more."""
        n_rows, n_cols = self.layout.shape
        above = self.bottom_edges.pop((i - 1, j), None)
        left = self.right_edges.pop((i, j - 1), None)
        touched: set[int] = set()
        if big_core_yx is not None and big_core_yx.any():
            pieces_yx, m = ndimage.label(big_core_yx, FOUR_CONNECTED)
            first = self.next_id - 1  # fragment id = first + piece label
            self.next_id += m
            count, total = self._sums(pieces_yx, raw_core_yx)
            pending = np.zeros(m + 1, dtype=np.int64)
            if i + 1 < n_rows:
                pending[np.unique(pieces_yx[-1])] += 1
                cols = np.flatnonzero(pieces_yx[-1])
                if cols.size:
                    self.bottom_edges[(i, j)] = (cols + origin[1], pieces_yx[-1][cols] + first)
            if j + 1 < n_cols:
                pending[np.unique(pieces_yx[:, -1])] += 1
                rows = np.flatnonzero(pieces_yx[:, -1])
                if rows.size:
                    self.right_edges[(i, j)] = (rows + origin[0], pieces_yx[:, -1][rows] + first)
            boxes = ndimage.find_objects(pieces_yx)
            for lab, poly in traced_polygons(pieces_yx, Affine.translation(origin[1], origin[0])).items():
                fid = first + lab
                rows, cols = boxes[lab - 1]
                seed = (rows.start + origin[0], cols.start + int(np.argmax(pieces_yx[rows.start, cols] == lab)) + origin[1])
                self.parent[fid] = fid
                self.groups[fid] = _Group([fid], [poly], int(count[lab]), float(total[lab]), int(pending[lab]), seed)
                touched.add(fid)
            for edge, ours_line, offset in ((above, pieces_yx[0], origin[1]), (left, pieces_yx[:, 0], origin[0])):
                if edge is not None:  # pixels 4-adjacent across the border: the same component
                    ours = ours_line[edge[0] - offset]
                    pairs = np.unique(np.stack([edge[1][ours > 0], ours[ours > 0] + first], axis=1), axis=0)
                    for a, b in pairs.tolist():
                        self._union(a, b)
        for edge in (above, left):
            if edge is not None:
                for fid in np.unique(edge[1]):
                    root = self._find(int(fid))
                    self.groups[root].pending -= 1
                    touched.add(root)
        for root in {self._find(fid) for fid in touched}:
            group = self.groups[root]
            if group.pending == 0:
                del self.groups[root]
                for fid in group.members:
                    del self.parent[fid]
                self._finish_group(group, polys, p_mean, groups)
            elif len(group.parts) > 1:
                group.parts = [merge_parts(group.parts)]  # linked pieces share edges: one polygon

    def _finish_group(self, group: _Group, polys: list, p_mean: list[float], groups: list[int]) -> None:
        """A finished big component: split on its own if it fits in a window, else whole."""
        groups_before = len(polys)
        self._finish_parts(group, polys, p_mean)
        groups += [max(groups, default=-1) + 1] * (len(polys) - groups_before)

    def _finish_parts(self, group: _Group, polys: list, p_mean: list[float]) -> None:
        poly = merge_parts(group.parts)
        lay = self.layout
        x0, y0, x1, y1 = (round(v) for v in poly.bounds)
        # the box is read and split whole: as many pixels as a window (one long side is fine) keep memory bounded
        fits = (y1 - y0) * (x1 - x0) <= (lay.rows + 2 * lay.halo) * (lay.cols + 2 * lay.halo)
        if self.split_touching and not fits and group.count >= MIN_SPLIT_PIXELS:  # one window at a time
            from geoseg.footprints.big_blob import split_by_windows

            for part, count, total in split_by_windows(poly, (y0, y1, x0, x1), self.read, self.prob.foreground,
                                                       self.prob.values, lay.rows, lay.halo, self.min_part_px,
                                                       self.border_cut):
                polys.append(part)
                p_mean.append(total / count)
            return
        if self.split_touching and fits and group.count >= MIN_SPLIT_PIXELS:
            raw_yx, valid_yx, boundary_yx = self.read((y0, y1, x0, x1))
            fg_yx = self.prob.foreground(raw_yx)
            fg_yx &= valid_yx
            comp_yx, _ = ndimage.label(fg_yx, FOUR_CONNECTED)
            inside = comp_yx == comp_yx[group.seed[0] - y0, group.seed[1] - x0]  # its bounding box: all of it
            del fg_yx, comp_yx
            border = None if boundary_yx is None else _as_probability(boundary_yx)
            parts = split_component(inside, border, self.min_part_px, self.border_cut)
            if parts is not None:
                parts = np.where(inside, parts, 0).astype(np.int32)
                count, total = self._sums(parts, raw_yx)
                for lab, part in traced_polygons(parts, Affine.translation(x0, y0)).items():
                    polys.append(part)
                    p_mean.append(float(total[lab] / count[lab]))
                return
        polys.append(poly)
        p_mean.append(group.total / group.count)

    def _find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def _union(self, a: int, b: int) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra == rb:
            return
        ga, gb = self.groups[ra], self.groups[rb]
        if len(ga.members) < len(gb.members):
            ra, rb, ga, gb = rb, ra, gb, ga
        self.parent[rb] = ra
        ga.members += gb.members
        ga.parts += gb.parts
        ga.count += gb.count
        ga.total += gb.total
        ga.pending += gb.pending
        del self.groups[rb]

    def finish(self) -> None:
        if self.groups or self.bottom_edges or self.right_edges:  # every border was read: cannot happen
            raise AssertionError("vectorize: unfinished big components after the last block")


def vectorize_raster(
    path,
    cfg: VectorizeConfig,
    *,
    threshold_default: float = 0.5,
    border_cut_default: float = DEFAULT_BORDER_CUT,
    model_name: str = "",
    out_crs=None,
    progress: Progress | None = None,
    region=None,
    require_valid: bool = False,
    warn_low_values: bool = True,
):
    """Building footprints from a probability raster, as a GeoDataFrame (see module doc).

    Band 1 is the building probability (uint8 0..255 or float 0..1); pixels outside
    ``dataset_mask()`` are never building. Columns: ``id, area_m2, p_mean, gsd_m,
    model, reg_status, geometry``; ids run 1..N top-to-bottom, then left-to-right.
    ``region`` (a shapely geometry in the raster's CRS): only pixels whose centre lies in it are traced, and only
    the window covering it is read. ``require_valid``: a one-line :class:`InputError` when no pixel (in the region)
    is valid, i.e. the raster is all nodata, NaN or masked, instead of an empty result. ``warn_low_values``: warn when
    nothing is found in a uint8 raster whose values stay low (a 0/1 mask or percentages given as probabilities);
    off for geoseg's own probabilities, where low values just mean no building.
    """
    import rasterio
    from rasterio.env import get_gdal_config
    from rasterio.errors import RasterioIOError

    progress = progress or NullProgress()
    threshold = cfg.threshold if cfg.threshold is not None else threshold_default
    border_cut = cfg.border_cut if cfg.border_cut is not None else border_cut_default
    if not 0 < border_cut <= 1:
        raise ConfigError(f"border cut must be in (0, 1], got {border_cut}")
    out_crs = None if out_crs is None else parse_crs(out_crs)
    cols = cfg.band_rows if BLOCK_COLS is None else BLOCK_COLS
    if cfg.band_rows < 1 or cfg.halo_rows < 0 or cols < 1:
        raise ConfigError(f"band_rows must be >= 1 and halo_rows >= 0 (got {cfg.band_rows}, {cfg.halo_rows})")
    cache_bytes = min(GDAL_CACHE_BYTES, int(get_gdal_config("GDAL_CACHEMAX") or GDAL_CACHE_BYTES))
    try:
        with rasterio.Env(GDAL_CACHEMAX=cache_bytes), rasterio.open(path) as ds:
            check_bands(ds, cfg)
            whole = RasterGrid((ds.height, ds.width), ds.transform, ds.crs)
            part = whole.full_window if region is None else whole.window_covering(region.bounds)
            seen = [False]  # any valid pixel read (require_valid)
            peak = [0]  # the highest valid band-1 value of a uint8 raster (a 0/1 mask reads as 0..1/255)
            if part is None:
                _no_valid_pixels(path, region, require_valid)
                return Finisher(whole, ground_gsd_m(whole), cfg, out_crs).frame(model_name)
            grid = whole[part]
            gsd_m = ground_gsd_m(whole)
            finisher = Finisher(grid, gsd_m, cfg, out_crs)
            layout = BlockLayout(grid.height, grid.width, cfg.band_rows, cols, max(1, cfg.halo_rows))
            prob = _Probability(np.dtype(ds.dtypes[0]), threshold)

            def read(window: tuple[int, int, int, int]):
                r0, r1, c0, c1 = window
                raw, valid, boundary = read_window(ds, (r0 + part.row_off, r1 + part.row_off, c0 + part.col_off, c1 + part.col_off),
                                                   cfg.boundary_band)
                if region is not None:
                    valid &= mask(region, grid.window_transform(PixelWindow(r0, c0, r1 - r0, c1 - c0)), valid.shape)
                seen[0] = seen[0] or bool(valid.any())
                if raw.dtype == np.uint8 and valid.any():
                    peak[0] = max(peak[0], int(raw[valid].max()))
                return raw, valid, boundary

            tracer = _BlockTracer(layout, prob, cfg.split_touching, finisher, read, min_part_px=cfg.min_part_m2 / gsd_m**2,
                                  border_cut=border_cut)
            progress.update(0, layout.n_blocks, "vectorize")
            for done, (i, j) in enumerate(layout.blocks(), start=1):
                check_cancel(progress)
                tracer.add_block(i, j, *read(layout.window(i, j)))
                if done < layout.n_blocks:
                    progress.update(done, layout.n_blocks, "vectorize")
            tracer.finish()  # the footprints left open at the last block: the stage ends after them
            progress.update(layout.n_blocks, layout.n_blocks, "vectorize")
    except RasterioIOError as exc:
        from geoseg.io.raster import gdal_reason

        raise RasterReadError(f"cannot read {path} ({gdal_reason(exc)}); the file may be corrupt or truncated: "
                              "re-export it, or rerun the geoseg segment run that wrote it") from None
    if not seen[0]:
        _no_valid_pixels(path, region, require_valid)
    gdf = finisher.frame(model_name)
    if warn_low_values and gdf.empty and 0 < peak[0] <= LOW_PEAK < threshold * 255:
        _warn_low_values(path, peak[0])
    return gdf


LOW_PEAK = 100  # a uint8 raster whose values stop here may hold a 0/1 mask or percentages, not 0..255


def _warn_low_values(path, peak: int) -> None:
    import warnings

    from geoseg.errors import InputWarning

    hint = "a 0/1 mask" if peak == 1 else "percentages (0-100)" if peak > 1 else ""
    warnings.warn(f"{path}: no building found, and its values reach only {peak} of 255; if it holds {hint} rather "
                  f"than probabilities 0-255, rescale it to 0-255 or pass --threshold {0.5 * peak / 255:.4f}",
                  InputWarning, stacklevel=3)


def _no_valid_pixels(path, region, require_valid: bool) -> None:
    if require_valid:
        where = " inside the aoi" if region is not None else ""
        raise InputError(f"{path} has no valid pixels{where} (all nodata, NaN or masked); nothing to vectorize: "
                         "check that it is the probability raster you meant")


def _as_probability(raw_yx: np.ndarray) -> np.ndarray:
    if raw_yx.dtype == np.uint8:
        return raw_yx.astype(np.float32) / np.float32(255)
    return raw_yx.astype(np.float32, copy=False)
