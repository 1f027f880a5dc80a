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


def edge_xy(grid: RasterGrid, per_side: int = 21) -> tuple:
    """Map coordinates ``(xs, ys)`` of ``per_side`` points along each edge of ``grid``, in order round it."""
    import numpy as np

    h, w = grid.shape_yx
    t = np.linspace(0.0, 1.0, per_side)
    cols = np.concatenate([t * w, np.full(per_side, w), t[::-1] * w, np.zeros(per_side)])
    rows = np.concatenate([np.zeros(per_side), t * h, np.full(per_side, h), t[::-1] * h])
    return grid.transform @ (cols, rows)


def edge_lonlat(grid: RasterGrid, per_side: int = 21) -> tuple:
    """Longitudes and latitudes (WGS84) of :func:`edge_xy`."""
    import numpy as np
    from rasterio.warp import transform

    xs, ys = edge_xy(grid, per_side)
    lon, lat = transform(_crs(grid.crs), "EPSG:4326", xs.tolist(), ys.tolist())
    return np.asarray(lon), np.asarray(lat)


def antimeridian_centre(grid: RasterGrid) -> float | None:
    """The centre longitude of ``grid``'s area if that area crosses the antimeridian (its edges, taken the short way
    round, pass 180 degrees east or west, or its own longitudes run past them), else None."""
    import numpy as np

    lon, _ = edge_lonlat(grid)
    if not np.isfinite(lon).all():
        return None
    unwrapped = lon[0] + (lon - lon[0] + 180.0) % 360.0 - 180.0  # each edge point the short way from the first
    if unwrapped.min() >= -180.0 and unwrapped.max() <= 180.0:
        return None
    return float((unwrapped.min() + unwrapped.max()) / 2)


def is_torn(grid: RasterGrid, crs: object, per_side: int = 21) -> bool:
    """True if ``crs`` tears ``grid``'s area apart: two neighbouring points on its edges land more than 1000 times the
    typical step apart (EPSG:3857 across the antimeridian: 40,000 km instead of 10 m)."""
    import numpy as np
    from rasterio.warp import transform

    xs, ys = edge_xy(grid, per_side)
    x, y = (np.asarray(v) for v in transform(_crs(grid.crs), _crs(crs), xs.tolist(), ys.tolist()))
    steps = np.hypot(np.diff(x), np.diff(y))
    steps = steps[np.isfinite(steps)]
    typical = np.median(steps[steps > 0]) if (steps > 0).any() else 0.0
    return bool(typical > 0 and steps.max() > 1000 * typical)


def check_not_torn(grid: RasterGrid, crs: object, name: str, inverted: bool = False) -> None:
    """A one-line :class:`ConfigError` when ``crs`` (given by the user as ``name``) tears ``grid``'s area apart
    (:func:`is_torn`), or its bounds there are ``inverted`` (left > right)."""
    from geoseg.errors import ConfigError

    if not inverted and not is_torn(grid, crs):
        return
    utm = utm_crs_for(*center_lonlat(grid)).to_string()
    where = "crosses the antimeridian" if antimeridian_centre(grid) is not None else "is torn apart"
    raise ConfigError(f"the raster {where} in --dst-crs {name}, which cannot hold it in one piece; use EPSG:4326 or "
                      f"a projected CRS centred on it, e.g. its UTM zone {utm}, or leave --dst-crs out")


def wrapped_crs(crs: object, grid: RasterGrid):
    """``crs``, or where it is geographic and ``grid``'s area crosses the antimeridian, the same CRS with
    ``+lon_wrap`` at the area's centre: longitudes then run on past 180 (as gdalwarp writes such rasters) instead of
    jumping to -180, so a warp finds the pixels east of it and a footprint there does not span 360 degrees.

    Use it for the arithmetic (warps, transforms) only; files keep ``crs`` itself."""
    crs = _crs(crs)
    if not crs.is_geographic:
        return crs
    centre = antimeridian_centre(grid)
    if centre is None:
        return crs
    import warnings

    import pyproj

    with warnings.catch_warnings():  # "you will likely lose ... information": a datum's name, not its parameters
        warnings.simplefilter("ignore", UserWarning)
        base = pyproj.CRS.from_user_input(crs).to_proj4().replace("+type=crs", "").strip()  # lon_wrap lives here only
    return _crs(f"{base} +lon_wrap={centre:.6f}")


def onto(data, grid: RasterGrid):
    """``data`` (a GeoDataFrame or GeoSeries, any CRS) in ``grid``'s CRS, where ``grid``'s longitudes run past 180
    (:func:`wrapped_crs`) with its longitudes past 180 too: reference polygons or an aoi stored in [-180, 180] then
    land on a raster written past 180 instead of 360 degrees away."""
    return data.to_crs(wrapped_crs(grid.crs, grid)).set_crs(grid.crs, allow_override=True)


def crosses_antimeridian(grid: RasterGrid) -> bool:
    """Whether ``grid``'s area crosses 180 degrees (a box around it in another CRS may then span the globe)."""
    return antimeridian_centre(grid) is not None


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

    xs, ys = edge_xy(grid)
    try:
        x, y = transform(_crs(grid.crs), _crs(dst_crs), xs.tolist(), ys.tolist())
    except Exception:  # noqa: BLE001 - PROJ refuses the points outright: the same answer as infinite ones
        x, y = [math.inf], [math.inf]
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        crs = _crs(dst_crs)
        name = name or (f"EPSG:{crs.to_epsg()}" if crs.to_epsg() else crs.to_proj4() or "(this CRS)")
        raise ConfigError(f"--dst-crs {name} cannot represent the raster's area (its coordinates there are infinite "
                          "or undefined); choose a CRS that covers the area, e.g. its UTM zone or EPSG:4326")
