"""Peak memory and speed of ``vectorize_raster`` alone, on synthetic probability rasters.

Not a test (pytest does not collect ``bench_*``): run it by hand. Each size runs in
a fresh process; "cost" is the child's peak RSS (``ru_maxrss``) minus its RSS after
the imports and a tiny warm-up run (so lazy imports are not counted): what
vectorising the raster costs. GDAL's block cache is part of it (see ``--gdal-cachemax``).

The raster is uint8 probability with dark noise and small rectangles with ragged
outlines on a jittered grid (about one building per ``--cell`` x ``--cell`` pixels;
some touching pairs and L shapes), plus a few buildings larger than the default
halo. Rasters are cached in ``--dir`` by their parameters. ``--module`` runs another
copy of ``raster.py`` (e.g. ``git show HEAD:geoseg/footprints/raster.py > /tmp/old.py``)
for before/after comparisons.

    python benchmarks/bench_vectorize.py --sizes 20000x3000 20000x20000
    python benchmarks/bench_vectorize.py --sizes 20000x3000 --module /tmp/old.py
    python benchmarks/bench_vectorize.py --sizes 6000x3000 --regularize      # the squaring's cost
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

MARK = "@@bench_vectorize "


def build(width: int, height: int, out_dir: Path, cell: int = 42, seed: int = 0) -> Path:
    """The synthetic raster (written once, in row strips, tiled + deflate)."""
    import numpy as np
    import rasterio
    from affine import Affine
    from scipy import ndimage

    path = out_dir / f"synth_{width}x{height}_c{cell}_s{seed}_ragged.tif"
    if path.is_file():
        return path
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rects = []  # (r0, c0, r1, c1, value)
    for r in range(0, height - cell, cell):
        for c in range(0, width - cell, cell):
            h, w = int(rng.integers(6, cell - 8)), int(rng.integers(6, cell - 8))
            r0, c0 = r + int(rng.integers(0, cell - h - 2)), c + int(rng.integers(0, cell - w - 2))
            v = int(rng.integers(150, 256))
            rects.append((r0, c0, r0 + h, c0 + w, v))
            kind = rng.random()
            if kind < 0.15 and c0 + w + 6 < c + cell:  # a touching neighbour to the right
                rects.append((r0 + 1, c0 + w, r0 + h - 1, min(c + cell - 1, c0 + w + 6 + w // 2), v))
            elif kind < 0.3:  # an L
                rects.append((r0 + h - 3, c0, r0 + h, min(c + cell - 1, c0 + w + 5), v))
    for i in range(max(1, width * height // 20_000_000)):  # buildings larger than a 256 halo
        r0, c0 = int(rng.integers(0, max(1, height - 400))), int(rng.integers(0, max(1, width - 700)))
        rects.append((r0, c0, r0 + 300 + 37 * i % 90, c0 + 600, 230))
    rects_a = np.array(rects, dtype=np.int64)
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "uint8", "crs": "EPSG:32633",
               "transform": Affine(0.3, 0, 500000.0, 0, -0.3, 5_000_000.0), "tiled": True, "blockxsize": 512,
               "blockysize": 512, "compress": "deflate", "BIGTIFF": "IF_SAFER"}
    strip = 1024
    with rasterio.open(path, "w", **profile) as dst:
        for s0 in range(0, height, strip):
            s1 = min(height, s0 + strip)
            block = (np.random.default_rng([seed, s0]).random((s1 - s0, width)) * 100).astype(np.uint8)
            hit = (rects_a[:, 0] < s1) & (rects_a[:, 2] > s0)
            for r0, c0, r1, c1, v in rects_a[hit]:
                block[max(r0, s0) - s0 : min(r1, s1) - s0, c0:c1] = v
            building = block >= 128
            edge = building & ~ndimage.binary_erosion(building)  # ragged outlines, as real predictions have
            block[edge & (np.random.default_rng([seed, s0, 1]).random(block.shape) < 0.4)] = 90
            dst.write(block, 1, window=rasterio.windows.Window(0, s0, width, s1 - s0))
    return path


def child(raster: str, band_rows: int | None, trace: bool, module: str | None, regularize: bool = False) -> dict:
    import psutil

    from geoseg.config import VectorizeConfig
    from geoseg.footprints import raster as vr

    if module:
        import importlib.util

        spec = importlib.util.spec_from_file_location("bench_raster_module", module)
        vr = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = vr
        spec.loader.exec_module(vr)

    cfg = VectorizeConfig(regularize=regularize, **({} if band_rows is None else {"band_rows": band_rows}))
    warm = build(700, 700, Path(raster).parent)  # a tiny run first: lazy imports are not the big run's cost
    vr.vectorize_raster(warm, VectorizeConfig(band_rows=256, halo_rows=64), model_name="bench")
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak, stop = [base], threading.Event()

    def sample():
        while not stop.wait(0.02):
            peak[0] = max(peak[0], proc.memory_info().rss)

    threading.Thread(target=sample, daemon=True).start()
    if trace:
        import tracemalloc

        tracemalloc.start()
    t0 = time.perf_counter()
    gdf = vr.vectorize_raster(raster, cfg, model_name="bench")
    seconds = time.perf_counter() - t0
    traced = None
    if trace:
        import tracemalloc

        traced = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    stop.set()
    after = proc.memory_info().rss
    n = len(gdf)
    vertices = int(gdf.geometry.count_coordinates().sum()) if n else 0
    del gdf
    return {"seconds": seconds, "base_mb": base / 2**20, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "sampled_peak_mb": peak[0] / 2**20, "after_mb": after / 2**20, "traced_peak_mb": traced,
            "footprints": n, "vertices": vertices}


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["20000x3000"], help="WIDTHxHEIGHT")
    ap.add_argument("--cell", type=int, default=42, help="about one building per cell x cell pixels")
    ap.add_argument("--band-rows", type=int, default=None)
    ap.add_argument("--regularize", action="store_true", help="square the outlines (VectorizeConfig.regularize)")
    ap.add_argument("--module", help="path of another raster.py to run instead of geoseg.footprints.raster")
    ap.add_argument("--gdal-cachemax", type=int, default=None, help="GDAL_CACHEMAX (MB) for the runs; default GDAL's")
    ap.add_argument("--tracemalloc", action="store_true", help="also report the Python-heap peak (slower run)")
    ap.add_argument("--dir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "geoseg-bench-vectorize")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(MARK + json.dumps(child(args.child, args.band_rows, args.tracemalloc, args.module, args.regularize)), flush=True)
        return []
    rows = []
    for spec in args.sizes:
        w, h = (int(v) for v in spec.lower().split("x"))
        path = build(w, h, args.dir, args.cell)
        cmd = [sys.executable, __file__, "--child", str(path)] + ["--tracemalloc"] * args.tracemalloc
        cmd += [] if args.band_rows is None else ["--band-rows", str(args.band_rows)]
        cmd += ["--regularize"] * args.regularize
        cmd += [] if args.module is None else ["--module", str(Path(args.module).resolve())]
        env = dict(os.environ, **({"GDAL_CACHEMAX": str(args.gdal_cachemax)} if args.gdal_cachemax else {}))
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith(MARK)]
        if p.returncode or not lines:
            sys.exit(f"{spec} failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
        r = {"size": spec, "megapixels": w * h / 1e6, **json.loads(lines[-1][len(MARK):])}
        r["cost_mb"] = r["peak_mb"] - r["base_mb"]
        r["kb_per_footprint"] = r["cost_mb"] * 1024 / max(1, r["footprints"])
        r["mp_per_s"] = r["megapixels"] / r["seconds"]
        rows.append(r)
        traced = "" if r["traced_peak_mb"] is None else f", traced peak {r['traced_peak_mb']:.0f} MB"
        print(f"{spec}: {r['footprints']} footprints ({r['vertices']} vertices), {r['seconds']:.1f} s "
              f"({r['mp_per_s']:.2f} MP/s), base {r['base_mb']:.0f} MB, peak {r['peak_mb']:.0f} MB, "
              f"cost {r['cost_mb']:.0f} MB ({r['kb_per_footprint']:.1f} KB/footprint), after {r['after_mb']:.0f} MB{traced}",
              flush=True)
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    main()
