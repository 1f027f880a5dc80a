"""Ground resolution and metric working grids (pure maths over CRSs; opens no file)."""

from __future__ import annotations

import math

from geoseg.errors import InputError
from geoseg.grid import RasterGrid


def _crs(crs: object):
    from rasterio.crs import CRS

    return CRS.from_user_input(crs)


def center_lonlat(grid: RasterGrid) -> tuple[float, float]:
    from rasterio.warp import transform

    x, y = grid.transform @ (grid.width / 2, grid.height / 2)
    lon, lat = transform(_crs(grid.crs), "EPSG:4326", [x], [y])
    return float(lon[0]), float(lat[0])


def ground_gsd_m(grid: RasterGrid) -> float:
    """True ground size of one pixel at the raster centre, in metres (geodesic).

    Correct for geographic CRSs (degrees) and for Web Mercator, whose nominal
    metres are stretched by ``1/cos(latitude)``.
    """
    from pyproj import Geod
    from rasterio.warp import transform

    if grid.crs is None:
        raise InputError("the raster has no CRS; assign one first, e.g. `gdal_edit.py -a_srs EPSG:32633 FILE`")
    c, r = grid.width / 2, grid.height / 2
    pts = [grid.transform @ p for p in ((c, r), (c + 1, r), (c, r + 1))]
    lons, lats = transform(_crs(grid.crs), "EPSG:4326", [p[0] for p in pts], [p[1] for p in pts])
    geod = Geod(ellps="WGS84")
    _, _, dx = geod.inv(lons[0], lats[0], lons[1], lats[1])
    _, _, dy = geod.inv(lons[0], lats[0], lons[2], lats[2])
    if not (dx > 0 and dy > 0) or not math.isfinite(dx * dy):
        raise InputError("cannot measure the raster's ground resolution; check its CRS and geotransform")
    return math.sqrt(dx * dy)


def utm_crs_for(lon: float, lat: float):
    """The WGS84 UTM zone CRS containing ``(lon, lat)``."""
    zone = math.floor((lon + 180.0) / 6.0) % 60 + 1
    return _crs(f"EPSG:{(32600 if lat >= 0 else 32700) + zone}")


def is_metric_faithful(grid: RasterGrid, rel_tol: float = 0.01) -> bool:
    """True if the grid's CRS units are metres that match ground distance (to ``rel_tol``)."""
    crs = _crs(grid.crs)
    if not crs.is_projected:
        return False
    try:
        _, factor = crs.linear_units_factor
    except Exception:  # noqa: BLE001 - unknown units: not trustworthy
        return False
    if factor != 1.0:  # feet, US survey feet, km: the engine's sizes (GSD, margins, areas) are metres
        return False
    nominal = math.sqrt(grid.res_xy[0] * grid.res_xy[1])
    return abs(nominal / ground_gsd_m(grid) - 1.0) <= rel_tol


def metric_crs_for(grid: RasterGrid):
    """The CRS to work in: the grid's own if it is faithfully metric, else the local UTM zone."""
    if is_metric_faithful(grid):
        return _crs(grid.crs)
    return utm_crs_for(*center_lonlat(grid))


def reproject_grid(grid: RasterGrid, dst_crs: object, res_m: float) -> RasterGrid:
    """A north-up grid in ``dst_crs`` at ``res_m`` covering ``grid``, snapped to multiples of ``res_m``."""
    from affine import Affine
    from rasterio.warp import transform_bounds

    left, bottom, right, top = transform_bounds(_crs(grid.crs), _crs(dst_crs), *grid.bounds, densify_pts=21)
    left = math.floor(left / res_m) * res_m
    top = math.ceil(top / res_m) * res_m
    width = max(1, math.ceil((right - left) / res_m - 1e-9))
    height = max(1, math.ceil((top - bottom) / res_m - 1e-9))
    return RasterGrid((height, width), Affine(res_m, 0.0, left, 0.0, -res_m, top), _crs(dst_crs))


def work_grid(grid: RasterGrid, gsd_m: float) -> RasterGrid:
    """The metric grid a raster on ``grid`` is read on at ``gsd_m``: its own when it already is one, else
    :func:`reproject_grid` onto :func:`metric_crs_for` (the engine's working grid)."""
    rx, ry = grid.res_xy
    square = abs(rx / ry - 1) < 0.01  # else the model would see buildings stretched (0.25 x 0.36 m pixels: by 44 %)
    if square and is_metric_faithful(grid) and abs(ground_gsd_m(grid) / gsd_m - 1) < 0.01:
        return grid
    return reproject_grid(grid, metric_crs_for(grid), gsd_m)


def parse_crs(crs: object):
    """``crs`` (text such as ``EPSG:4326``, or a CRS) as a rasterio CRS; a one-line :class:`ConfigError` if it is
    none. pyproj reads it first: it refuses an unknown code quietly, where GDAL would also print "ERROR 1: PROJ"."""
    import pyproj
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    from geoseg.errors import ConfigError

    if isinstance(crs, CRS):
        return crs
    try:
        pyproj.CRS.from_user_input(crs)
        return CRS.from_user_input(crs)
    except (CRSError, ValueError, pyproj.exceptions.CRSError):
        raise ConfigError(f"--dst-crs {crs!r} is not a CRS; use e.g. EPSG:32633") from None


def check_representable(grid: RasterGrid, dst_crs: object, name: str | None = None) -> None:
    """A one-line :class:`ConfigError` (naming the CRS as the user gave it, ``name``) when ``dst_crs`` cannot hold ``grid``'s area: its edges (21 points a side)
    transform to infinite or undefined coordinates there (e.g. an orthographic view of the other hemisphere)."""
    import numpy as np
    from rasterio.warp import transform

    from geoseg.errors import ConfigError

    h, w = grid.shape_yx
    t = np.linspace(0.0, 1.0, 21)
    cols = np.concatenate([t * w, np.full(21, w), t * w, np.zeros(21)])
    rows = np.concatenate([np.zeros(21), t * h, np.full(21, h), t * h])
    xs, ys = grid.transform @ (cols, rows)
    try:
        x, y = transform(_crs(grid.crs), _crs(dst_crs), xs.tolist(), ys.tolist())
    except Exception:  # noqa: BLE001 - PROJ refuses the points outright: the same answer as infinite ones
        x, y = [math.inf], [math.inf]
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        crs = _crs(dst_crs)
        name = name or (f"EPSG:{crs.to_epsg()}" if crs.to_epsg() else crs.to_proj4() or "(this CRS)")
        raise ConfigError(f"--dst-crs {name} cannot represent the raster's area (its coordinates there are infinite "
                          "or undefined); choose a CRS that covers the area, e.g. its UTM zone or EPSG:4326")
