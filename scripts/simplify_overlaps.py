"""Overlaps between split footprints: per-polygon Douglas-Peucker (the code before 2026-12-02, "dp") against the
parts of a split component simplified together as a coverage (``COVERAGE_TOLERANCE`` 2.0), with and without
--regularize, on the default model's probabilities over the held-out Banepa sets (docs/splitting.md).

    geoseg segment runs/eval/banepa_chips.vrt --prob runs/simp/chips_prob.tif
    geoseg segment $M/r3_banepa_np_z21.tif --prob runs/simp/z21_prob.tif
    python scripts/simplify_overlaps.py docs/eval/simplify_overlaps_banepa.json
"""
import contextlib
import io
import json
import sys

import geopandas as gpd
import shapely

import geoseg.footprints.finish as F
from geoseg.cli.main import cli

L = "../shared/data/buildings/banepa_geotiff/train/osm/osm_features_ac7e343eb1faacd2.geojson"
M = "../shared/data/buildings/oam_mosaics_r3_banepa_np"
sets = {"chips": ("runs/simp/chips_prob.tif", L, "runs/eval/banepa_chips.vrt"),
        "z21": ("runs/simp/z21_prob.tif", f"{M}/r3_banepa_np_buildings.geojson", f"{M}/r3_banepa_np_z21.tif")}
orig = F._sibling_sets
rows = []
for name, (prob, truth, raster) in sets.items():
    for variant in ["dp", 2.0]:
        for reg in ([], ["--regularize"]):
            F._sibling_sets = (lambda g, n: []) if variant == "dp" else orig
            if variant != "dp":
                F.COVERAGE_TOLERANCE = variant
            out = f"runs/simp/{name}_{variant}_{bool(reg)}.gpkg"
            with contextlib.redirect_stderr(io.StringIO()):
                cli(["vectorize", prob, "-o", out, "--progress", "none", *reg], standalone_mode=False)
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
                cli(["evaluate", out, "--truth", truth, "--raster", raster, "--json"], standalone_mode=False)
            r = json.loads(buf.getvalue())
            g = gpd.read_file(out).to_crs(32645).geometry.values
            i, j = shapely.STRtree(g).query(g, predicate="overlaps")
            m = i < j
            ov = shapely.area(shapely.intersection(g[i[m]], g[j[m]]))
            row = {"set": name, "simplify": variant, "regularize": bool(reg), "n": len(g),
                   "vertices": int(shapely.get_num_coordinates(g).sum()), "overlapping_pairs": int((ov > 1e-4).sum()),
                   "overlap_m2": round(float(ov.sum()), 3), "pixel_iou": r["iou"], "object_f1": r["obj_f1"],
                   "squared": int((gpd.read_file(out).reg_status == 0).sum())}
            print(row, flush=True)
            rows.append(row)
with open(sys.argv[1] if len(sys.argv) > 1 else "runs/simp/results.json", "w") as f:
    json.dump(rows, f, indent=1)
