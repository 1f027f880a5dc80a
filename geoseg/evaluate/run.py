"""``evaluate``: compare predicted footprints or a probability raster with reference polygons."""

from __future__ import annotations

from pathlib import Path

from geoseg.errors import ConfigError, InputError
from geoseg.georef import crosses_antimeridian, onto

RASTER_SUFFIXES = (".tif", ".tiff", ".vrt")
_NOT_RASTERS = ("kml", "kmz", "xml", "sqlite", "gpkg", "gpkg.zip", "pdf")  # GDAL reads them as rasters, rarely meant so


def is_raster_path(path: str) -> bool:
    """Whether ``path`` names a raster (a probability raster as PRED): .tif/.tiff/.vrt or another GDAL raster
    format's extension (.jp2, .img, .png, ...), never a vector format's."""
    from geoseg.io.vector import VECTOR_EXTENSIONS

    name = Path(path).name.lower()
    if Path(name).suffix in VECTOR_EXTENSIONS:
        return False
    if name.endswith(RASTER_SUFFIXES):
        return True
    try:
        from rasterio.drivers import raster_driver_extensions
    except ImportError:  # pragma: no cover - older rasterio
        return False
    return any(name.endswith(f".{ext}") for ext in raster_driver_extensions() if ext not in _NOT_RASTERS)


def read_polygons(path: str, what: str, within=None, warn_multipart: bool = False):
    """Valid polygons of ``path``; ``within`` (a GeoSeries, any CRS) limits the read to its bounds.
    ``warn_multipart``: warn when features hold several polygons as drawn (not those a repair split)."""
    from geoseg.io.vector import VECTOR_EXTENSIONS, polygonal, read_polygon_features

    if Path(path).suffix.lower() not in VECTOR_EXTENSIONS:
        rasters = " (footprints), or a raster such as .tif (probabilities)" if what == "prediction" else ""
        raise InputError(f"{what} {path} must be one of {', '.join(VECTOR_EXTENSIONS)}{rasters}")
    gdf = read_polygon_features(path, what, within)
    if warn_multipart:  # before the repair: a self-intersecting outline it splits in parts is still one building
        _warn_multipart(gdf, path)
    return gdf.set_geometry(polygonal(gdf.geometry.values)).pipe(lambda g: g[~g.geometry.is_empty])


def _check_raster(path: str) -> None:
    """One-line errors for a missing, corrupt or CRS-less raster to score on."""
    from geoseg.io.raster import open_raster

    with open_raster(path) as ds:
        if ds.crs is None:
            raise InputError(f"{path} has no CRS; assign one first, e.g. `gdal_edit.py -a_srs EPSG:XXXX {path}`")


def _grid(raster: str | None):
    """The raster's grid (None without a raster)."""
    if raster is None:
        return None
    from geoseg.grid import RasterGrid
    from geoseg.io.raster import open_raster

    with open_raster(raster) as ds:
        return RasterGrid((ds.height, ds.width), ds.transform, ds.crs)


def _extent(grid):
    """The grid's footprint as a one-box GeoSeries in its CRS (None without a grid, or for a grid across the
    antimeridian: its box would miss the polygons stored on the other side of 180 degrees, so all are read)."""
    if grid is None or crosses_antimeridian(grid):
        return None
    import geopandas as gpd
    from shapely.geometry import box

    return gpd.GeoSeries([box(*grid.bounds)], crs=grid.crs)


def _read_aoi(aoi: str | None, extent, raster: str | None):
    """The ``aoi`` polygons (those around ``extent`` if given), or None without an ``aoi``; a one-line error if
    none is left."""
    if aoi is None:
        return None
    gdf = read_polygons(aoi, "aoi", extent)
    if gdf.empty:
        where = f" on {raster}" if raster else ""
        raise InputError(f"no polygon of the aoi {aoi} lies{where}; give the area where the truth is complete "
                         "(polygons, any CRS), or leave --aoi out")
    return gdf


def check_aoi(aoi: str, raster: str) -> None:
    """A one-line error now if ``aoi`` is unreadable or lies off ``raster`` (e.g. before a sweep runs any model)."""
    _read_aoi(aoi, _extent(_grid(raster)), raster)


def _within(gdf, aoi_gdf):
    """The rows of ``gdf`` whose representative point lies in the ``aoi_gdf`` polygons (all rows without one)."""
    if aoi_gdf is None or gdf.empty:
        return gdf
    import shapely

    from geoseg.aoi import inside

    return gdf[inside(gdf, shapely.union_all(aoi_gdf.to_crs(gdf.crs).geometry.values))]


def _label_warning(message: str) -> None:
    import warnings

    from geoseg.errors import LabelWarning

    warnings.warn(message, LabelWarning, stacklevel=4)


