"""Score a model on held-out imagery through the full engine (segment -> evaluate).

    python scripts/eval_model.py --model default --json docs/default_model_eval.json \
        ../shared/data/buildings/oam_mosaics_r3_banepa_np/r3_banepa_np_z19.tif:../shared/data/buildings/oam_mosaics_r3_banepa_np/r3_banepa_np_buildings.geojson ...

Each argument is RASTER:LABELS. Pixel scores are on the input grid restricted to its valid area;
object scores are one-to-one matches at IoU >= 0.5.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pairs", nargs="+", help="RASTER:LABELS")
    ap.add_argument("--model", default="default")
    ap.add_argument("--gsd", default=None, help="metres, or 'native' (default: the model's GSD)")
    ap.add_argument("--tile-size", type=int, default=None, help="default: the model card's")
    ap.add_argument("--overlap", type=int, default=None, help="default: the model card's")
    ap.add_argument("--tta", default="none", choices=["none", "flip", "d4"], help="test-time augmentation")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from geoseg import __version__
    from geoseg.config import SegmentConfig
    from geoseg.engine.segment import segment
    from geoseg.evaluate.run import evaluate
    from geoseg.models.registry import get_card

    card = get_card(args.model)  # segment vectorizes with the card's threshold and border cut
    rows = []
    for pair in args.pairs:
        raster, labels = pair.split(":")
        with tempfile.TemporaryDirectory() as tmp:
            out, prob = Path(tmp) / "b.gpkg", Path(tmp) / "p.tif"
            t0 = time.perf_counter()
            gsd = None if args.gsd is None else (args.gsd if args.gsd == "native" else float(args.gsd))
            res = segment(raster, out, prob, SegmentConfig(model=args.model, gsd_m=gsd, tile_size=args.tile_size,
                                                                overlap=args.overlap, tta=args.tta))
            seconds = time.perf_counter() - t0
            scores = evaluate(str(out), labels, raster=raster)
        scores.update(threshold=card.threshold, border_cut=card.border_cut)
        row = {"raster": raster, "native_gsd_m": round(res.plan.native_gsd_m, 4), "work_gsd_m": res.plan.work_gsd_m,
               "tile_size": res.plan.tiles.tile_size, "overlap": res.plan.tiles.overlap, "tta": args.tta,
               "seconds": round(seconds, 1), **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in scores.items()
                                                 if k not in ("pred", "truth", "raster")}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"geoseg": __version__, "model": args.model, "gsd": args.gsd, "tta": args.tta, "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
