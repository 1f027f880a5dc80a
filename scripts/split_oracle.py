"""How much object F1 could better splitting of touching buildings give? Scored on the pixels, per raster.

    python scripts/split_oracle.py PROB.tif:LABELS[:IMAGE] ... [--json out.json] [--watershed-merge 0.03]
                                   [--felzenszwalb 5] [--min-part 20] [--min-area 10]

PROB is a `geoseg segment --prob` raster; its threshold and border cut are the run's own (its `settings` tag).
Every row labels the same foreground (`building >= threshold` on valid pixels), so pixel IoU is the same in all of
them; only the cut into buildings differs:

- `current`: geoseg's own split (`geoseg.footprints.instances.label_instances`: border cut, then distance split).
- `oracle`: each connected blob is cut by the reference: every blob pixel goes to the nearest reference building
  that overlaps the blob. A bound on what any split of these blobs can give, not a method.
- `watershed-merge:T` (option): a watershed of the border map seeded where it is under 0.01, then neighbours merged,
  weakest first, while the mean border probability along their shared edge is under T (a region-merging split).
- `felzenszwalb:C` (option; needs IMAGE, the imagery on the same grid as PROB): the current split's pieces cut
  again by Felzenszwalb superpixels of the imagery (scale 200), then neighbours merged, most alike first, while
  their mean colours differ by under C (CIELAB) and their shared edge's mean border probability is under 0.05.

All rows keep split-off pieces under `--min-part` m2 (joined to a neighbour) and drop buildings under `--min-area`
m2, as the vectorizer does. Object F1 is one-to-one matching at IoU >= 0.5 between labelled pixel regions (an IoU
above 0.5 pairs two regions uniquely), reference buildings rasterised onto PROB's grid: within about 0.01 of
`geoseg evaluate` on the polygons. Results: docs/splitting.md, "What a perfect split would give".
"""

from __future__ import annotations

import argparse
import heapq
import json

import numpy as np
from scipy import ndimage

from geoseg.footprints import instances as inst


def object_f1(pred_yx: np.ndarray, truth_yx: np.ndarray) -> dict:
    """One-to-one object scores at IoU >= 0.5 between two label rasters (0 = background)."""
    n_pred, n_truth = np.unique(pred_yx).size - 1, np.unique(truth_yx).size - 1
    both = (pred_yx > 0) & (truth_yx > 0)
    pairs, inter = np.unique(np.stack([pred_yx[both], truth_yx[both]]), axis=1, return_counts=True)
    area_p, area_t = np.bincount(pred_yx.ravel()), np.bincount(truth_yx.ravel())
    iou = inter / (area_p[pairs[0]] + area_t[pairs[1]] - inter)
    tp = int((iou > 0.5).sum() + (iou == 0.5).sum())
    return {"obj_f1": round(2 * tp / max(n_pred + n_truth, 1), 4), "obj_tp": tp, "n_pred": n_pred, "n_truth": n_truth}


def oracle_split(fg_yx: np.ndarray, truth_yx: np.ndarray) -> np.ndarray:
    """Each blob of ``fg_yx`` cut among the reference buildings it overlaps (nearest building per pixel)."""
    blobs, _ = ndimage.label(fg_yx, inst.FOUR_CONNECTED)
    _, (iy, ix) = ndimage.distance_transform_edt(truth_yx == 0, return_indices=True)
    nearest = truth_yx[iy, ix]
    overlaps = np.zeros(blobs.max() + 1, bool)
    overlaps[np.unique(blobs[fg_yx & (truth_yx > 0)])] = True
    key = blobs.astype(np.int64) * (int(truth_yx.max()) + 1) + np.where(overlaps[blobs], nearest, 0)
    _, labels = np.unique(np.where(fg_yx, key, -1), return_inverse=True)
    return labels.reshape(fg_yx.shape)  # -1 (background) sorts first, so it becomes 0