def _warn_no_truth(what: str, check: str = "check that the truth covers the raster") -> None:
    _label_warning(f"{what}: there is nothing to find, so the scores say little (an empty prediction scores 1); {check}")


def _no_truth_on(truth: str, raster: str, aoi: str | None) -> str:
    return f"no polygon of {truth} lies on the valid area of {raster}" + (" inside the aoi" if aoi else "")


def check_truth_on(raster: str, truth: str, aoi: str | None = None) -> None:
    """Before a sweep runs any model: one-line errors for an unreadable truth or aoi (or an aoi off ``raster``),
    and the warning :func:`evaluate` gives, once, when no truth polygon lies on ``raster``'s valid area. Reads only
    the part of the truth around the raster."""
    from geoseg.evaluate.pixels import valid_at

    grid = _grid(raster)
    extent = _extent(grid)
    gdf = onto(read_polygons(truth, "truth", extent), grid)
    aoi_gdf = _read_aoi(aoi, extent, raster)
    aoi_gdf = None if aoi_gdf is None else onto(aoi_gdf, grid)
    if gdf[valid_at(raster, gdf.geometry.values)].pipe(_within, aoi_gdf).empty:
        _warn_no_truth(_no_truth_on(truth, raster, aoi))


def _nodata_is_a_score(path: str, threshold: float) -> bool:
    """Whether the probability raster ``path`` takes its valid area from a declared nodata value that is also a
    score under ``threshold`` ("no building", e.g. 0 in a 0/255 mask written with ``-a_nodata 0``); then warns that
    those pixels are scored as no building (its valid area: its mask or alpha band only)."""
    import math

    from rasterio.enums import MaskFlags

    from geoseg.io.raster import open_raster

    with open_raster(path) as ds:
        nodata, dtype, flags = ds.nodata, ds.dtypes[0], ds.mask_flag_enums[0]
    if nodata is None or not math.isfinite(nodata) or MaskFlags.nodata not in flags:
        return False
    value = nodata / 255.0 if dtype == "uint8" else nodata
    if (dtype != "uint8" and not dtype.startswith("float")) or not 0.0 <= value <= threshold:
        return False
    import warnings

    from geoseg.errors import InputWarning

    warnings.warn(f"{path} declares nodata {nodata:g}, which is also a score (no building at threshold {threshold:g}): "
                  "those pixels are scored as no building, not left out; its valid area is its mask or alpha band. "
                  f"To drop the nodata value from the file: `gdal_edit.py -unsetnodata {path}`", InputWarning, stacklevel=3)
    return True


def _warn_multipart(gdf, path: str) -> None:
    """Object scores count features: a feature of several separate polygons (a dissolved layer) is one building."""
    import shapely

    n = int((shapely.get_num_geometries(gdf.geometry.values) > 1).sum())
    if n:
        _label_warning(f"{n} of the {len(gdf)} features of {path} hold several polygons; each counts as one building "
                       "in the object scores (pixel scores are not affected); if each part is a building, split them "
                       "first, e.g. `ogr2ogr -explodecollections`")


def _warn_apart(what: str) -> None:
    _label_warning(f"{what}: every building scores as missed or false; check that both files are of the same place "
                   "and that each carries its true CRS")


def _n_features(path: str) -> int:
    """How many features the vector file holds, over its whole extent (0 where the driver cannot say)."""
    import pyogrio

    try:
        return max(0, int(pyogrio.read_info(path, force_feature_count=True)["features"]))
    except Exception:  # noqa: BLE001 - only a hint for a warning; the file was read already
        return 0


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one file (``p.tif`` and ``./dir/../p.tif`` do)."""
    import os

    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def _boxes_meet(a, b) -> bool:
    """Whether the bounding boxes of two GeoDataFrames (any CRSs) overlap, compared in ``a``'s CRS."""
    import shapely

    return shapely.box(*a.total_bounds).intersects(shapely.box(*b.to_crs(a.crs).total_bounds))


