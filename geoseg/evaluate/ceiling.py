"""The grid's ceiling: what a perfect model would score when it runs on a grid of a given GSD.

A model running at GSD g sees pixels of g x g metres. Even one that gets every pixel's share of building exactly
right ends up with staircase outlines one pixel wide, and neighbours a pixel apart merge. The oracle here is that
perfect model: each pixel of the working grid holds the exact share of its area covered by the reference polygons
(rasterised on a finer grid and averaged). It goes through the same path as a model's output (footprints at
threshold 0.5 with the default outline settings, then :func:`geoseg.evaluate.run.evaluate` on the input grid), so
its scores are the most a network can reach at g with this pipeline and metric. A sweep's drop at coarse GSDs
is partly this ceiling; the rest is the network.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

FINE_M = 0.03  # the oracle's sub-pixel raster: about 1/4 of the finest GSD swept (0.075 m)
_FINE_PIXELS = 32_000_000  # fine pixels rasterised at once (bounded memory)


def building_share(truth_geoms, grid, fine_m: float = FINE_M):
    """Yield ``(row0, share_yx)`` strips over ``grid``: each pixel's building share (float32, 0-1) of
    ``truth_geoms`` (shapely, in ``grid.crs``), measured on a grid ``ceil(gsd / fine_m)`` times finer."""
    from affine import Affine
    from rasterio.features import rasterize

    k = max(1, math.ceil(abs(grid.transform.a) / fine_m))
    h, w = grid.shape_yx
    rows = max(1, _FINE_PIXELS // (w * k * k))
    fine = grid.transform @ Affine.scale(1 / k)
    geoms = [g for g in truth_geoms if g is not None and not g.is_empty]
    for r0 in range(0, h, rows):
        n = min(rows, h - r0)
        if not geoms:
            yield r0, np.zeros((n, w), np.float32)
            continue
        m = rasterize(((g, 1) for g in geoms), out_shape=(n * k, w * k),
                      transform=fine @ Affine.translation(0, r0 * k), dtype="uint8")
        yield r0, m.reshape(n, k, w, k).mean(axis=(1, 3), dtype=np.float32)


def write_share(truth_geoms, grid, path: str | Path, fine_m: float = FINE_M) -> Path:
    """:func:`building_share` over ``grid`` as a float32 GeoTIFF (an oracle's probability raster), written to a
    temporary file and renamed: an interrupted run leaves no partial raster."""
    import rasterio
    from rasterio.windows import Window

    from geoseg.io.atomic import atomic_output

    h, w = grid.shape_yx
    profile = {"driver": "GTiff", "height": h, "width": w, "count": 1, "dtype": "float32", "crs": grid.crs,
               "transform": grid.transform, "compress": "deflate", "tiled": True}
    with atomic_output(Path(path)) as tmp, rasterio.open(tmp, "w", **profile) as ds:
        for r0, strip in building_share(truth_geoms, grid, fine_m):
            ds.write(strip, 1, window=Window(0, r0, w, strip.shape[0]))
    return Path(path)


def grid_ceiling(raster: str, truth: str, grid, stem: str | Path, aoi: str | None = None,
                 iou_threshold: float = 0.5) -> dict:
    """Scores of the perfect model on ``grid`` (e.g. the working grid a run used, ``Plan.work_grid``), against
    ``truth`` on ``raster``'s own grid and valid area. Leaves ``<stem>.tif`` (the share) and ``<stem>.gpkg``
    (its footprints). Keys as :func:`geoseg.evaluate.run.evaluate`, scored inside ``aoi`` if given, objects matched
    at ``iou_threshold``. Only the truth around ``grid`` is read."""
    from geoseg.config import VectorizeConfig
    from geoseg.evaluate.run import _extent, evaluate, read_polygons
    from geoseg.footprints.raster import vectorize_raster
    from geoseg.georef import onto
    from geoseg.io.vector import write_vectors

    geoms = onto(read_polygons(truth, "truth", _extent(grid)), grid).geometry.values
    share = write_share(geoms, grid, f"{stem}.tif")
    gdf = vectorize_raster(str(share), VectorizeConfig(threshold=0.5), model_name="oracle")
    write_vectors(gdf, f"{stem}.gpkg", {"source": str(share)})
    return evaluate(f"{stem}.gpkg", truth, raster=raster, aoi=aoi, iou_threshold=iou_threshold)
