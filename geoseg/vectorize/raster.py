"""Probability raster -> building footprints, in bounded memory (row bands with halos).

The raster is read in bands of ``band_rows`` rows plus ``halo_rows`` above and
below; only one such window is in memory at a time. Seams are reconciled on
connected components (4-connected) of the foreground:

* A component is *small* if its owner window (the band whose core rows hold its
  top row) sees all of it without touching that window's artificial (non-raster)
  bottom edge. The owner splits it into instances (:func:`label_instances`) and
  emits them whole, exactly as a single-band run would.
* Any other component is *big*: every band emits the component's pixels in its
  own core rows as fragments, and fragments that are 4-adjacent across a band
  border are dissolved into one polygon at the end. Big components are not split
  (under-splitting is preferred to inventing seams).

Each band decides small/big exactly: components it sees whole are classified
from their extent; components reaching its bottom edge are big; components
reaching its top edge inherit the decision recorded for the rows above (a
``halo_rows`` x width mask carried from band to band). ``halo_rows=0`` acts as 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from affine import Affine
from scipy import ndimage
from shapely.geometry import Polygon

from geoseg.config import VectorizeConfig
from geoseg.errors import ConfigError, InputError, RasterReadError
from geoseg.georef import ground_gsd_m, metric_crs_for
from geoseg.grid import RasterGrid
from geoseg.progress import NullProgress, Progress, check_cancel
from geoseg.vectorize.instances import FOUR_CONNECTED, label_instances
from geoseg.vectorize.polygons import label_sums, merge_parts, polygons_from_labels
from geoseg.vectorize.regularize import regularize

COLUMNS = ["id", "area_m2", "p_mean", "gsd_m", "model", "reg_status", "geometry"]


@dataclass(frozen=True)
class BandLayout:
    """Row bands ``[k * band_rows, (k + 1) * band_rows)`` and their windows (``halo`` more rows each side)."""

    height: int
    band_rows: int
    halo: int

    @property
    def n_bands(self) -> int:
        return max(1, math.ceil(self.height / self.band_rows))

    def core(self, k: int) -> tuple[int, int]:
        return k * self.band_rows, min(self.height, (k + 1) * self.band_rows)

    def window(self, k: int) -> tuple[int, int]:
        core0, core1 = self.core(k)
        return max(0, core0 - self.halo), min(self.height, core1 + self.halo)

    def window_end(self, band: np.ndarray) -> np.ndarray:
        """Vectorised ``window(k)[1]`` for an array of band indices."""
        core1 = np.minimum(self.height, (band + 1) * self.band_rows)
        return np.minimum(self.height, core1 + self.halo)


@dataclass
class _SeamTracer:
    """Collects instances band by band and reconciles the seams between bands."""

    layout: BandLayout
    threshold: float
    split_touching: bool
    whole: list[tuple[Polygon, float]] = field(default_factory=list)  # pixel-space polygon, p_mean
    frag_polys: list[Polygon] = field(default_factory=list)
    frag_count: list[int] = field(default_factory=list)
    frag_total: list[float] = field(default_factory=list)
    links: list[np.ndarray] = field(default_factory=list)  # (n, 2) fragment ids adjacent across a border
    big_above: np.ndarray | None = None  # (rows, X): big-component pixels in the rows above the current core
    prev_last_row: np.ndarray | None = None  # (X,) fragment ids in the previous core's last row, -1 = none

    def add_band(self, k: int, prob_yx: np.ndarray, valid_yx: np.ndarray, boundary_yx: np.ndarray | None) -> None:
        win0, _ = self.layout.window(k)
        core0, core1 = self.layout.core(k)
        fg_yx = (prob_yx >= self.threshold) & valid_yx
        comp_yx, n = ndimage.label(fg_yx, FOUR_CONNECTED)
        big, own = self._classify(k, comp_yx, n)
        if own.any():  # split only the components this band owns (each is split on its own)
            owned_yx = valid_yx & own[comp_yx]
            inst_yx = label_instances(prob_yx, owned_yx, self.threshold, self.split_touching, 1, boundary_yx)
            for poly, p_mean, _ in polygons_from_labels(inst_yx, Affine.translation(0, win0), prob_yx):
                self.whole.append((poly, p_mean))
        core_rows = slice(core0 - win0, core1 - win0)
        big_core_yx = big[comp_yx[core_rows]]
        self._add_fragments(big_core_yx, prob_yx[core_rows], core0)
        above = big_core_yx if self.big_above is None else np.concatenate([self.big_above, big_core_yx])
        self.big_above = above[-self.layout.halo :]

    def _classify(self, k: int, comp_yx: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Per component id (index 0 = background): is it big, and does this band emit it whole."""
        lay = self.layout
        win0, win1 = lay.window(k)
        core0, _ = lay.core(k)
        big, own = np.zeros(n + 1, bool), np.zeros(n + 1, bool)
        if n == 0:
            return big, own
        rows = [s[0] for s in ndimage.find_objects(comp_yx)]
        top = win0 + np.array([r.start for r in rows])
        bottom = win0 + np.array([r.stop - 1 for r in rows])
        touches_top = (win0 > 0) & (top == win0)
        touches_bottom = (win1 < lay.height) & (bottom == win1 - 1)
        owner = top // lay.band_rows
        owner_end = lay.window_end(owner)
        small = (bottom < owner_end - 1) | (owner_end == lay.height)
        inherited = np.zeros(n + 1, bool)
        if core0 > win0 and self.big_above is not None:
            inherited[comp_yx[: core0 - win0][self.big_above[-(core0 - win0) :]]] = True
        big[1:] = np.where(touches_bottom, True, np.where(touches_top, inherited[1:], ~small))
        own[1:] = ~big[1:] & ~touches_top & (owner == k)
        return big, own

    def _add_fragments(self, big_core_yx: np.ndarray, prob_core_yx: np.ndarray, core0: int) -> None:
        """Store the big components' pieces in this core and link them to the pieces above."""
        pieces_yx, _ = ndimage.label(big_core_yx, FOUR_CONNECTED)
        first_id = len(self.frag_polys) - 1  # global id = first_id + piece label
        count, total = label_sums(pieces_yx, prob_core_yx)
        for poly, _, lab in polygons_from_labels(pieces_yx, Affine.translation(0, core0), prob_core_yx):
            assert first_id + lab == len(self.frag_polys)
            self.frag_polys.append(poly)
            self.frag_count.append(int(count[lab]))
            self.frag_total.append(float(total[lab]))
        first_row = np.where(pieces_yx[0] > 0, pieces_yx[0] + first_id, -1)
        if self.prev_last_row is not None:
            touching = (first_row >= 0) & (self.prev_last_row >= 0)
            self.links.append(np.unique(np.stack([self.prev_last_row[touching], first_row[touching]], 1), axis=0))
        self.prev_last_row = np.where(pieces_yx[-1] > 0, pieces_yx[-1] + first_id, -1)

    def finish(self) -> list[tuple[Polygon, float]]:
        """All instances: the whole ones plus the fragments dissolved across borders."""
        parent = list(range(len(self.frag_polys)))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for a, b in np.concatenate(self.links) if self.links else np.zeros((0, 2), int):
            parent[find(int(b))] = find(int(a))
        groups: dict[int, list[int]] = {}
        for i in range(len(self.frag_polys)):
            groups.setdefault(find(i), []).append(i)
        dissolved = [
            (
                merge_parts([self.frag_polys[i] for i in ids]),
                sum(self.frag_total[i] for i in ids) / sum(self.frag_count[i] for i in ids),
            )
            for ids in groups.values()
        ]
        return self.whole + dissolved