def evaluate(pred: str, truth: str, raster: str | None = None, threshold: float | None = None,
             iou_threshold: float = 0.5, breakdown: bool = False, matches: str | None = None,
             aoi: str | None = None) -> dict:
    """Pixel IoU/precision/recall/F1 and object F1 at IoU >= ``iou_threshold`` (one-to-one; recorded as
    ``iou_threshold``).

    ``pred`` is a footprint file or a probability raster (any GDAL raster format). Objects come from vectorizing a
    probability raster as ``geoseg vectorize`` would: unless ``threshold`` is given, at the threshold of the
    ``geoseg segment`` run that wrote it, else 0.5, with that run's border cut, footprint rules (minimum area and
    part, simplification, squaring, splitting) and border/gap bands. Its pixel scores depend on the grid: scored on
    its own grid (no ``raster``, or ``raster`` naming it), the probability is thresholded pixel by pixel; with a
    ``raster`` of another file, its footprints are rasterised on that grid, as footprints are. Its valid area is its mask or alpha band: a
    declared nodata value that is also a score (0 in a 0/255 mask) is scored as no building, with a warning.
    ``raster`` defines the grid and the valid area for pixel scores (default: ``pred`` when it is a raster); without
    one, IoU/precision/recall/F1 come from polygon areas over the whole extent
    (:func:`~geoseg.evaluate.pixels.area_scores`). Both sides may be in any CRS. ``breakdown`` adds how much of the
    pixel error is whole buildings missed or invented (``geoseg.evaluate.breakdown``; needs a raster grid). ``matches``:
    also write every prediction and reference building with its status (tp/fp/fn) and IoU to this vector file
    (:mod:`geoseg.evaluate.matches`), in the predictions' CRS. ``aoi``: a polygon file (any
    CRS) of the area where the truth is complete; pixels outside it do not count, nor do buildings whose
    representative point lies outside it (on either side). Nothing to find and nothing found scores 1 throughout.
    """
    from geoseg.evaluate.objects import match_objects, object_scores

    is_raster = is_raster_path(pred)
    _check_options(pred, truth, raster, iou_threshold, breakdown, matches, aoi, is_raster)
    grid = _grid(raster or (pred if is_raster else None))  # the grid and valid area the pixel scores use
    extent = _extent(grid)  # only the part of large vector files that can count
    truth_gdf = read_polygons(truth, "truth", extent, warn_multipart=True)
    aoi_gdf = _read_aoi(aoi, extent, raster or (pred if is_raster else None))
    if is_raster:
        pred_gdf, thr, own_grid, as_is = _vectorized(pred, threshold, raster)
        raster = raster or pred
    else:
        pred_gdf, thr, own_grid, as_is = read_polygons(pred, "prediction", extent, warn_multipart=True), None, False, False
    pred_crs = pred_gdf.crs  # the matches file is written in it
    out: dict = {"pred": str(pred), "truth": str(truth), "raster": raster, "threshold": thr,  # footprints have none
                 "iou_threshold": iou_threshold, **({"aoi": str(aoi)} if aoi else {})}
    # Pixel (or area) scores count every building's pixels on the valid area, also of buildings cut by the raster's
    # edge, its nodata or the aoi; objects are the buildings whose representative point lies there (on both sides).
    if raster is not None:
        scores, truth_gdf, pred_gdf = _on_grid(pred, truth, raster, grid, truth_gdf, pred_gdf, aoi, aoi_gdf,
                                               is_raster, thr if own_grid else None, as_is, breakdown)
    else:
        scores, truth_gdf, pred_gdf = _on_areas(pred, truth, truth_gdf, pred_gdf, aoi, aoi_gdf)
    out.update(scores)
    pairs = match_objects(pred_gdf.geometry.values, truth_gdf.geometry.values, iou_threshold)
    out.update(object_scores(pred_gdf.geometry.values, truth_gdf.geometry.values, iou_threshold, pairs))
    out.update({"n_pred": len(pred_gdf), "n_truth": len(truth_gdf)})
    if matches is not None:
        _write_matches(matches, pred_gdf, truth_gdf, pairs, pred_crs, pred, truth, iou_threshold)
        out["matches"] = str(matches)
    return out


def _check_options(pred, truth, raster, iou_threshold, breakdown, matches, aoi, is_raster) -> None:
    """One-line errors, before any work, for options :func:`evaluate` cannot honour, and unusable rasters."""
    from geoseg.io.atomic import check_not_an_input
    from geoseg.io.vector import check_vector_output

    if matches is not None:
        check_not_an_input({"--matches": matches}, {"the prediction": pred, "--truth": truth, "--raster": raster, "--aoi": aoi})
        check_vector_output(matches)  # before the work
    if not 0.0 < iou_threshold <= 1.0:
        raise ConfigError(f"object-match IoU {iou_threshold} is out of range; give a value above 0 and at most 1")
    if breakdown and raster is None and not is_raster:
        raise ConfigError("breakdown scores pixels: give a raster (the image the footprints were made from)")
    for path in dict.fromkeys(p for p in (pred if is_raster else None, raster) if p is not None):
        _check_raster(path)


