"""Cheap levers on saved probabilities and on the input, for diagnosis (docs/error_breakdown.md, "Cheap levers").

    python scripts/prob_levers.py average OUT.tif P1.tif P2.tif [...]      # mean of probability rasters on one grid
    python scripts/prob_levers.py morph PROB.tif TRUTH.geojson [--threshold 0.6] [--px 1 2 3 4 6]
    python scripts/prob_levers.py recolor SRC DST (--gain G --offset O | --match-mean R G B --match-std R G B)

- ``average``: the band-wise mean of probability rasters written by ``geoseg segment --prob`` on the same grid (run
  each model with the same ``--gsd``); score it with ``geoseg evaluate OUT.tif --truth ... --threshold T``.
- ``morph``: the pixel IoU of PROB's building band at ``--threshold`` after eroding or dilating the mask by k pixels:
  whether the model draws buildings systematically fatter or thinner than the reference.
- ``recolor``: a copy of SRC (bands 1-3 and its mask) with each band mapped linearly, either by a gain and offset or
  so that its mean and standard deviation (measured on valid pixels) become the given ones.
"""

from __future__ import annotations

import argparse

import numpy as np


def average(out: str, paths: list[str]) -> None:
    import rasterio

    srcs = [rasterio.open(p) for p in paths]
    try:
        first = srcs[0]
        if any(s.transform != first.transform or s.shape != first.shape or s.count != first.count for s in srcs):
            raise SystemExit("the probability rasters are not on one grid: run every model with the same --gsd")
        with rasterio.open(out, "w", **first.profile) as dst:
            for _, win in first.block_windows(1):
                mean = sum(s.read(window=win).astype(np.float32) for s in srcs) / len(srcs)
                dst.write(np.clip(np.rint(mean), 0, 255).astype(np.uint8), window=win)
            dst.write_mask(first.dataset_mask())
    finally:
        for s in srcs:
            s.close()


def morph(prob: str, truth: str, threshold: float, steps: list[int]) -> dict:
    import geopandas as gpd
    import rasterio
    from rasterio.features import rasterize
    from scipy import ndimage as ndi

    with rasterio.open(prob) as s:
        pred = s.read(1) >= threshold * 255
        valid = s.dataset_mask() > 0
        geoms = gpd.read_file(truth).to_crs(s.crs).geometry
        ref = rasterize(((g, 1) for g in geoms), out_shape=s.shape, transform=s.transform, dtype="uint8") > 0

    def iou(mask):
        return float((mask & ref & valid).sum() / max(1, ((mask | ref) & valid).sum()))

    rows = {"as_is": iou(pred)}
    for k in steps:
        rows[f"erode_{k}px"] = iou(ndi.binary_erosion(pred, iterations=k))
        rows[f"dilate_{k}px"] = iou(ndi.binary_dilation(pred, iterations=k))
    return {k: round(v, 4) for k, v in rows.items()}


def recolor(src: str, dst: str, gain: float | None, offset: float | None, mean, std) -> dict:
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(src) as s:
        if mean is not None:
            f = max(1, max(s.shape) // 1024)
            sample = s.read([1, 2, 3], out_shape=(3, s.height // f, s.width // f)).astype(np.float64)
            ok = s.dataset_mask(out_shape=(s.height // f, s.width // f)) > 0
            mu, sd = sample[:, ok].mean(1), sample[:, ok].std(1)
            g = np.asarray(std, float) / sd
            o = np.asarray(mean, float) - mu * g
        else:
            g, o = np.full(3, gain), np.full(3, offset)
        prof = dict(s.profile, driver="GTiff", count=3, dtype="uint8", tiled=True, blockxsize=512, blockysize=512,
                    compress="deflate")
        prof.pop("nodata", None)
        with rasterio.open(dst, "w", **prof) as d:
            for row in range(0, s.height, 1024):
                win = Window(0, row, s.width, min(1024, s.height - row))
                x = s.read([1, 2, 3], window=win).astype(np.float32) * g[:, None, None] + o[:, None, None]
                d.write(np.clip(np.rint(x), 0, 255).astype(np.uint8), window=win)
                d.write_mask(s.dataset_mask(window=win), window=win)
    return {"gain": np.round(g, 4).tolist(), "offset": np.round(o, 2).tolist()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("average")
    a.add_argument("out")
    a.add_argument("probs", nargs="+")
    m = sub.add_parser("morph")
    m.add_argument("prob")
    m.add_argument("truth")
    m.add_argument("--threshold", type=float, default=0.6)
    m.add_argument("--px", type=int, nargs="+", default=[1, 2, 3, 4, 6])
    r = sub.add_parser("recolor")
    r.add_argument("src")
    r.add_argument("dst")
    r.add_argument("--gain", type=float, default=1.0)
    r.add_argument("--offset", type=float, default=0.0)
    r.add_argument("--match-mean", type=float, nargs=3)
    r.add_argument("--match-std", type=float, nargs=3)
    args = ap.parse_args()
    if args.cmd == "average":
        average(args.out, args.probs)
    elif args.cmd == "morph":
        print(morph(args.prob, args.truth, args.threshold, args.px))
    else:
        if (args.match_mean is None) != (args.match_std is None):
            raise SystemExit("give both --match-mean and --match-std")
        print(recolor(args.src, args.dst, args.gain, args.offset, args.match_mean, args.match_std))


if __name__ == "__main__":
    main()