def vectorize_raster(
    path,
    cfg: VectorizeConfig,
    *,
    threshold_default: float = 0.5,
    model_name: str = "",
    out_crs=None,
    progress: Progress | None = None,
):
    """Building footprints from a probability raster, as a GeoDataFrame (see module doc).

    Band 1 is the building probability (uint8 0..255 or float 0..1); pixels outside
    ``dataset_mask()`` are never building. Columns: ``id, area_m2, p_mean, gsd_m,
    model, reg_status, geometry``; ids run 1..N top-to-bottom, then left-to-right.
    """
    import rasterio
    from rasterio.errors import RasterioIOError

    progress = progress or NullProgress()
    threshold = cfg.threshold if cfg.threshold is not None else threshold_default
    out_crs = None if out_crs is None else _parse_crs(out_crs)
    if cfg.band_rows < 1 or cfg.halo_rows < 0:
        raise ConfigError(f"band_rows must be >= 1 and halo_rows >= 0 (got {cfg.band_rows}, {cfg.halo_rows})")
    try:
        with rasterio.open(path) as ds:
            _check_bands(ds, cfg)
            grid = RasterGrid((ds.height, ds.width), ds.transform, ds.crs)
            gsd_m = ground_gsd_m(grid)
            layout = BandLayout(ds.height, cfg.band_rows, max(1, cfg.halo_rows))
            tracer = _SeamTracer(layout, threshold, cfg.split_touching)
            for k in range(layout.n_bands):
                check_cancel(progress)
                tracer.add_band(k, *_read_window(ds, layout.window(k), cfg.boundary_band))
                progress.update(k + 1, layout.n_bands, "vectorize")
    except RasterioIOError as exc:
        raise RasterReadError(f"cannot read {path}: {exc}") from exc
    return _footprints(tracer.finish(), grid, gsd_m, cfg, model_name, out_crs)


