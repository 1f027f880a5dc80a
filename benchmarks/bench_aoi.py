"""What ``--aoi`` saves: ``segment()`` over a whole raster against the same raster limited to an area of interest.

The area covers ``--fraction`` of the raster, and its bounding box is the whole raster, so only skipping the tiles
it misses saves time. ``--shape band``: a band along the diagonal (an irregular area, like a river corridor);
``--shape corners``: two squares in opposite corners (two far-apart villages). Both runs write footprints; the table
gives the tiles run, the working-grid megapixels read, seconds, and the buildings each found inside the area.

    python benchmarks/bench_aoi.py --size 4096 --fraction 0.1
    python benchmarks/bench_aoi.py --size 4096 --fraction 0.1 --shape corners
    python benchmarks/bench_aoi.py --size 10k --fraction 0.05 --json aoi_10k.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA_DIR, environment, parse_size, print_table, write_json
from make_big_raster import build


def diagonal_band(grid, fraction: float):
    """A band along ``grid``'s top-left to bottom-right diagonal covering about ``fraction`` of it (in its CRS)."""
    from shapely.geometry import LineString

    x0, y0 = grid.transform @ (0, 0)
    x1, y1 = grid.transform @ (grid.width, grid.height)
    line = LineString([(x0, y0), (x1, y1)])
    area = abs((x1 - x0) * (y1 - y0))
    return line.buffer(fraction * area / line.length / 2, cap_style="flat")


def corners(grid, fraction: float):
    """Two squares, in ``grid``'s top-left and bottom-right corners, covering about ``fraction`` of it together."""
    from shapely.geometry import MultiPolygon, box

    side_x, side_y = grid.width * (fraction / 2) ** 0.5, grid.height * (fraction / 2) ** 0.5
    boxes = []
    for c, r in ((0, 0), (grid.width - side_x, grid.height - side_y)):
        (xa, ya), (xb, yb) = grid.transform @ (c, r), grid.transform @ (c + side_x, r + side_y)
        boxes.append(box(min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb)))
    return MultiPolygon(boxes)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="4096", help="pixels per side (4096, 10k) or WIDTHxHEIGHT")
    ap.add_argument("--fraction", type=float, default=0.1, help="share of the raster the area covers")
    ap.add_argument("--shape", choices=("band", "corners"), default="band")
    ap.add_argument("--aoi-only", action="store_true", help="skip the whole-raster run (for large rasters)")
    ap.add_argument("--model", default="default")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import geopandas as gpd

    from geoseg.aoi import inside
    from geoseg.config import SegmentConfig
    from geoseg.engine.segment import segment
    from geoseg.io.raster import inspect_raster

    w, h = parse_size(args.size)
    raster = str(build(w, h, args.data_dir))
    grid = inspect_raster(raster).grid
    band = (diagonal_band if args.shape == "band" else corners)(grid, args.fraction)
    rows = []
    with tempfile.TemporaryDirectory(prefix="geoseg-bench-") as tmp:
        aoi = Path(tmp) / "band.gpkg"
        gpd.GeoDataFrame(geometry=[band], crs=grid.crs).to_file(aoi)
        runs = [("whole raster", SegmentConfig(model=args.model))] * (not args.aoi_only)
        for name, cfg in (*runs, ("--aoi", SegmentConfig(model=args.model, aoi=str(aoi)))):
            t0 = time.perf_counter()
            res = segment(raster, Path(tmp) / f"{len(rows)}.gpkg", None, cfg)
            seconds = time.perf_counter() - t0
            gdf = res.footprints
            in_area = int(inside(gdf, gpd.GeoSeries([band], crs=grid.crs).to_crs(gdf.crs).iloc[0]).sum())
            read = getattr(res.stats, "pixels_read", None)  # None: a version before it was counted
            rows.append({"run": name, "tiles_run": res.stats.tiles_predicted, "tiles": len(res.plan.tiles),
                         "mp_read": float("nan") if read is None else read / 1e6,
                         "seconds": seconds, "buildings": len(gdf), "in_area": in_area})
    where = "along the diagonal" if args.shape == "band" else "in two opposite corners"
    print(f"{raster}: {w}x{h} px, an area of {args.fraction:.0%} {where}")
    print_table(rows, [("run", "run", "s"), ("tiles", "tiles", "d"), ("tiles_run", "tiles run", "d"), ("mp_read", "MP read", ".1f"),
                       ("seconds", "seconds", ".1f"), ("buildings", "buildings", "d"), ("in_area", "in the area", "d")])
    write_json(args.json, {"raster": raster, "size": [w, h], "fraction": args.fraction, "shape": args.shape, "rows": rows,
                           "environment": environment()})


if __name__ == "__main__":
    main()