def _edge_sums(labels_yx: np.ndarray, strength_yx: np.ndarray) -> dict[int, dict[int, list]]:
    """For each pair of 4-adjacent regions: [sum, count] of the stronger border value over their shared edges."""
    adj: dict[int, dict[int, list]] = {i: {} for i in range(1, int(labels_yx.max()) + 1)}
    for first, second in ((np.s_[:-1, :], np.s_[1:, :]), (np.s_[:, :-1], np.s_[:, 1:])):
        a, b = labels_yx[first], labels_yx[second]
        m = (a != b) & (a > 0) & (b > 0)
        v = np.maximum(strength_yx[first][m], strength_yx[second][m])
        for lo, hi, x in zip(np.minimum(a[m], b[m]).tolist(), np.maximum(a[m], b[m]).tolist(), v.tolist()):
            e = adj[lo].setdefault(hi, [0.0, 0])
            e[0] += x
            e[1] += 1
            adj[hi][lo] = e
    return adj


def merge_regions(labels_yx: np.ndarray, adj: dict, cost, limit: float, absorb=None) -> np.ndarray:
    """Greedy region merging: the cheapest neighbouring pair first, while its ``cost(i, j)`` is under ``limit``.

    ``absorb(i, j)``, if given, is called when region ``j`` joins ``i`` (to update what ``cost`` reads)."""
    parent = np.arange(int(labels_yx.max()) + 1)
    heap = [(cost(i, j), i, j) for i in adj for j in adj[i] if i < j]
    heapq.heapify(heap)
    while heap:
        c, i, j = heapq.heappop(heap)
        if c >= limit:
            break
        if parent[i] != i or parent[j] != j or j not in adj[i] or cost(i, j) != c:
            continue  # merged away, or stale
        del adj[i][j], adj[j][i]
        for k, (s, n) in adj.pop(j).items():
            del adj[k][j]
            e = adj[i].get(k, [0.0, 0])
            adj[i][k] = adj[k][i] = [e[0] + s, e[1] + n]
        parent[j] = i
        if absorb is not None:
            absorb(i, j)
        for k in adj[i]:
            lo, hi = min(i, k), max(i, k)
            heapq.heappush(heap, (cost(lo, hi), lo, hi))
    for i in range(parent.size):
        while parent[parent[i]] != parent[i]:
            parent[i] = parent[parent[i]]
    return inst._compact(parent[labels_yx])


def watershed_merge(fg_yx: np.ndarray, border_yx: np.ndarray, limit: float, min_part_px: float) -> np.ndarray:
    from skimage.segmentation import watershed

    smooth = ndimage.gaussian_filter(border_yx, 1.0)
    seeds, _ = ndimage.label((smooth < 0.01) & fg_yx, inst.FOUR_CONNECTED)
    regions = watershed(smooth, seeds, mask=fg_yx, connectivity=1)
    adj = _edge_sums(regions, smooth)
    merged = merge_regions(regions, adj, lambda i, j: adj[i][j][0] / adj[i][j][1], limit)
    return _per_blob_small_parts(merged, fg_yx, min_part_px)


def felzenszwalb_merge(current_yx: np.ndarray, border_yx: np.ndarray, image_cyx: np.ndarray, limit: float,
                       min_part_px: float) -> np.ndarray:
    from skimage.color import rgb2lab
    from skimage.segmentation import felzenszwalb

    rgb = np.moveaxis(image_cyx[:3], 0, -1)
    superpixels = felzenszwalb(rgb, scale=200, sigma=0.8, min_size=50)
    key = current_yx.astype(np.int64) * (int(superpixels.max()) + 1) + superpixels
    _, pieces = np.unique(np.where(current_yx > 0, key, -1), return_inverse=True)
    pieces = pieces.reshape(current_yx.shape)
    lab = rgb2lab(rgb).reshape(-1, 3)
    count = np.bincount(pieces.ravel()).astype(float)
    colour = np.stack([np.bincount(pieces.ravel(), lab[:, k]) for k in range(3)], 1)
    adj = _edge_sums(pieces, border_yx)

    def cost(i: int, j: int) -> float:
        s, n = adj[i][j]
        return np.inf if s / n >= 0.05 else float(np.linalg.norm(colour[i] / count[i] - colour[j] / count[j]))

    def absorb(i: int, j: int) -> None:
        count[i] += count[j]
        colour[i] += colour[j]

    merged = merge_regions(pieces, adj, cost, limit, absorb)
    return _per_blob_small_parts(merged, current_yx > 0, min_part_px)


