"""Pixel-space building instances -> output footprints: map and metric coordinates, simplification,
squaring, the area filter, the output CRS, and the output table (columns, order)."""

from __future__ import annotations

import numpy as np
from affine import Affine

from geoseg.config import VectorizeConfig
from geoseg.footprints.regularize import KEPT_ORIGINAL, REGULARISED, iou, regularize
from geoseg.georef import check_not_torn, check_representable, metric_crs_for, wrapped_crs
from geoseg.grid import RasterGrid

GSD_DECIMALS = 4  # the gsd_m column, to 0.1 mm: a UTM grid of 0.3 m measures 0.300043 m on the ground
COLUMNS = ["id", "area_m2", "p_mean", "gsd_m", "model", "reg_status", "geometry"]
_WKB_CHUNK = 65536  # footprints decoded at once when the output frame is built
MIN_HOLE_PX = 4  # holes smaller than this many pixels are filled
COVERAGE_TOLERANCE = 2.0  # split parts' Visvalingam-Whyatt tolerance, as a share of the Douglas-Peucker one


class Finisher:
    """Pixel-space instances -> final footprints, batch by batch; keeps only what the output holds.

    Per batch: canonical pixel rings (no collinear vertices, as left where fragments
    were dissolved; fixed start and orientation: the representative point, the order
    and the simplification do not depend on the blocks), the representative point
    (for the output order), map then metric coordinates, simplification, squaring,
    metric area, the area filter and the output CRS.
    """

    def __init__(self, grid: RasterGrid, gsd_m: float, cfg: VectorizeConfig, out_crs) -> None:
        from rasterio.crs import CRS

        self.grid, self.gsd_m, self.cfg = grid, gsd_m, cfg
        src_crs = CRS.from_user_input(grid.crs)
        self.dst_crs = src_crs if out_crs is None else CRS.from_user_input(out_crs)
        if self.dst_crs != src_crs:
            check_representable(grid, self.dst_crs)
            check_not_torn(grid, wrapped_crs(self.dst_crs, grid), str(out_crs))
        metric_crs = metric_crs_for(grid)
        self.unit_m = metric_crs.linear_units_factor[1]  # metres per metric-CRS unit
        self.to_metric = None if metric_crs == src_crs else _transformer(src_crs, metric_crs)
        # wrapped: a footprint across the antimeridian keeps longitudes past 180 instead of spanning 360 degrees
        self.to_dst = None if self.dst_crs == metric_crs else _transformer(metric_crs, wrapped_crs(self.dst_crs, grid))
        tolerance_m = gsd_m if cfg.simplify_m is None else cfg.simplify_m
        self.tolerance = tolerance_m / self.unit_m
        self.batches: list[tuple] = []  # (WKB of the batch's geometries, their sizes, anchor_x, anchor_y, area_m2, p_mean, reg_status)

    def add(self, pixel_polys: list, p_mean: list[float], groups: list[int] | None = None) -> None:
        """``groups``: parts of one split component share a value (their walls are simplified once, as a coverage,
        and squaring never makes them overlap); None: every polygon stands alone."""
        import shapely

        pixel_geoms = np.empty(len(pixel_polys), dtype=object)
        pixel_geoms[:] = pixel_polys
        pixel_geoms = shapely.normalize(shapely.simplify(_without_pinholes(pixel_geoms), 0.0))
        anchor_xy = shapely.get_coordinates(shapely.point_on_surface(pixel_geoms))
        geoms = _to_map(pixel_geoms, self.grid.transform)
        del pixel_geoms
        if self.to_metric is not None:
            geoms = _reproject(geoms, self.to_metric)
        siblings = _sibling_sets(groups, len(geoms))
        geoms = _simplified(geoms, self.tolerance, siblings)
        reg_status = np.full(len(geoms), -1, dtype=np.int64)
        if self.cfg.regularize:
            reg_status = _squared_in_place(geoms, self.cfg, self.unit_m, siblings)
        area_m2 = shapely.area(geoms) * self.unit_m**2
        keep = area_m2 >= self.cfg.min_area_m2
        if not keep.any():
            return
        geoms = geoms[keep]
        if self.to_dst is not None:  # a non-linear transform can make a pinched outline cross itself: repair it
            geoms = _valid(_reproject(geoms, self.to_dst))
        wkb = shapely.to_wkb(geoms)
        del geoms
        sizes = np.fromiter(map(len, wkb), dtype=np.int64, count=len(wkb))
        p_mean_a = np.asarray(p_mean, dtype=np.float64)
        self.batches.append((b"".join(wkb), sizes, anchor_xy[keep, 0], anchor_xy[keep, 1], area_m2[keep],
                             p_mean_a[keep], reg_status[keep]))

    def frame(self, model_name: str):
        """The output GeoDataFrame, sorted top-to-bottom then left-to-right by representative point."""
        import geopandas as gpd
        import shapely

        if not self.batches:
            return empty_footprints(self.dst_crs)
        buffers = [b[0] for b in self.batches]
        sizes, anchor_x, anchor_y, area_m2, p_mean, reg_status = (np.concatenate(c) for c in list(zip(*self.batches))[1:])
        batch_of = np.repeat(np.arange(len(buffers)), [len(b[1]) for b in self.batches])
        self.batches = []
        start = np.cumsum(sizes) - sizes  # within the whole sequence of buffers ...
        start -= np.repeat(np.cumsum([0] + [len(b) for b in buffers[:-1]]), np.bincount(batch_of, minlength=len(buffers)))
        order = np.lexsort((anchor_x, anchor_y))  # rows (y) first, then columns (x)
        n = len(order)
        geoms = np.empty(n, dtype=object)
        for k0 in range(0, n, _WKB_CHUNK):  # decode in chunks: few temporary bytes objects at a time
            idx = order[k0 : k0 + _WKB_CHUNK]
            wkb = np.empty(len(idx), dtype=object)
            wkb[:] = [buffers[b][s : s + z] for b, s, z in zip(batch_of[idx], start[idx], sizes[idx])]
            geoms[k0 : k0 + len(idx)] = shapely.from_wkb(wkb)
        del buffers
        area_m2, reg_status = area_m2[order], reg_status[order]
        if self.cfg.regularize:
            _cut_overlaps(geoms, reg_status, area_m2)
        columns = {
            "id": np.arange(1, n + 1, dtype=np.int64),
            "area_m2": area_m2,
            "p_mean": p_mean[order],
            "gsd_m": np.full(n, round(self.gsd_m, GSD_DECIMALS), dtype=np.float64),
            "model": np.full(n, model_name, dtype=object),
            "reg_status": reg_status,
        }
        return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(geoms, crs=self.dst_crs).values, crs=self.dst_crs)[COLUMNS]


