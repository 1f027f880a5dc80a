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
    ``pairs`` are :func:`geoseg.evaluate.objects.match_objects`'s ``(pred row, truth row, iou)``."""
    import geopandas as gpd
    import pandas as pd

    sides = []
    for source, gdf, other, col, miss in (("prediction", pred_gdf, truth_gdf, 0, "fp"),
                                          ("truth", truth_gdf, pred_gdf, 1, "fn")):
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
        attrs = pd.DataFrame(gdf.drop(columns=gdf.geometry.name)).reset_index(drop=True)
        attrs = attrs.drop(columns=[c for c in front.columns if c in attrs.columns])
        sides.append(gpd.GeoDataFrame(pd.concat([front, attrs], axis=1),
                                      geometry=list(gdf.geometry.values), crs=gdf.crs))
    table = pd.concat(sides, ignore_index=True)
    return gpd.GeoDataFrame(table, geometry="geometry", crs=pred_gdf.crs if pred_gdf.crs else truth_gdf.crs)
