"""Score footprints vectorized from saved probability rasters under different ways of splitting touching buildings.

    python scripts/split_sweep.py --json out.json PROB.tif:LABELS ... --mode distance border-cut:0.5 border-cut:0.3
    python scripts/split_sweep.py PROB.tif:LABELS ... --min-part 0 20 --min-area 4 10

Each PROB is a `geoseg segment --prob` raster (bands building, border, gap). `distance` ignores the border and gap
bands (the split for models without them); `border-cut:T` cuts pixels whose border/gap probability is >= T out of
each shape before the distance split (`geoseg segment --border-cut`; default: the model card's `border_cut`, else 0.5). For each
mode it vectorizes PROB as `geoseg segment` does (threshold 0.5 unless --threshold) and reports pixel IoU and object
precision/recall/F1 at IoU >= 0.5 against LABELS, for every combination of mode, --min-part (m2: smaller split-off
pieces join a neighbour) and --min-area (m2: smaller footprints are dropped). Results: docs/splitting.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from pathlib import Path

from geoseg.config import VectorizeConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pairs", nargs="+", help="PROB:LABELS")
    ap.add_argument("--mode", nargs="+", default=["border-cut:0.5"], help="distance | border-cut:T")
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--min-part", type=float, nargs="+", default=[VectorizeConfig.min_part_m2], help="m2")
    ap.add_argument("--min-area", type=float, nargs="+", default=[VectorizeConfig.min_area_m2], help="m2")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import rasterio

    from geoseg.evaluate.run import evaluate
    from geoseg.footprints.raster import vectorize_raster
    from geoseg.io.prob_raster import described_separators
    from geoseg.io.vector import write_vectors

    rows = []
    for pair in args.pairs:
        prob, labels = pair.split(":")
        with rasterio.open(prob) as ds:
            seps = described_separators(ds)
        for mode, min_part, min_area in itertools.product(args.mode, args.min_part, args.min_area):
            cut = None if mode == "distance" else float(mode.split(":")[1])
            cfg = VectorizeConfig(threshold=args.threshold, boundary_band=None if mode == "distance" else seps, border_cut=cut,
                                  min_part_m2=min_part, min_area_m2=min_area)
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "b.gpkg"
                write_vectors(vectorize_raster(prob, cfg), out, {})
                r = evaluate(str(out), labels, raster=prob, threshold=args.threshold)
            keys = ("iou", "obj_precision", "obj_recall", "obj_f1", "obj_tp", "n_pred", "n_truth")
            row = {"set": Path(prob).stem, "mode": mode, "min_part_m2": min_part, "min_area_m2": min_area,
                   "threshold": args.threshold, **{k: r[k] for k in keys}}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
