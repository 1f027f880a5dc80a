"""Overlaps between separate squared footprints (docs/splitting.md): vectorize the chips' probabilities with
--regularize with the cut-back pass off and on, count pairs overlapping by over 1e-4 m2 in UTM 45N, score both.

    python scripts/chips_vrt.py runs/eval/banepa_chips.vrt ../shared/data/buildings/banepa_geotiff/train/oam/*.tif
    geoseg segment runs/eval/banepa_chips.vrt --prob runs/simp/chips_prob.tif
    python scripts/regularize_overlaps.py
"""
import contextlib
import io
import json
import time

import geopandas as gpd
import shapely

import geoseg.footprints.finish as F
from geoseg.cli.main import cli

L = "../shared/data/buildings/banepa_geotiff/train/osm/osm_features_ac7e343eb1faacd2.geojson"
for tol in (float("inf"), 1e-7):
    F.OVERLAP_REL_TOL = tol
    out = f"runs/simp/chips_reg_{tol}.gpkg"
    t = time.time()
    with contextlib.redirect_stderr(io.StringIO()):
        cli(["vectorize", "runs/simp/chips_prob.tif", "-o", out, "--progress", "none", "--regularize"], standalone_mode=False)
    dt = time.time() - t
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
        cli(["evaluate", out, "--truth", L, "--raster", "runs/eval/banepa_chips.vrt", "--json"], standalone_mode=False)
    r = json.loads(buf.getvalue())
    g = gpd.read_file(out).to_crs(32645).geometry.values
    i, j = shapely.STRtree(g).query(g, predicate="intersects"); k = i < j
    a = shapely.area(shapely.intersection(g[i[k]], g[j[k]]))
    print({"pass_on": tol < 1, "n": len(g), "pairs_over_1e4": int((a > 1e-4).sum()), "overlap_m2": round(float(a[a > 1e-4].sum()), 3),
               "iou": round(r["pixel"]["iou"] if "pixel" in r else r.get("iou", -1), 4), "vectorize_s": round(dt, 1)})