def _parse_crs(crs):
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        return CRS.from_user_input(crs)
    except (CRSError, ValueError) as exc:
        raise ConfigError(f"unknown output CRS {crs!r}; give one like 'EPSG:4326'") from exc


def _check_bands(ds, cfg: VectorizeConfig) -> None:
    bands = [1] if cfg.boundary_band is None else [1, cfg.boundary_band]
    for band in bands:
        if not 1 <= band <= ds.count:
            raise InputError(f"{ds.name} has {ds.count} band(s); band {band} does not exist, check boundary_band")
        dtype = np.dtype(ds.dtypes[band - 1])
        if dtype != np.uint8 and dtype.kind != "f":
            raise InputError(f"band {band} of {ds.name} is {dtype}; expected uint8 (0..255) or float (0..1) probability")


def _read_window(ds, rows: tuple[int, int], boundary_band: int | None):
    """``(prob, valid, boundary)`` for raster rows ``[row0, row1)``, all columns."""
    from rasterio.windows import Window

    win = Window(0, rows[0], ds.width, rows[1] - rows[0])
    prob_yx = _as_probability(ds.read(1, window=win))
    valid_yx = (ds.dataset_mask(window=win) > 0) & np.isfinite(prob_yx)
    boundary_yx = None if boundary_band is None else _as_probability(ds.read(boundary_band, window=win))
    return prob_yx, valid_yx, boundary_yx


def _as_probability(raw_yx: np.ndarray) -> np.ndarray:
    if raw_yx.dtype == np.uint8:
        return raw_yx.astype(np.float32) / np.float32(255)
    return raw_yx.astype(np.float32, copy=False)


def _footprints(instances, grid: RasterGrid, gsd_m: float, cfg: VectorizeConfig, model_name: str, out_crs):
    """Pixel-space instances -> the output GeoDataFrame (ordered, simplified, squared, filtered)."""
    import geopandas as gpd
    import shapely
    from rasterio.crs import CRS

    src_crs = CRS.from_user_input(grid.crs)
    dst_crs = src_crs if out_crs is None else CRS.from_user_input(out_crs)
    if not instances:
        return empty_footprints(dst_crs)
    pixel_geoms, p_mean = _canonical_order(instances)
    metric_crs = metric_crs_for(grid)
    unit_m = metric_crs.linear_units_factor[1]  # metres per metric-CRS unit
    geoms = gpd.GeoSeries(_to_map(pixel_geoms, grid.transform), crs=src_crs)
    geoms = np.asarray((geoms if metric_crs == src_crs else geoms.to_crs(metric_crs)).values)
    tolerance_m = gsd_m if cfg.simplify_m is None else cfg.simplify_m
    geoms = _simplified(geoms, tolerance_m / unit_m)
    reg_status = np.full(len(geoms), -1, dtype=np.int64)
    if cfg.regularize:
        reg_status = _squared_in_place(geoms, cfg, unit_m)
    area_m2 = shapely.area(geoms) * unit_m**2
    keep = area_m2 >= cfg.min_area_m2
    out = gpd.GeoSeries(geoms[keep], crs=metric_crs)
    out = out if dst_crs == metric_crs else out.to_crs(dst_crs)
    n = len(out)
    columns = {
        "id": np.arange(1, n + 1, dtype=np.int64),
        "area_m2": area_m2[keep],
        "p_mean": p_mean[keep],
        "gsd_m": np.full(n, gsd_m, dtype=np.float64),
        "model": np.full(n, model_name, dtype=object),
        "reg_status": reg_status[keep],
    }
    return gpd.GeoDataFrame(columns, geometry=out.values, crs=dst_crs)[COLUMNS]


