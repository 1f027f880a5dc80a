"""Validation during training: fixed chips of the validation rasters, scored by pixel IoU, precision and recall."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from geoseg.errors import ConfigError, LabelWarning
from geoseg.models.normalize import normalize
from geoseg.train.experiment import entry_bands, glob_rasters
from geoseg.train.regions import Region, load_region


def val_chips(region: Region, size: int, min_valid: float = 0.5):
    h, w = region.label.shape
    out = []
    for y in range(0, h - size + 1, size):
        for x in range(0, w - size + 1, size):
            v = region.valid[y:y + size, x:x + size]
            if v.mean() >= min_valid:
                out.append((region.image[:, y:y + size, x:x + size], region.label[y:y + size, x:x + size] > 0, v))
    return out


def pixel_counts(model, chips, norm, threshold: float = 0.5, batch: int = 16, device: str = "cpu",
                 dtype=None) -> tuple[int, int, int]:
    """``(tp, fp, fn)`` building pixels of ``model`` over ``(image, label, valid)`` chips, valid pixels only."""
    import torch

    model.eval()
    tp = fp = fn = 0
    with torch.inference_mode(), torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
        for i in range(0, len(chips), batch):
            part = chips[i:i + batch]
            x = normalize(torch.from_numpy(np.stack([c[0] for c in part])).to(device), norm)
            p = torch.sigmoid(model(x).float())[:, 0].cpu().numpy() >= threshold
            lab = np.stack([c[1] for c in part]) > 0
            val = np.stack([c[2] for c in part])
            tp += int((p & lab & val).sum())
            fp += int((p & ~lab & val).sum())
            fn += int((~p & lab & val).sum())
    model.train()
    return tp, fp, fn


def scores(tp: int, fp: int, fn: int) -> dict[str, float]:
    return {"iou": tp / max(1, tp + fp + fn), "precision": tp / max(1, tp + fp), "recall": tp / max(1, tp + fn)}


def val_sets(entries: list[dict], size: int, n_bands: int = 3) -> dict[str, list]:
    """Validation chips per ``name@gsd``; an entry's ``gsd_m`` may be one GSD or a list."""
    sets: dict[str, list] = {}
    for d in entries:
        rasters = glob_rasters(d["raster_glob"], "validation raster_glob") if "raster_glob" in d else [d["raster"]]
        gsds = d["gsd_m"] if isinstance(d["gsd_m"], list) else [d["gsd_m"]]
        for g in gsds:
            key = f"{d.get('name', rasters[0])}@{g:g}"
            for r in rasters:
                region = load_region(r, d["labels"], g, d.get("name"), n_bands=n_bands, bands=entry_bands(d),
                                     aoi=d.get("aoi"), validation=True)
                sets.setdefault(key, []).extend(val_chips(region, size))
    empty = [k for k, v in sets.items() if not v]
    if empty and len(empty) == len(sets):
        raise ConfigError(f"data.val gives no validation chip ({', '.join(empty)}): each raster is smaller than "
                          f"train.val_chip_size ({size} px) at its gsd_m, or mostly nodata; lower val_chip_size, or "
                          "drop data.val (best.pt is then the epoch of the lowest loss)")
    if sets and not any(c[1].any() for v in sets.values() for c in v):
        raise ConfigError("data.val's labels hold no building on its chips (every validation IoU would be 0 and "
                          "best.pt would stay at the first epoch); check that each val entry's labels cover its "
                          "raster, or drop data.val (best.pt is then the epoch of the lowest loss)")
    for k in empty:
        warnings.warn(f"validation set {k} gives no chip of train.val_chip_size ({size} px): its raster is smaller "
                      "at that GSD, or mostly nodata; it is left out", LabelWarning, stacklevel=2)
    return {k: v for k, v in sets.items() if v}


def validate(model, sets: dict[str, list], norm, device, dtype) -> dict[str, Any]:
    """Pixel IoU/precision/recall over all validation chips, plus IoU per validation set."""
    if not sets:
        return {}
    counts = {k: pixel_counts(model, v, norm, device=device, dtype=dtype) for k, v in sets.items()}  # one pass per chip
    out = scores(*(sum(c[i] for c in counts.values()) for i in range(3)))
    if len(sets) > 1:
        out["iou_by_set"] = {k: round(scores(*c)["iou"], 4) for k, c in counts.items()}
    return out
