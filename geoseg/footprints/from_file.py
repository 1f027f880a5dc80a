"""Footprints from a probability raster on disk, as ``geoseg vectorize`` makes them: with the settings of the run
that wrote the raster, optionally only inside an area of interest (the rules of ``segment --aoi``)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from geoseg.config import DEFAULT_BORDER_CUT, VectorizeConfig
from geoseg.progress import Progress


@dataclass(frozen=True)
class AoiLimit:
    """An area of interest for vectorizing: a polygon file, the margin traced beyond it, and whether to cut."""

    path: str
    margin_m: float = 50.0
    clip: bool = False

    def __post_init__(self) -> None:
        import math

        from geoseg.errors import ConfigError

        m = self.margin_m
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not math.isfinite(m) or m < 0:
            raise ConfigError(f"--aoi-margin (aoi_margin_m) must be a number >= 0, not {m!r}; give 0 or more metres")


def vectorize_file(prob_path: str, cfg: VectorizeConfig, *, out_crs=None, progress: Progress | None = None,
                   aoi: AoiLimit | None = None, given: frozenset[str] | set[str] = frozenset()):
    """``(footprints, the settings used, the raster's tags)``. ``cfg``'s unset threshold, cut and separators come from the raster
    (:func:`geoseg.io.prob_raster.settings_from_raster`), and so do its footprint rules but those ``given`` (the
    fields of ``cfg`` the user set). With ``aoi``, only pixels within its polygons plus
    ``margin_m`` are read and traced, and footprints whose representative point lies inside are kept whole (or cut
    at the edge, ``clip``), as ``geoseg segment --aoi`` keeps them."""
    from geoseg.aoi import grown, read_aoi, restrict, to_crs
    from geoseg.footprints.raster import vectorize_raster
    from geoseg.georef import ground_gsd_m, wrapped_crs
    from geoseg.grid import RasterGrid
    from geoseg.io.prob_raster import settings_from_raster
    from geoseg.io.raster import check_georeferenced, open_raster

    with open_raster(prob_path) as ds:  # a raster with no CRS or geotransform would give footprints in the wrong place
        check_georeferenced(ds, prob_path)
        grid = RasterGrid((ds.height, ds.width), ds.transform, ds.crs)
    cfg, tags = settings_from_raster(prob_path, cfg, given=given)
    area = region = None
    if aoi is not None:
        area = read_aoi(aoi.path, grid, prob_path)
        region = grown(area, grid, aoi.margin_m)
    cfg = replace(cfg, threshold=0.5 if cfg.threshold is None else cfg.threshold,  # vectorize_raster's defaults,
                  border_cut=DEFAULT_BORDER_CUT if cfg.border_cut is None else cfg.border_cut)  # said in the output
    gdf = vectorize_raster(prob_path, cfg, model_name=tags.get("model", ""), out_crs=out_crs, progress=progress, region=region,
                           require_valid=True)
    if area is not None:
        out_crs = wrapped_crs(gdf.crs, grid)  # the footprints' longitudes run past 180 where the raster's do
        gdf = restrict(gdf, to_crs(area, grid.crs, out_crs), aoi.clip, cfg.min_area_m2,
                       region=to_crs(region, grid.crs, out_crs), px_m=ground_gsd_m(grid))
    return gdf, cfg, tags


def check_outputs(output, prob_path: str, aoi: AoiLimit | None) -> None:
    """Before any work: ``output`` is a vector file geoseg can write, and not the raster or the aoi it reads."""
    from geoseg.io.atomic import check_not_an_input
    from geoseg.io.vector import check_vector_output

    check_vector_output(output)
    check_not_an_input({"the output": output}, {"the input": prob_path, "--aoi": aoi.path if aoi else None})


def provenance(prob_path: str, used: VectorizeConfig, tags: dict, aoi: AoiLimit | None) -> dict:
    """The metadata of vectorized footprints: the run that wrote the raster (its tags), and how they were made."""
    import json
    import os

    from geoseg import __version__

    meta = {k: v for k, v in tags.items() if k in ("geoseg_version", "model", "model_sha256", "settings")}
    meta.update({"vectorized_by": __version__, "source": os.path.abspath(prob_path),
                 "vectorize": json.dumps(used.to_dict(), sort_keys=True)})
    if aoi is not None:
        meta.update({"aoi": os.path.abspath(aoi.path), "aoi_margin_m": str(aoi.margin_m), "aoi_clip": str(aoi.clip)})
    return meta
