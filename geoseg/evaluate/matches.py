"""Per-building results of an evaluation as one vector layer: which predictions and reference buildings matched.

Each feature is a prediction or a reference building with its ``status``: ``tp`` (matched one-to-one at the
object IoU), ``fp`` (a prediction left unmatched) or ``fn`` (a reference building left unmatched). ``iou`` is the
IoU with its match, or for an unmatched feature its best IoU with any feature of the other side (0: nothing there,
an invented or missed building; higher: drawn too differently to count). Opened in QGIS and styled by ``status``,
it shows where a model fails.
"""

from __future__ import annotations

import numpy as np

STATUS = ("tp", "fp", "fn")


def best_iou(geoms, others) -> np.ndarray:
    """For each of ``geoms``, its highest IoU with any of ``others`` (same CRS); 0 where it touches none."""
    import shapely

    geoms, others = np.asarray(geoms, dtype=object), np.asarray(others, dtype=object)
    out = np.zeros(len(geoms))
    if not len(geoms) or not len(others):
        return out
    gi, oj = shapely.STRtree(others).query(geoms, predicate="intersects")
    inter = shapely.area(shapely.intersection(geoms[gi], others[oj]))
    union = shapely.area(geoms[gi]) + shapely.area(others[oj]) - inter
    np.maximum.at(out, gi, np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0))
    return out


def match_table(pred_gdf, truth_gdf, pairs: list[tuple[int, int, float]]):
    """One GeoDataFrame of ``pred_gdf`` and ``truth_gdf`` (same CRS) with ``source``, ``status``, ``iou`` and
    ``match`` (the row of the partner within the other side, -1 if none) in front of their own attributes.
    ``pairs`` are :func:`geoseg.evaluate.objects.match_objects`'s ``(pred row, truth row, iou)``.

    Attributes keep their names, except where they would clash (:func:`_side_attributes`): one named as a column
    added here (e.g. OSM's ``source``) gets its side's prefix (``truth_source``), and so does a truth attribute of
    the same name as a prediction attribute but another type (an OSM ``id`` "way/1" against geoseg's integer
    ``id`` becomes ``truth_id``), so that every format, Parquet too, can hold the column."""
    import geopandas as gpd
    import pandas as pd

    attrs = _side_attributes(pred_gdf, truth_gdf)
    sides = []
    for source, gdf, other, col, miss, own in (("prediction", pred_gdf, truth_gdf, 0, "fp", attrs[0]),
                                               ("truth", truth_gdf, pred_gdf, 1, "fn", attrs[1])):
        partner = {p[col]: (p[1 - col], p[2]) for p in pairs}
        iou = best_iou(gdf.geometry.values, other.geometry.values)
        for i, (_, v) in partner.items():
            iou[i] = v
        n = len(gdf)
        front = pd.DataFrame({
            "source": [source] * n,
            "status": ["tp" if i in partner else miss for i in range(n)],
            "iou": np.round(iou, 4),
            "match": [partner[i][0] if i in partner else -1 for i in range(n)],
        })
        sides.append(gpd.GeoDataFrame(pd.concat([front, own], axis=1),
                                      geometry=list(gdf.geometry.values), crs=gdf.crs))
    table = pd.concat(sides, ignore_index=True)
    return gpd.GeoDataFrame(table, geometry="geometry", crs=pred_gdf.crs if pred_gdf.crs else truth_gdf.crs)


ADDED = ("source", "status", "iou", "match", "geometry")  # the columns match_table puts in front (and the geometry)


def _side_attributes(pred_gdf, truth_gdf):
    """Both sides' attribute tables (DataFrames, reset index), renamed so that none clashes with an added column
    and no column holds two types: such a column gets its side's prefix (``pred_`` / ``truth_``)."""
    import pandas as pd

    pred = pd.DataFrame(pred_gdf.drop(columns=pred_gdf.geometry.name)).reset_index(drop=True)
    truth = pd.DataFrame(truth_gdf.drop(columns=truth_gdf.geometry.name)).reset_index(drop=True)
    pred = pred.rename(columns=_prefixed(pred.columns, ADDED, "pred_"))
    clash = [*ADDED, *(c for c in truth.columns if c in pred.columns and truth[c].dtype != pred[c].dtype)]
    truth = truth.rename(columns=_prefixed(truth.columns, clash, "truth_", taken=pred.columns))
    return pred, truth


def _prefixed(columns, clash, prefix: str, taken=()) -> dict[str, str]:
    """New names for the ``columns`` in ``clash``: ``prefix`` + name, prefixed again until the name is free."""
    used = {*map(str, columns), *map(str, taken), *ADDED}
    out = {}
    for c in columns:
        if c in clash:
            name = f"{prefix}{c}"
            while name in used:
                name = f"{prefix}{name}"
            used.add(name)
            out[c] = name
    return out
