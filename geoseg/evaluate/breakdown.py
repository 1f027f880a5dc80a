"""Where the pixel IoU is lost: whole buildings missed or invented, or outlines that disagree.

Every false-positive pixel lies either in a predicted building that overlaps no reference building (a false alarm,
or a building the reference lacks) or in one that does (outline disagreement); every false-negative pixel lies
either in a reference building no prediction overlaps (a missed building) or in one that is found. The shares of
the two whole-building kinds, and the IoU once they are removed, tell a model that misses buildings from one that
draws them badly, and incomplete labels from either.
"""

from __future__ import annotations

import numpy as np


def unmatched(geoms, others) -> np.ndarray:
    """For each of ``geoms``: whether it overlaps none of ``others`` with positive area."""
    import shapely

    geoms, others = np.asarray(geoms, dtype=object), np.asarray(others, dtype=object)
    out = np.ones(len(geoms), bool)
    if len(geoms) == 0 or len(others) == 0:
        return out
    ia, ib = shapely.STRtree(others).query(geoms, predicate="intersects")
    overlaps = shapely.area(shapely.intersection(geoms[ia], others[ib])) > 0
    out[ia[overlaps]] = False
    return out


class BreakdownCounter:
    """Accumulates the breakdown over row blocks of a raster's grid (bounded memory)."""

    def __init__(self) -> None:
        self.fp = self.fn = self.fp_unmatched = self.fn_unmatched = 0
        self.tp_m = self.fp_m = self.fn_m = 0

    def add(self, pred, truth, valid, pred_unmatched, truth_unmatched) -> None:
        """Boolean ``(Y, X)`` blocks: predicted and reference pixels, valid area, and the pixels of unmatched
        predicted / reference buildings."""
        self.fp += int((pred & ~truth & valid).sum())
        self.fn += int((~pred & truth & valid).sum())
        self.fp_unmatched += int((pred & pred_unmatched & ~truth & valid).sum())
        self.fn_unmatched += int((truth & truth_unmatched & ~pred & valid).sum())
        p, t = pred & ~pred_unmatched, truth & ~truth_unmatched
        self.tp_m += int((p & t & valid).sum())
        self.fp_m += int((p & ~t & valid).sum())
        self.fn_m += int((~p & t & valid).sum())

    def result(self, n_pred_unmatched: int, n_truth_unmatched: int) -> dict:
        union_m = self.tp_m + self.fp_m + self.fn_m
        return {
            "fp_unmatched_share": self.fp_unmatched / self.fp if self.fp else 0.0,
            "fn_unmatched_share": self.fn_unmatched / self.fn if self.fn else 0.0,
            "iou_matched": self.tp_m / union_m if union_m else 1.0,
            "n_pred_unmatched": int(n_pred_unmatched),
            "n_truth_unmatched": int(n_truth_unmatched),
        }
