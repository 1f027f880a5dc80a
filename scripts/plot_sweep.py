"""Plot a saved GSD sweep (`geoseg evaluate ... --gsd-sweep ... --json > sweep.json`) for any metric.

    python scripts/plot_sweep.py sweep.json obj_f1.png --metric obj_f1
"""

from __future__ import annotations

import argparse
import json

from geoseg.evaluate.sweep import plot_sweep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep_json")
    ap.add_argument("png")
    ap.add_argument("--metric", default="iou", help="iou, precision, recall, f1, obj_f1, ...")
    ap.add_argument("--xlabel", default=None, help="x-axis label (default: ground sample distance (m))")
    args = ap.parse_args()
    with open(args.sweep_json) as f:
        data = json.load(f)
    by_model = data if isinstance(data, dict) else {"model": data}
    print(plot_sweep(by_model, args.png, metric=args.metric, xlabel=args.xlabel))


if __name__ == "__main__":
    main()