def _per_blob_small_parts(labels_yx: np.ndarray, fg_yx: np.ndarray, min_part_px: float) -> np.ndarray:
    """Join parts under ``min_part_px`` to a neighbour within their own blob (as geoseg's split does)."""
    blobs, _ = ndimage.label(fg_yx, inst.FOUR_CONNECTED)
    out = np.zeros(labels_yx.shape, np.int64)
    nxt = 1
    for b, box in enumerate(ndimage.find_objects(blobs), start=1):
        inside = blobs[box] == b
        parts = inst._merge_small_parts(inst._compact(np.where(inside, labels_yx[box], 0)), min_part_px)
        out[box][inside] = parts[inside] + nxt - 1
        nxt += int(parts.max())
    return out


def drop_small(labels_yx: np.ndarray, min_px: float) -> np.ndarray:
    sizes = np.bincount(labels_yx.ravel())
    return np.where(sizes[labels_yx] >= max(min_px, 1), labels_yx, 0)


def score_raster(prob: str, labels: str, image: str | None, args) -> list[dict]:
    import geopandas as gpd
    import rasterio
    from rasterio import features

    from geoseg.config import VectorizeConfig
    from geoseg.georef import ground_gsd_m
    from geoseg.grid import RasterGrid
    from geoseg.io.prob_raster import settings_from_raster

    cfg, _ = settings_from_raster(prob, VectorizeConfig())
    threshold = cfg.threshold if cfg.threshold is not None else 0.5
    cut = cfg.border_cut if cfg.border_cut is not None else inst.BORDER_CUT
    with rasterio.open(prob) as ds:
        bands = ds.read().astype(np.float32) / (255.0 if ds.dtypes[0] == "uint8" else 1.0)
        valid = ds.read_masks(1) > 0
        transform, crs = ds.transform, ds.crs
        px_m2 = ground_gsd_m(RasterGrid(ds.shape, ds.transform, ds.crs)) ** 2
        described = list(ds.descriptions)
    separators = [bands[i] for i, d in enumerate(described) if d in ("border", "gap")]
    if not separators:
        raise SystemExit(f"{prob} has no band described as border or gap: run a model with those outputs")
    border = np.max(separators, axis=0)
    truth_gdf = gpd.read_file(labels).to_crs(crs)
    truth = features.rasterize(((g, i + 1) for i, g in enumerate(truth_gdf.geometry) if g is not None),
                               out_shape=valid.shape, transform=transform, dtype="int32").astype(np.int64)
    truth[~valid] = 0
    fg = (bands[0] >= threshold) & valid
    min_part, min_area = args.min_part / px_m2, args.min_area / px_m2
    current = inst.label_instances(bands[0], valid, threshold, boundary=border, min_part_px=min_part, border_cut=cut)
    splits = {"current": current, "oracle": oracle_split(fg, truth)}
    for t in args.watershed_merge:
        splits[f"watershed-merge:{t}"] = watershed_merge(fg, border, t, min_part)
    if image and args.felzenszwalb:
        with rasterio.open(image) as ds:
            if ds.shape != valid.shape:
                raise SystemExit(f"{image} is {ds.shape}, not on the grid of {prob} {valid.shape}")
            img = ds.read([1, 2, 3])
        for c in args.felzenszwalb:
            splits[f"felzenszwalb:{c}"] = felzenszwalb_merge(current, border, img, c, min_part)
    rows = []
    for name, labels_yx in splits.items():
        row = {"set": prob, "split": name, "threshold": threshold, "border_cut": cut,
               **object_f1(drop_small(labels_yx, min_area), truth)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sets", nargs="+", help="PROB:LABELS or PROB:LABELS:IMAGE")
    ap.add_argument("--watershed-merge", type=float, nargs="*", default=[], metavar="T")
    ap.add_argument("--felzenszwalb", type=float, nargs="*", default=[], metavar="C")
    ap.add_argument("--min-part", type=float, default=20.0, help="m2 (default 20, as the vectorizer)")
    ap.add_argument("--min-area", type=float, default=10.0, help="m2 (default 10, as the vectorizer)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rows = []
    for spec in args.sets:
        prob, labels, *image = spec.split(":")
        rows += score_raster(prob, labels, image[0] if image else None, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