def _transformer(src_crs, dst_crs):
    """``(x, y)`` transformer between two CRSs (as GeoPandas' ``to_crs`` builds it), None if they are the same."""
    from pyproj import CRS as ProjCRS
    from pyproj import Transformer

    src, dst = ProjCRS.from_user_input(src_crs), ProjCRS.from_user_input(dst_crs)
    return None if src.is_exact_same(dst) else Transformer.from_crs(src, dst, always_xy=True)


def _reproject(geoms: np.ndarray, transformer) -> np.ndarray:
    import shapely

    def xy(coords: np.ndarray) -> np.ndarray:
        return np.column_stack(transformer.transform(coords[:, 0], coords[:, 1]))

    return shapely.transform(geoms, xy)


def _squared_in_place(geoms: np.ndarray, cfg: VectorizeConfig, unit_m: float,
                      siblings: list[np.ndarray] = ()) -> np.ndarray:
    """Regularise ``geoms`` (metric frame) in place; returns the status per geometry.

    A squared outline has IoU >= min_iou with its input, so its area is at most
    area / min_iou: inputs below ``min_area_m2 * min_iou`` would be dropped anyway
    and are skipped (status -1). A part of a split component is squared, then cut
    back to where its siblings (as they are by then) are not, and the gate applies
    to that: split parts never overlap.
    """
    import shapely

    status = np.full(len(geoms), -1, dtype=np.int64)
    candidates = shapely.area(geoms) * unit_m**2 >= cfg.min_area_m2 * min(cfg.regularize_min_iou, 1.0)
    sibling_of = {int(i): members for members in siblings for i in members}
    for i in np.flatnonzero(candidates):
        squared, status[i] = regularize(geoms[i], cfg.regularize_min_iou)
        others = np.asarray([j for j in sibling_of.get(int(i), ()) if j != i], dtype=np.int64)
        if status[i] == REGULARISED and len(others):
            # only the siblings it reaches: a union of all of a 500-part blob's parts for each part took 56 ms
            others = others[shapely.intersects(geoms[others], squared)]
        if status[i] == REGULARISED and len(others):
            squared = _largest_polygon(shapely.difference(squared, shapely.union_all(geoms[others])))
            if squared is None or iou(squared, geoms[i]) < cfg.regularize_min_iou:
                status[i] = KEPT_ORIGINAL
                continue
        geoms[i] = squared
    return status


