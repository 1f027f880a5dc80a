"""The best score a perfect model could get at each GSD: how much of a sweep's drop is the grid, not the network.

    python scripts/gsd_ceiling.py RASTER TRUTH --gsds 0.075,0.15,0.3,0.6,1.2 [--json out.json] [--keep DIR]

For each GSD, a perfect model's output on the engine's working grid at that GSD (``geoseg.georef.work_grid``, the
grid ``geoseg evaluate --sweep-mode model`` runs the model on) is scored as a model's would be:
``geoseg.evaluate.ceiling.grid_ceiling``, the same as the ``ceiling_*`` keys of ``geoseg evaluate --gsd-sweep
--ceiling``, without running any model. Rows also give ``iou_bilinear``: the share upsampled bilinearly to
RASTER's grid and thresholded at 0.5 there, an outline placed between pixels (what a sub-pixel tracer could reach).

A perfect network still loses these points at coarse GSDs; the sweep's metric counts them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np


def ceiling_row(raster: str, truth: str, g: float, folder: Path) -> dict:
    import rasterio
    from rasterio.warp import Resampling, reproject

    from geoseg.evaluate.ceiling import grid_ceiling
    from geoseg.evaluate.pixels import pixel_scores
    from geoseg.evaluate.run import read_polygons
    from geoseg.georef import work_grid
    from geoseg.io.raster import inspect_raster

    grid = work_grid(inspect_raster(raster).grid, g)  # as `geoseg segment --gsd g` and the model-mode sweep
    stem = folder / f"oracle_{g:g}m"
    scores = grid_ceiling(raster, truth, grid, stem)
    row = {"gsd_m": g, **{k: scores[k] for k in ("iou", "precision", "recall", "f1", "obj_f1", "n_pred", "n_truth")}}
    with rasterio.open(f"{stem}.tif") as src, rasterio.open(raster) as ds:  # the share on RASTER's grid, bilinear
        up = np.zeros((ds.height, ds.width), np.float32)
        reproject(src.read(1), up, src_transform=src.transform, src_crs=src.crs, dst_transform=ds.transform,
                  dst_crs=ds.crs, resampling=Resampling.bilinear)
        prof = {"driver": "GTiff", "height": ds.height, "width": ds.width, "count": 1, "dtype": "float32",
                "crs": ds.crs, "transform": ds.transform, "compress": "deflate"}
        mask = ds.dataset_mask()
    with rasterio.open(f"{stem}_up.tif", "w", **prof) as out:
        out.write(up, 1)
        out.write_mask(mask)
    geoms = read_polygons(truth, "truth").to_crs(prof["crs"]).geometry.values
    row["iou_bilinear"] = pixel_scores(f"{stem}_up.tif", geoms, prob_threshold=0.5)["iou"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("raster")
    ap.add_argument("truth")
    ap.add_argument("--gsds", default="0.075,0.15,0.3,0.6,1.2")
    ap.add_argument("--json")
    ap.add_argument("--keep", help="keep the oracle rasters and footprints in this folder")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(a.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for g in (float(x) for x in a.gsds.split(",")):
            row = ceiling_row(a.raster, a.truth, g, folder)
            rows.append(row)
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps({"raster": a.raster, "truth": a.truth, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
