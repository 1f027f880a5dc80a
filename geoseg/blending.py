"""Blending weights for overlapping tiles (pure numpy).

Each tile's prediction is multiplied by a weight window before accumulation and
the sum is divided by the summed weights, so the result is a weighted average
that tapers each tile's contribution toward its edges (no visible seams).
"""

from __future__ import annotations

import numpy as np

from geoseg.tiling import Tile

_FLOOR = 1e-3  # keeps edge pixels covered by a single tile well defined


def window_1d(n: int, kind: str) -> np.ndarray:
    """A symmetric 1-D taper of length ``n`` with values in ``(0, 1]``."""
    i = np.arange(n, dtype=np.float64) + 0.5
    if kind == "cosine":
        w = np.sin(np.pi * i / n) ** 2
    elif kind == "gaussian":
        sigma = n / 8.0
        w = np.exp(-((i - n / 2.0) ** 2) / (2 * sigma**2))
    else:
        raise ValueError(f"unknown blend {kind!r}; use cosine, gaussian or crop")
    return np.maximum(w / w.max(), _FLOOR).astype(np.float32)


def tile_weights(tile: Tile, kind: str) -> np.ndarray:
    """``(Y, X)`` float32 weights for ``tile``'s read window.

    ``crop`` gives 1 on the tile's core and 0 elsewhere (crop-centre stitching: every
    pixel comes from exactly one tile); ``cosine``/``gaussian`` give separable tapers.
    """
    h, w = tile.read.shape_yx
    if kind == "crop":
        out = np.zeros((h, w), dtype=np.float32)
        out[tile.core_in_read.slices()] = 1.0
        return out
    return np.outer(window_1d(h, kind), window_1d(w, kind))
