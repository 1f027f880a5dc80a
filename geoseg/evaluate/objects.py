"""Object-level scores: one-to-one matching at IoU >= 0.5 (the SpaceNet metric)."""

from __future__ import annotations

import numpy as np

IOU_TOLERANCE = 1e-9  # an IoU this close under the threshold still matches: a CRS round trip must not flip it


def match_objects(pred, truth, iou_threshold: float = 0.5) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching by descending IoU; returns ``(pred_i, truth_j, iou)`` pairs.

    ``pred``/``truth`` are sequences of shapely geometries in the same (ideally metric) CRS. An IoU within
    :data:`IOU_TOLERANCE` of ``iou_threshold`` counts as reaching it (a box split in two halves, IoU 0.5 each, matches
    at 0.5 whether or not the truth went through EPSG:4326 and back).
    """
    import shapely

    pred = np.asarray(pred, dtype=object)
    truth = np.asarray(truth, dtype=object)
    if len(pred) == 0 or len(truth) == 0:
        return []
    tree = shapely.STRtree(truth)
    pi, tj = tree.query(pred, predicate="intersects")
    inter = shapely.area(shapely.intersection(pred[pi], truth[tj]))
    union = shapely.area(pred[pi]) + shapely.area(truth[tj]) - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
    order = np.argsort(-iou, kind="stable")
    used_p, used_t, pairs = set(), set(), []
    for k in order:
        if iou[k] < iou_threshold - IOU_TOLERANCE:
            break
        p, t = int(pi[k]), int(tj[k])
        if p in used_p or t in used_t:
            continue
        used_p.add(p)
        used_t.add(t)
        pairs.append((p, t, float(iou[k])))
    return pairs


def object_scores(pred, truth, iou_threshold: float = 0.5, pairs=None) -> dict[str, float]:
    """Object TP/FP/FN, precision, recall, F1 and the mean IoU of matches; ``pairs``: an existing matching."""
    pairs = match_objects(pred, truth, iou_threshold) if pairs is None else pairs
    tp = len(pairs)
    fp, fn = len(pred) - tp, len(truth) - tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    if not len(pred) and not len(truth):
        precision = recall = f1 = 1.0
    return {"obj_tp": tp, "obj_fp": fp, "obj_fn": fn, "obj_precision": precision, "obj_recall": recall,
            "obj_f1": f1, "obj_mean_iou_tp": float(np.mean([p[2] for p in pairs])) if pairs else 0.0}
