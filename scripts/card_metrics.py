"""Copy held-out scores from evaluation JSON into a model card's ``metrics`` (so card figures are traceable).

    python scripts/card_metrics.py models/scinet-r18-buildings.json --model scinet-r18-buildings \
        --sweep banepa_mosaic_z21=docs/eval/r3_sweep_z21.json --sweep banepa_chips_48=docs/eval/r3_sweep_chips.json \
        --native docs/eval/r3_native_scinet-r18-buildings.json --val-iou banepa_mosaic_z21@0.3

``--sweep NAME=FILE``: output of ``geoseg evaluate --gsd-sweep --json`` (a list of rows, or one list per
model); ``FILE#KEY`` picks the list under KEY instead of ``--model``. ``--imagery-sweep NAME=FILE[#KEY]``: the
same from ``--sweep-mode imagery`` (metrics.imagery_sweep, rows keep the GSD the model ran at). ``--native FILE``: output of ``scripts/eval_model.py --gsd native --json``. The card's sha256 and
weights are not touched.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

KEEP = ("iou", "precision", "recall", "f1", "obj_f1", "n_pred", "n_truth", "tile_size", "overlap")


def _rows(path: str, model: str) -> list[dict]:
    path, _, key = path.partition("#")
    data = json.loads(Path(path).read_text())
    return data if isinstance(data, list) else data[key or model]


def _short(row: dict, keys=KEEP) -> dict:
    return {k: (round(row[k], 4) if isinstance(row[k], float) else row[k]) for k in keys if k in row}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("card")
    ap.add_argument("--model", required=True, help="the model's name in the sweep files")
    ap.add_argument("--sweep", action="append", default=[], help="NAME=FILE")
    ap.add_argument("--imagery-sweep", action="append", default=[], help="NAME=FILE[#KEY]")
    ap.add_argument("--native", default=None)
    ap.add_argument("--val-iou", default=None, help="SET@GSD whose IoU becomes metrics.val_iou")
    ap.add_argument("--note", action="append", default=[], help="KEY=TEXT added to metrics")
    args = ap.parse_args()

    card_path = Path(args.card)
    card = json.loads(card_path.read_text())
    metrics = card.setdefault("metrics", {})
    sweeps = {}
    for spec in args.sweep:
        name, path = spec.split("=", 1)
        sweeps[name] = {f"{r['gsd_m']:g}": _short(r) for r in _rows(path, args.model)}
    if sweeps:
        metrics["gsd_sweep"] = sweeps
    imagery = {}
    for spec in args.imagery_sweep:
        name, path = spec.split("=", 1)
        imagery[name] = {f"{r['gsd_m']:g}": _short(r, ("run_gsd_m", *KEEP)) for r in _rows(path, args.model)}
    if imagery:
        metrics["imagery_sweep"] = imagery
    if args.native:
        rows = json.loads(Path(args.native).read_text())["results"]
        metrics["native_gsd"] = {Path(r["raster"]).stem: _short(r, ("native_gsd_m", "work_gsd_m", *KEEP)) for r in rows}
    if args.val_iou:
        set_name, gsd = args.val_iou.split("@")
        metrics["val_iou"] = sweeps[set_name][gsd]["iou"]
    for spec in args.note:
        key, text = spec.split("=", 1)
        metrics[key] = text
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps({k: v for k, v in metrics.items() if k not in ("gsd_sweep", "imagery_sweep", "native_gsd")}, indent=2))


if __name__ == "__main__":
    main()
