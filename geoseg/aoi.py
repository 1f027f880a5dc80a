"""Areas of interest: the polygons a run is limited to, as one geometry in a given CRS.

:func:`read_aoi` reads them (any vector format, any CRS), :func:`to_crs` moves the geometry between CRSs,
:func:`grown` adds a margin in metres, :func:`mask` burns it onto a pixel grid (pixel centres), and :func:`owned` /
:func:`clip` (either, by :func:`restrict`) limit footprints to it:
``owned`` keeps a building whole when its representative point lies inside (:func:`inside`, the rule ``segment``,
``evaluate`` and training share; neighbouring areas that share an edge each get a building once), ``clip`` cuts it at
the edge. :func:`outline` is a grid's footprint as a polygon.
"""

from __future__ import annotations

import numpy as np

from geoseg.errors import InputError
from geoseg.grid import RasterGrid


def outline(grid: RasterGrid):
    """The grid's footprint as a polygon in its CRS (its four corners: right for rotated grids too)."""
    from shapely.geometry import Polygon

    h, w = grid.shape_yx
    return Polygon([grid.transform @ cr for cr in ((0, 0), (w, 0), (w, h), (0, h))])


def to_crs(geom, src_crs, dst_crs):
    """``geom`` (a shapely geometry in ``src_crs``) in ``dst_crs`` (for a grid's CRS where longitudes may run past
    180, pass :func:`geoseg.georef.wrapped_crs` of it)."""
    import geopandas as gpd

    return gpd.GeoSeries([geom], crs=src_crs).to_crs(dst_crs).iloc[0]


def read_aoi(path: str, grid: RasterGrid, raster: str, what: str = "aoi"):
    """The polygons of ``path`` united into one valid geometry in ``grid``'s CRS and cut to its outline; a
    one-line :class:`InputError` when the file is unreadable or none of its polygons lies on the raster."""
    import shapely

    from geoseg.georef import onto
    from geoseg.io.vector import polygonal, read_polygon_features

    gdf = read_polygon_features(path, what)
    geoms = [g for g in polygonal(onto(gdf, grid).geometry.values) if not g.is_empty]
    area = shapely.union_all(geoms).intersection(outline(grid)) if geoms else None
    if area is None or area.is_empty or area.area <= 0:
        raise InputError(f"no polygon of the {what} {path} lies on {raster}; draw the area to process over the "
                         "raster (polygons, any CRS)")
    return area


def grown(area, grid: RasterGrid, margin_m: float):
    """``area`` (in ``grid``'s CRS) grown by ``margin_m`` metres, measured in the grid's metric CRS."""
    from geoseg.georef import metric_crs_for, wrapped_crs

    if margin_m <= 0:
        return area
    metric = metric_crs_for(grid)
    return to_crs(to_crs(area, grid.crs, metric).buffer(margin_m), metric, wrapped_crs(grid.crs, grid))


def restrict(gdf, area, cut: bool = False, min_area_m2: float = 0.0, region=None, px_m: float = 0.0):
    """``gdf`` limited to ``area`` (in its CRS): :func:`clip` where ``cut``, else :func:`owned`; ids renumbered
    1..N in the same order. ``region`` (the traced area: ``area`` plus its margin, in ``gdf``'s CRS) and ``px_m`` (the
    traced pixel size in metres): warns of kept footprints that reach the region's edge, where they were cut."""
    out = clip(gdf, area, min_area_m2) if cut else owned(gdf, area)
    if region is not None and not cut and not out.empty:  # a cut copy ends at the aoi, inside the margin
        _warn_cut_at_margin(out, region, px_m)
    return renumbered(out)


def renumbered(gdf):
    """``gdf`` with its ``id`` column (if any) set to 1..N in row order, after rows were dropped."""
    if "id" in gdf and len(gdf) and not (gdf["id"].to_numpy() == np.arange(1, len(gdf) + 1)).all():
        gdf = gdf.copy()
        gdf["id"] = np.arange(1, len(gdf) + 1, dtype=gdf["id"].dtype)
    return gdf


def _warn_cut_at_margin(gdf, region, px_m: float) -> None:
    import warnings

    import shapely

    from geoseg.errors import InputWarning

    crs = gdf.crs
    m_per_unit = 1.0 if crs is None else 111_320.0 if crs.is_geographic else crs.axis_info[0].unit_conversion_factor
    n = int(shapely.dwithin(gdf.geometry.values, region.boundary, 1.01 * px_m / m_per_unit).sum())
    if n:
        warnings.warn(f"{n} kept building(s) reach the edge of the aoi plus its margin and may be cut there; raise "
                      "--aoi-margin to trace them whole", InputWarning, stacklevel=3)


def mask(area, transform, shape_yx: tuple[int, int]) -> np.ndarray:
    """Pixels of a grid (``transform``, ``shape_yx``) whose centre lies in ``area`` (one geometry, or a list of
    them): bool ``(Y, X)``."""
    from rasterio.features import geometry_mask

    geoms = [g for g in (area if isinstance(area, (list, tuple)) else [area]) if not g.is_empty]
    if not geoms:
        return np.zeros(shape_yx, bool)
    return geometry_mask(geoms, out_shape=shape_yx, transform=transform, invert=True)


TIE_NUDGE = (1e-9, 1.618e-9)  # x and y, times the coordinate's magnitude: points on an edge go one way


def inside(gdf, area) -> np.ndarray:
    """Which rows of ``gdf`` have their representative point (a point inside each shape) in ``area`` (in
    ``gdf``'s CRS): bool per row. A point on the edge is moved by a tiny fixed step (:data:`TIE_NUDGE`) first, so
    of two areas that share an edge exactly one holds it: tiled areas get each building once."""
    import shapely

    if gdf.empty:
        return np.zeros(0, bool)
    shapely.prepare(area)
    xy = shapely.get_coordinates(shapely.point_on_surface(gdf.geometry.values))
    xy += np.maximum(np.abs(xy), 1.0) * np.array(TIE_NUDGE)
    return shapely.intersects_xy(area, xy[:, 0], xy[:, 1])


def owned(gdf, area):
    """The rows of ``gdf`` whose representative point lies in ``area`` (in ``gdf``'s CRS), whole."""
    return gdf if gdf.empty else gdf[inside(gdf, area)].reset_index(drop=True)


def clip(gdf, area, min_area_m2: float = 0.0):
    """``gdf`` cut to ``area`` (in its CRS); ``area_m2`` shrinks with each cut shape, and pieces left under
    ``min_area_m2`` (or with no area) are dropped."""
    import shapely
    from shapely.geometry import Polygon

    from geoseg.io.vector import polygon_parts

    if gdf.empty:
        return gdf
    geoms = gdf.geometry.values
    shapely.prepare(area)
    cut = ~shapely.contains_properly(area, geoms)
    if not cut.any():
        return gdf
    gdf = gdf.copy()
    before = shapely.area(geoms[cut])
    pieces = np.array([polygon_parts(g, Polygon()) for g in shapely.intersection(geoms[cut], area)], dtype=object)
    gdf.loc[cut, gdf.geometry.name] = pieces
    if "area_m2" in gdf:
        ratio = np.divide(shapely.area(pieces), before, out=np.zeros(len(before)), where=before > 0)
        gdf.loc[cut, "area_m2"] = gdf.loc[cut, "area_m2"].to_numpy() * ratio
    keep = shapely.area(gdf.geometry.values) > 0  # shapely: no geopandas warning about areas in degrees
    if "area_m2" in gdf:
        keep &= gdf["area_m2"] >= min_area_m2
    return gdf[keep].reset_index(drop=True)
