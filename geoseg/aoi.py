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
    """``geom`` (a shapely geometry in ``src_crs``) in ``dst_crs``."""
    import geopandas as gpd

    return gpd.GeoSeries([geom], crs=src_crs).to_crs(dst_crs).iloc[0]


def read_aoi(path: str, grid: RasterGrid, raster: str, what: str = "aoi"):
    """The polygons of ``path`` united into one valid geometry in ``grid``'s CRS and cut to its outline; a
    one-line :class:`InputError` when the file is unreadable or none of its polygons lies on the raster."""
    import shapely

    from geoseg.io.vector import polygonal, read_polygon_features

    gdf = read_polygon_features(path, what)
    geoms = [g for g in polygonal(gdf.to_crs(grid.crs).geometry.values) if not g.is_empty]
    area = shapely.union_all(geoms).intersection(outline(grid)) if geoms else None
    if area is None or area.is_empty or area.area <= 0:
        raise InputError(f"no polygon of the {what} {path} lies on {raster}; draw the area to process over the "
                         "raster (polygons, any CRS)")
    return area


def grown(area, grid: RasterGrid, margin_m: float):
    """``area`` (in ``grid``'s CRS) grown by ``margin_m`` metres, measured in the grid's metric CRS."""
    from geoseg.georef import metric_crs_for

    if margin_m <= 0:
        return area
    metric = metric_crs_for(grid)
    return to_crs(to_crs(area, grid.crs, metric).buffer(margin_m), metric, grid.crs)


def restrict(gdf, area, cut: bool = False, min_area_m2: float = 0.0):
    """``gdf`` limited to ``area`` (in its CRS): :func:`clip` where ``cut``, else :func:`owned`."""
    return clip(gdf, area, min_area_m2) if cut else owned(gdf, area)


def mask(area, transform, shape_yx: tuple[int, int]) -> np.ndarray:
    """Pixels of a grid (``transform``, ``shape_yx``) whose centre lies in ``area`` (one geometry, or a list of
    them): bool ``(Y, X)``."""
    from rasterio.features import geometry_mask

    geoms = [g for g in (area if isinstance(area, (list, tuple)) else [area]) if not g.is_empty]
    if not geoms:
        return np.zeros(shape_yx, bool)
    return geometry_mask(geoms, out_shape=shape_yx, transform=transform, invert=True)


def inside(gdf, area) -> np.ndarray:
    """Which rows of ``gdf`` have their representative point (a point inside each shape) in ``area`` (in
    ``gdf``'s CRS; its edge counts as in): bool per row."""
    import shapely

    if gdf.empty:
        return np.zeros(0, bool)
    shapely.prepare(area)
    return shapely.intersects(area, shapely.point_on_surface(gdf.geometry.values))


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