def _vectorized(pred: str, threshold: float | None, raster: str | None):
    """The probability raster ``pred``'s footprints as ``geoseg vectorize`` makes them, the threshold used,
    whether its pixel scores are taken on its own grid (no ``raster``, or ``raster`` naming it: they threshold the
    probability itself), and whether its nodata value is then ignored (:func:`_nodata_is_a_score`)."""
    from dataclasses import replace

    from geoseg.config import VectorizeConfig
    from geoseg.footprints.raster import vectorize_raster
    from geoseg.io.prob_raster import settings_from_raster

    # as `geoseg vectorize` would: the threshold, border cut and footprint rules of the run that wrote it, its
    # border/gap bands
    vcfg, _ = settings_from_raster(pred, VectorizeConfig(threshold=threshold), imagery_hint=(
        "to score a model on it, add --gsd-sweep (e.g. --gsd-sweep 0.3), or segment it first and evaluate the footprints"),
        given=set() if threshold is None else {"threshold"})
    thr = 0.5 if vcfg.threshold is None else vcfg.threshold
    own_grid = raster is None or _same_file(raster, pred)
    scored_as_is = own_grid and _nodata_is_a_score(pred, thr)  # then all-"nodata" is a prediction of nothing
    gdf = vectorize_raster(pred, replace(vcfg, threshold=thr), require_valid=not scored_as_is)
    return gdf, thr, own_grid, scored_as_is


def _on_grid(pred, truth, raster, grid, truth_gdf, pred_gdf, aoi, aoi_gdf, is_raster, prob_thr, as_is, breakdown):
    """Pixel scores on ``raster``'s grid and valid area, and both sides' buildings that count as objects there
    (in a metric CRS). ``prob_thr``: score ``pred`` (the raster itself) by thresholding it; ``as_is``: its nodata
    value is a score, not a gap in its valid area."""
    from geoseg import georef
    from geoseg.evaluate.pixels import pixel_scores, valid_at

    truth_all, pred_all = onto(truth_gdf, grid), onto(pred_gdf, grid)
    aoi_gdf = None if aoi_gdf is None else onto(aoi_gdf, grid)
    truth_r = truth_all[valid_at(raster, truth_all.geometry.values, as_is)].pipe(_within, aoi_gdf)
    pred_r = pred_all[valid_at(raster, pred_all.geometry.values, as_is)].pipe(_within, aoi_gdf)
    if truth_r.empty:
        _warn_no_truth(_no_truth_on(truth, raster, aoi))
    if pred_r.empty and not is_raster and (n := _n_features(pred)):
        _warn_apart(f"none of the {n} features of {pred} lies on the valid area of {raster}"
                    + (" inside the aoi" if aoi else ""))
    area = None if aoi_gdf is None else aoi_gdf.geometry.values
    scores = pixel_scores(raster, truth_all.geometry.values, pred_all.geometry.values, prob_threshold=prob_thr,
                          breakdown=breakdown, aoi_geoms=area, ignore_nodata=as_is)
    metric = georef.metric_crs_for(grid)
    return scores, truth_r.to_crs(metric), pred_r.to_crs(metric)


def _on_areas(pred, truth, truth_gdf, pred_gdf, aoi, aoi_gdf):
    """Without a raster: IoU/precision/recall/F1 from polygon areas over the whole extent, and both sides'
    buildings that count as objects (in a metric CRS)."""
    import shapely

    from geoseg.evaluate.pixels import area_scores

    truth_in, pred_in = _within(truth_gdf, aoi_gdf), _within(pred_gdf, aoi_gdf)
    if truth_in.empty and pred_in.empty and aoi:
        raise InputError(f"no building of {truth} or {pred} lies inside the aoi {aoi}; give an aoi where they are "
                         "(polygons, any CRS), or leave --aoi out")
    if truth_in.empty:
        _warn_no_truth(f"{truth} holds no polygon" + (" inside the aoi" if aoi else ""),
                       "check that it is the right file (and layer)")
    if not truth_in.empty and not pred_in.empty and not _boxes_meet(truth_in, pred_in):
        _warn_apart(f"the predictions ({pred}) and the truth ({truth}) do not overlap anywhere")
    some = truth_in if not truth_in.empty else pred_in
    metric = some.estimate_utm_crs() if not some.empty else "EPSG:3857"  # nothing on either side: no areas to measure
    area = None if aoi_gdf is None else shapely.union_all(aoi_gdf.to_crs(metric).geometry.values)
    scores = area_scores(truth_gdf.to_crs(metric).geometry.values, pred_gdf.to_crs(metric).geometry.values, area)
    scores["pixel_scores_from"] = ("polygon areas over the whole extent (give --raster to score the imagery's valid "
                                   "area on its pixels)")
    return scores, truth_in.to_crs(metric), pred_in.to_crs(metric)


def _write_matches(matches, pred_gdf, truth_gdf, pairs, pred_crs, pred, truth, iou_threshold) -> None:
    from geoseg.evaluate.matches import match_table
    from geoseg.io.vector import write_vectors

    table = match_table(pred_gdf.reset_index(drop=True), truth_gdf.reset_index(drop=True), pairs)
    if pred_crs is not None:  # scored in a metric CRS; written where the predictions are
        table = table.to_crs(pred_crs)
    write_vectors(table, matches, metadata={"pred": str(pred), "truth": str(truth), "iou_threshold": iou_threshold})
