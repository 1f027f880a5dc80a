"""Where the pixel IoU is lost: missing or extra whole buildings, outline disagreement, or label misregistration.

    python scripts/error_budget.py RASTER PRED.gpkg TRUTH.geojson [--max-shift-m 2] [--per-chip 512] [--json out.json]

Both footprint sets are rasterised on RASTER's grid (its valid area only). Reports:
- ``iou_best_shift`` and ``best_shift_px``: the IoU after shifting the reference by the whole-pixel offset (within
  ``--max-shift-m``) that maximises it: how much a constant label/imagery misregistration costs;
- the scores of ``geoseg evaluate --breakdown`` (``geoseg/evaluate/breakdown.py``): ``fp_unmatched_share``, the
  share of false-positive pixels in predicted buildings that overlap no reference building (buildings OSM lacks, or
  false alarms), ``fn_unmatched_share``, the share of false-negative pixels in reference buildings no prediction
  overlaps (missed buildings), and ``iou_matched``, the IoU once both are removed (outline disagreement alone).
- with ``--per-chip PX``, ``iou_per_chip_shift`` and ``iou_per_chip_shift_cv``: each PX x PX block (e.g. the chips of
  a chip VRT) gets its own best shift, searched pixel by pixel within ``--max-shift-m``. The first is that best
  IoU; the second, honest one picks each block half's shift on the other half (left/right) and scores it there.
  It checks whether labels offset differently from chip to chip cost accuracy.
The shift search holds both masks in memory: meant for small rasters (held-out mosaics, chip VRTs).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _masks(raster: str, pred: str, truth: str):
    import geopandas as gpd
    import rasterio
    from rasterio.features import rasterize

    from geoseg.georef import ground_gsd_m
    from geoseg.grid import RasterGrid
    from geoseg.io.vector import polygonal

    with rasterio.open(raster) as ds:
        valid = ds.dataset_mask() > 0
        shape, transform, crs = (ds.height, ds.width), ds.transform, ds.crs
    gsd = ground_gsd_m(RasterGrid(shape, transform, crs))  # true metres per pixel, also for EPSG:4326 / 3857

    def burn(path):
        g = gpd.read_file(path).to_crs(crs)
        geoms = [x for x in polygonal(g.geometry.values) if x is not None and not x.is_empty]
        if not geoms:
            return np.zeros(shape, bool)
        return rasterize(((x, 1) for x in geoms), out_shape=shape, transform=transform, dtype="uint8") > 0

    return burn(pred), burn(truth), valid, gsd


def _iou(p, t, v):
    inter, union = (p & t & v).sum(), ((p | t) & v).sum()
    return float(inter / union) if union else 1.0


def _shifted(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(a)
    ys, yd = (slice(0, a.shape[0] - dy), slice(dy, None)) if dy >= 0 else (slice(-dy, None), slice(0, a.shape[0] + dy))
    xs, xd = (slice(0, a.shape[1] - dx), slice(dx, None)) if dx >= 0 else (slice(-dx, None), slice(0, a.shape[1] + dx))
    out[yd, xd] = a[ys, xs]
    return out


def _counts(p, t, v) -> tuple[int, int]:
    return int((p & t & v).sum()), int(((p | t) & v).sum())


def per_chip_shift(p, t, v, chip: int, s: int) -> dict:
    """Best per-block shift of the reference (within ``s`` px): in-sample and cross-validated between halves."""
    offsets = [(dy, dx) for dy in range(-s, s + 1) for dx in range(-s, s + 1)]
    tot = {"none": [0, 0], "best": [0, 0], "cv": [0, 0]}
    for r0 in range(0, p.shape[0], chip):
        for c0 in range(0, p.shape[1], chip):
            pc, tc, vc = (a[r0:r0 + chip, c0:c0 + chip] for a in (p, t, v))
            if not tc[vc].any() or min(pc.shape) <= 2 * s:
                continue
            inner = np.zeros_like(vc)
            inner[s:-s, s:-s] = True  # pixels a shift cannot empty
            halves = [inner.copy(), inner.copy()]
            halves[0][:, pc.shape[1] // 2:] = False
            halves[1][:, :pc.shape[1] // 2] = False
            sc = {o: [_counts(pc, _shifted(tc, *o), vc & h) for h in halves] for o in offsets}

            def iou(o, hs, sc=sc):
                i, u = sum(sc[o][h][0] for h in hs), sum(sc[o][h][1] for h in hs)
                return i / u if u else 0.0

            best = max(offsets, key=lambda o: iou(o, (0, 1)))
            for h in (0, 1):
                cv = max(offsets, key=lambda o: iou(o, (1 - h,)))
                for key, o in (("none", (0, 0)), ("best", best), ("cv", cv)):
                    tot[key][0] += sc[o][h][0]
                    tot[key][1] += sc[o][h][1]
    return {k: round(i / u, 4) if u else None for k, (i, u) in tot.items()}


def budget(raster: str, pred: str, truth: str, max_shift_m: float = 2.0, per_chip: int | None = None) -> dict:
    from geoseg.evaluate.run import evaluate

    p, t, v, gsd = _masks(raster, pred, truth)
    row = {"raster": raster, "pixel_m": round(gsd, 4)}
    s = max(1, round(max_shift_m / gsd))
    step = max(1, s // 8)
    offsets = [k * step for k in range(-(s // step), s // step + 1)]  # symmetric, includes 0
    scores = {(dy, dx): _iou(p, _shifted(t, dy, dx), v) for dy in offsets for dx in offsets}
    (dy, dx), best = max(scores.items(), key=lambda kv: kv[1])
    row.update(iou_unshifted=round(scores[(0, 0)], 4), iou_best_shift=round(best, 4), best_shift_px=[dy, dx],
               best_shift_m=[round(dy * gsd, 2), round(dx * gsd, 2)])
    if per_chip:
        chips = per_chip_shift(p, t, v, per_chip, s)
        row.update(iou_per_chip_inner=chips["none"], iou_per_chip_shift=chips["best"], iou_per_chip_shift_cv=chips["cv"])
    full = evaluate(pred, truth, raster=raster, breakdown=True)
    keys = ("iou", "precision", "recall", "obj_f1", "fp_unmatched_share", "fn_unmatched_share", "iou_matched",
            "n_pred_unmatched", "n_truth_unmatched", "n_pred", "n_truth")
    row.update({k: round(full[k], 4) if isinstance(full[k], float) else full[k] for k in keys})
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("raster")
    ap.add_argument("pred")
    ap.add_argument("truth")
    ap.add_argument("--max-shift-m", type=float, default=2.0)
    ap.add_argument("--per-chip", type=int, default=None, metavar="PX", help="also search a shift per PX x PX block")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    row = budget(args.raster, args.pred, args.truth, args.max_shift_m, args.per_chip)
    print(json.dumps(row))
    if args.json:
        Path(args.json).write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