def _cut_overlaps(geoms: np.ndarray, reg_status: np.ndarray, area_m2: np.ndarray) -> None:
    """Cut squared footprints back where they overlap another footprint, in place (``area_m2`` scaled to match).

    Squaring can push an outline over a neighbour that is not of its split component (separate blobs touching at a
    corner, or a pixel apart); the pixels themselves never overlap. Of each overlapping pair the squared one is cut
    (the later one in output order if both are): the rule depends on the footprints alone, not on the blocks that
    were read. A cut that leaves no polygon keeps the footprint as it is."""
    import shapely

    if len(geoms) < 2:
        return
    a, b = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pairs = a < b
    a, b = a[pairs], b[pairs]
    if not len(a):
        return
    small = np.minimum(shapely.area(geoms[a]), shapely.area(geoms[b]))
    shared = shapely.area(shapely.intersection(geoms[a], geoms[b]))
    overlapping = shared > OVERLAP_REL_TOL * small  # a shared wall: 0 (or rounding noise)
    for i, j in zip(a[overlapping], b[overlapping]):
        cut, keep = (i, j) if reg_status[i] == REGULARISED and reg_status[j] != REGULARISED else (j, i)
        piece = _largest_polygon(shapely.difference(geoms[cut], geoms[keep]))
        before = shapely.area(geoms[cut])
        if piece is None or before <= 0:
            continue
        area_m2[cut] *= shapely.area(piece) / before
        geoms[cut] = piece


# an overlap smaller than this share of the smaller footprint is rounding, not an overlap
OVERLAP_REL_TOL = 1e-7


def _largest_polygon(geom):
    """The largest valid polygon in ``geom`` (None if it holds none): a cut can leave slivers beside the part."""
    from shapely.geometry import Polygon

    parts = [geom] if isinstance(geom, Polygon) else [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon)]
    parts = [p for p in parts if p.is_valid and not p.is_empty]
    return max(parts, key=lambda p: p.area) if parts else None


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


def _without_pinholes(pixel_geoms: np.ndarray) -> np.ndarray:
    """Holes of fewer than :data:`MIN_HOLE_PX` pixels filled: one dark pixel in a roof is noise, and simplifying it
    left a sliver triangle of half a pixel (courtyards are far larger)."""
    import shapely
    from shapely.geometry import Polygon

    for i in np.flatnonzero(shapely.get_num_interior_rings(pixel_geoms) > 0):
        g = pixel_geoms[i]
        holes = [r for r in g.interiors if Polygon(r).area >= MIN_HOLE_PX]
        if len(holes) < len(g.interiors):
            pixel_geoms[i] = Polygon(g.exterior, holes)
    return pixel_geoms


def _sibling_sets(groups, n: int) -> list[np.ndarray]:
    """Indices of the polygons that share a group with another (the parts of one split component), per group."""
    if groups is None or n == 0:
        return []
    g = np.asarray(groups)
    _, inverse, counts = np.unique(g, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    return [m for m in np.split(order, np.cumsum(counts)[:-1]) if m.size > 1]


def _simplified(geoms: np.ndarray, tolerance: float, siblings: list[np.ndarray] = ()) -> np.ndarray:
    """Topology-preserving Douglas-Peucker, polygon by polygon; the parts of a split component (``siblings``) are
    simplified together as a coverage instead (Visvalingam-Whyatt, :data:`COVERAGE_TOLERANCE` of the tolerance), so
    a wall they share moves once and they neither overlap nor leave gaps. A result that is not a valid non-empty
    polygon keeps the input (for a coverage: all of its parts)."""
    import shapely

    simple = shapely.simplify(geoms, tolerance, preserve_topology=True)
    bad = shapely.is_empty(simple) | ~shapely.is_valid(simple) | (shapely.get_type_id(simple) != 3)
    simple[bad] = geoms[bad]
    for members in siblings:
        parts = shapely.coverage_simplify(geoms[members], COVERAGE_TOLERANCE * tolerance)
        ok = ~shapely.is_empty(parts) & shapely.is_valid(parts) & (shapely.get_type_id(parts) == 3)
        simple[members] = parts if ok.all() else geoms[members]
    return simple


def _valid(geoms: np.ndarray) -> np.ndarray:
    """``geoms`` with the invalid ones repaired (their polygonal parts: a Polygon, or a MultiPolygon if it fell
    apart); a non-finite coordinate is an error the caller rules out beforehand (:func:`check_representable`)."""
    import shapely

    from geoseg.io.vector import polygon_parts

    bad = ~shapely.is_valid(geoms)
    if bad.any():
        geoms[bad] = [polygon_parts(fixed, g) for fixed, g in zip(shapely.make_valid(geoms[bad]), geoms[bad])]
    return geoms