def _canonical_order(instances: list[tuple[Polygon, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-space polygons in canonical form, sorted top-to-bottom then left-to-right; and their p_mean.

    Canonical rings (no collinear vertices, as left where fragments were dissolved;
    fixed start and orientation) make the representative point, the order and the
    later simplification independent of how the raster was banded.
    """
    import shapely

    pixel_geoms = np.array([poly for poly, _ in instances], dtype=object)
    pixel_geoms = shapely.normalize(shapely.simplify(pixel_geoms, 0.0))
    p_mean = np.array([p for _, p in instances], dtype=np.float64)
    anchor_xy = shapely.get_coordinates(shapely.point_on_surface(pixel_geoms))
    order = np.lexsort((anchor_xy[:, 0], anchor_xy[:, 1]))  # rows (y) first, then columns (x)
    return pixel_geoms[order], p_mean[order]


def _squared_in_place(geoms: np.ndarray, cfg: VectorizeConfig, unit_m: float) -> np.ndarray:
    """Regularise ``geoms`` (metric frame) in place; returns the status per geometry.

    A squared outline has IoU >= min_iou with its input, so its area is at most
    area / min_iou: inputs below ``min_area_m2 * min_iou`` would be dropped anyway
    and are skipped (status -1).
    """
    import shapely

    status = np.full(len(geoms), -1, dtype=np.int64)
    candidates = shapely.area(geoms) * unit_m**2 >= cfg.min_area_m2 * min(cfg.regularize_min_iou, 1.0)
    for i in np.flatnonzero(candidates):
        geoms[i], status[i] = regularize(geoms[i], cfg.regularize_min_iou)
    return status


def empty_footprints(crs=None):
    """A footprint GeoDataFrame with the output columns and dtypes and no rows."""
    import geopandas as gpd
    import pandas as pd

    columns = {
        "id": pd.Series([], dtype="int64"),
        "area_m2": pd.Series([], dtype="float64"),
        "p_mean": pd.Series([], dtype="float64"),
        "gsd_m": pd.Series([], dtype="float64"),
        "model": pd.Series([], dtype="object"),
        "reg_status": pd.Series([], dtype="int64"),
    }
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries([], crs=crs), crs=crs)[COLUMNS]


def _to_map(pixel_geoms: np.ndarray, transform: Affine) -> np.ndarray:
    """Apply the raster's affine to geometries in pixel ``(col, row)`` coordinates."""
    import shapely

    t = transform

    def affine_xy(xy: np.ndarray) -> np.ndarray:
        return np.column_stack([t.a * xy[:, 0] + t.b * xy[:, 1] + t.c, t.d * xy[:, 0] + t.e * xy[:, 1] + t.f])

    return shapely.transform(pixel_geoms, affine_xy)


def _simplified(geoms: np.ndarray, tolerance: float) -> np.ndarray:
    """Topology-preserving Douglas-Peucker; any result that is not a valid non-empty polygon keeps the input."""
    import shapely

    simple = shapely.simplify(geoms, tolerance, preserve_topology=True)
    bad = shapely.is_empty(simple) | ~shapely.is_valid(simple) | (shapely.get_type_id(simple) != 3)
    simple[bad] = geoms[bad]
    return simple
