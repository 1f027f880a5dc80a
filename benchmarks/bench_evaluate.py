"""Time of ``geoseg evaluate``'s pixel scores on a large synthetic raster with many buildings.

Not a test (pytest does not collect ``bench_*``): run it by hand. The raster is a single-band uint8 GeoTIFF
(deflate, tiled, cached in ``--dir``) of ``--size`` pixels at 0.3 m; truth and prediction are ``--buildings``
rectangles on a jittered grid, the prediction shifted by one pixel. Prints one JSON line with the seconds of
``pixel_scores`` and the scores.

    python benchmarks/bench_evaluate.py --size 20k --buildings 50000
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from _common import DEFAULT_DATA_DIR, parse_size


def make_raster(path, width: int, height: int) -> None:
    import rasterio
    from affine import Affine

    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "count": 1, "height": height, "width": width, "dtype": "uint8", "crs": "EPSG:32633",
               "transform": Affine(0.3, 0, 500000, 0, -0.3, 5000000), "tiled": True, "compress": "deflate"}
    with rasterio.open(path, "w", **profile) as dst:
        for r0 in range(0, height, 4096):
            h = min(4096, height - r0)
            dst.write(np.full((1, h, width), 100, np.uint8), window=rasterio.windows.Window(0, r0, width, h))


def buildings(width: int, height: int, n: int, seed: int = 0, shift_px: float = 0.0):
    from shapely.geometry import box

    rng = np.random.default_rng(seed)
    cols = int(np.sqrt(n * width / height)) or 1
    rows = -(-n // cols)
    cw, ch = width / cols, height / rows
    out = []
    for k in range(n):
        r, c = divmod(k, cols)
        x = 500000 + 0.3 * (c * cw + rng.uniform(0.1, 0.5) * cw + shift_px)
        y = 5000000 - 0.3 * (r * ch + rng.uniform(0.1, 0.5) * ch)
        w, h = 0.3 * rng.uniform(0.2, 0.4) * cw, 0.3 * rng.uniform(0.2, 0.4) * ch
        out.append(box(x, y - h, x + w, y))
    return out


def main() -> None:
    from geoseg.evaluate.pixels import pixel_scores

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="20k")
    ap.add_argument("--buildings", type=int, default=50000)
    ap.add_argument("--dir", default=str(DEFAULT_DATA_DIR))
    args = ap.parse_args()
    width, height = parse_size(args.size)
    from pathlib import Path

    raster = Path(args.dir) / f"eval_{width}x{height}.tif"
    make_raster(raster, width, height)
    truth = buildings(width, height, args.buildings)
    pred = buildings(width, height, args.buildings, shift_px=1.0)
    t0 = time.perf_counter()
    s = pixel_scores(str(raster), truth, pred)
    print(json.dumps({"size": [width, height], "buildings": args.buildings, "seconds": round(time.perf_counter() - t0, 2),
                      "iou": round(s["iou"], 4)}))


if __name__ == "__main__":
    main()
