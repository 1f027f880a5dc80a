"""Pixel-level scores on a raster's grid, restricted to its valid area, in bounded memory."""

from __future__ import annotations

import numpy as np

from geoseg.window import PixelWindow


def _counts(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> tuple[int, int, int]:
    return int((pred & truth & valid).sum()), int((pred & ~truth & valid).sum()), int((~pred & truth & valid).sum())


class _Burner:
    """Geometries rasterised window by window: an STRtree picks those that touch each window, so a large raster
    with many buildings is not rasterised against all of them in every band of rows."""

    def __init__(self, geoms):
        import shapely

        self.geoms = np.asarray(geoms, dtype=object)
        self.tree = shapely.STRtree(self.geoms) if len(self.geoms) else None

    def burn(self, shape_yx: tuple[int, int], transform) -> np.ndarray:
        import shapely
        from rasterio.features import rasterize

        if self.tree is None:
            return np.zeros(shape_yx, bool)
        h, w = shape_yx
        xs, ys = zip(*(transform @ xy for xy in ((0, 0), (w, h))))
        near = self.geoms[self.tree.query(shapely.box(min(xs), min(ys), max(xs), max(ys)))]
        if not len(near):
            return np.zeros(shape_yx, bool)
        return rasterize(((g, 1) for g in near), out_shape=shape_yx, transform=transform, dtype="uint8") > 0


def pixel_scores(raster_path: str, truth_geoms, pred_geoms=None, prob_threshold: float | None = None,
                 rows_per_step: int = 1024, breakdown: bool = False, aoi_geoms=None,
                 ignore_nodata: bool = False) -> dict[str, float]:
    """Compare predictions with ``truth_geoms`` (shapely, in the raster's CRS) on ``raster_path``'s grid.

    Predictions are either ``pred_geoms`` (rasterised) or, when ``prob_threshold`` is given,
    band 1 of ``raster_path`` itself read as a probability (uint8 0-255 or float 0-1).
    Only pixels valid in the raster's mask count (and, with ``aoi_geoms``, inside those polygons); with
    ``ignore_nodata``, a declared nodata value does not make pixels invalid (see :func:`valid_area`).
    With ``breakdown``, also says how much of the error is whole
    buildings missed or invented (``geoseg.evaluate.breakdown``; needs ``pred_geoms``, also with a probability).
    """
    import rasterio

    from geoseg.io.prob_raster import check_probability_values

    tp = fp = fn = 0
    if breakdown:
        from geoseg.evaluate.breakdown import BreakdownCounter, unmatched

        counter = BreakdownCounter()
        pred_un = np.asarray(pred_geoms, dtype=object)[unmatched(pred_geoms, truth_geoms)]
        truth_un = np.asarray(truth_geoms, dtype=object)[unmatched(truth_geoms, pred_geoms)]

    truth_b = _Burner(truth_geoms)
    pred_b = _Burner(pred_geoms if pred_geoms is not None else [])
    aoi_b = None if aoi_geoms is None else _Burner(aoi_geoms)
    if breakdown:
        pred_un_b, truth_un_b = _Burner(pred_un), _Burner(truth_un)

    with rasterio.open(raster_path) as ds:
        for r0 in range(0, ds.height, rows_per_step):
            win = PixelWindow(r0, 0, min(rows_per_step, ds.height - r0), ds.width)
            rw = win.to_rasterio()
            t = ds.window_transform(rw)
            valid = valid_area(ds, rw, ignore_nodata)
            if aoi_b is not None:
                valid &= aoi_b.burn(win.shape_yx, t)
            truth = truth_b.burn(win.shape_yx, t)
            if prob_threshold is not None:
                band = ds.read(1, window=rw)
                p = band.astype(np.float32) / (255.0 if band.dtype == np.uint8 else 1.0)
                check_probability_values(p, valid & np.isfinite(p), ds.dtypes[0], raster_path)
                pred = p >= prob_threshold
            else:
                pred = pred_b.burn(win.shape_yx, t)
            a, b, c = _counts(pred, truth, valid)
            if breakdown:
                counter.add(pred, truth, valid, pred_un_b.burn(win.shape_yx, t), truth_un_b.burn(win.shape_yx, t))
            tp, fp, fn = tp + a, fp + b, fn + c
    out = {**_ratios(tp, fp, fn), "px_tp": tp, "px_fp": fp, "px_fn": fn}
    if breakdown:
        out.update(counter.result(len(pred_un), len(truth_un)))
    return out


def valid_at(raster_path: str, geoms, ignore_nodata: bool = False) -> np.ndarray:
    """Whether each geometry's representative point falls on a valid pixel of the raster (``ignore_nodata``: as in
    :func:`valid_area`)."""
    import rasterio
    import shapely

    pts = shapely.point_on_surface(np.asarray(geoms, dtype=object)) if len(geoms) else np.array([])
    out = np.zeros(len(pts), bool)
    with rasterio.open(raster_path) as ds:
        inv = ~ds.transform
        for i, p in enumerate(pts):
            col, row = inv @ (p.x, p.y)
            r, c = int(np.floor(row)), int(np.floor(col))
            if 0 <= r < ds.height and 0 <= c < ds.width:
                out[i] = valid_area(ds, PixelWindow(r, c, 1, 1).to_rasterio(), ignore_nodata)[0, 0]
    return out


def valid_area(ds, window, ignore_nodata: bool = False) -> np.ndarray:
    """The raster's valid pixels in ``window``: its mask, and for float data also finite in every band (NaN is how
    many tools write "no data" without declaring it; the engine's readers take it so too).

    ``ignore_nodata``: for a prediction whose declared nodata value is also a score ("no building", e.g. a 0/255
    mask with nodata 0): validity comes only from its internal mask or alpha band, not from that value."""
    valid = _mask_without_nodata(ds, window) if ignore_nodata else ds.dataset_mask(window=window) > 0
    for b, dtype in enumerate(ds.dtypes, start=1):  # band by band: one band's window in memory at a time
        if np.dtype(dtype).kind == "f":
            valid &= np.isfinite(ds.read(b, window=window))
    return valid


def _mask_without_nodata(ds, window) -> np.ndarray:
    """The raster's mask as if it declared no nodata value: its internal mask, else its alpha band, else all valid."""
    from rasterio.enums import ColorInterp, MaskFlags

    if MaskFlags.nodata not in ds.mask_flag_enums[0]:  # an internal mask or alpha band: nodata plays no part
        return ds.dataset_mask(window=window) > 0
    alpha = [i for i, c in enumerate(ds.colorinterp, start=1) if c == ColorInterp.alpha]
    if alpha:
        return ds.read(alpha[0], window=window) > 0
    return np.ones((int(window.height), int(window.width)), bool)


def _ratios(tp: float, fp: float, fn: float) -> dict[str, float]:
    """IoU, precision, recall and F1; nothing on either side is a perfect score (as the object scores have it)."""
    if not tp + fp + fn:
        return {"iou": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    iou = tp / (tp + fp + fn)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"iou": iou, "precision": precision, "recall": recall, "f1": f1}


def area_scores(truth_geoms, pred_geoms, area=None) -> dict[str, float]:
    """The pixel scores' limit for infinitely small pixels, from polygon areas (shapely, in one metric CRS): what
    ``geoseg evaluate`` reports for footprints without a raster. Without a raster there is no valid area, so the
    whole extent counts (inside ``area``, a polygon, when given); overlapping polygons count once."""
    import shapely

    truth = shapely.union_all(np.asarray(truth_geoms, dtype=object))
    pred = shapely.union_all(np.asarray(pred_geoms, dtype=object))
    if area is not None:
        truth, pred = truth.intersection(area), pred.intersection(area)
    tp = truth.intersection(pred).area
    fp, fn = pred.area - tp, truth.area - tp
    return {**_ratios(tp, fp, fn), "area_tp_m2": round(tp, 3), "area_fp_m2": round(fp, 3), "area_fn_m2": round(fn, 3)}
