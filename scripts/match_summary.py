"""Summarise a `geoseg evaluate --matches` file: why the unmatched buildings are unmatched.

    python scripts/match_summary.py MATCHES.gpkg

For unmatched predictions (fp) and reference buildings (fn): how many touch nothing on the other side (IoU 0), how
many overlap something at IoU < 0.25 or 0.25-0.5; how many unmatched predictions hold two or more reference buildings
(over half of each inside: merged neighbours), how many missed buildings lie in such a merged prediction, and how
many missed buildings hold two or more predictions (split).
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def summary(path: str) -> dict:
    import geopandas as gpd
    import shapely

    m = gpd.read_file(path)
    pred = m[m.source == "prediction"].reset_index(drop=True)
    truth = m[m.source == "truth"].reset_index(drop=True)
    out: dict = {"tp": int((pred.status == "tp").sum()), "tp_median_iou": float(pred.iou[pred.status == "tp"].median())}
    for side, status in ((pred, "fp"), (truth, "fn")):
        x = side[side.status == status]
        out[status] = {"n": len(x), "iou_0": int((x.iou == 0).sum()),
                       "iou_under_0.25": int(((x.iou > 0) & (x.iou < 0.25)).sum()),
                       "iou_0.25_to_0.5": int(((x.iou >= 0.25) & (x.iou < 0.5)).sum())}
    pg, tg = pred.geometry.values, truth.geometry.values
    pi, tj = shapely.STRtree(tg).query(pg, predicate="intersects")
    inter = shapely.area(shapely.intersection(pg[pi], tg[tj]))
    truth_inside = inter / shapely.area(tg[tj]) > 0.5  # over half of the reference building lies in the prediction
    pred_inside = inter / shapely.area(pg[pi]) > 0.5
    holds = np.bincount(pi[truth_inside], minlength=len(pred))
    merged = (holds >= 2) & (pred.status == "fp").to_numpy()
    missed = (truth.status == "fn").to_numpy()
    in_merged = np.zeros(len(truth), bool)
    in_merged[tj[truth_inside & merged[pi]]] = True
    split = np.bincount(tj[pred_inside], minlength=len(truth)) >= 2
    out.update(fp_merging_2_or_more=int(merged.sum()), fn_inside_a_merged_prediction=int((in_merged & missed).sum()),
               fn_split_into_2_or_more=int((split & missed).sum()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("matches")
    print(json.dumps(summary(ap.parse_args().matches), indent=2))


if __name__ == "__main__":
    main()
