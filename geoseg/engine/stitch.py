"""Streaming blend of overlapping tile predictions, one row of tiles at a time.

Memory is bounded by the raster width times about two tile heights: rows are
released as soon as no later tile row can touch them.
"""

from __future__ import annotations

import numpy as np

from geoseg.blending import tile_weights
from geoseg.tiling import Tile, TileGrid
from geoseg.window import PixelWindow


class RowStitcher:
    """Accumulates ``sum(w * p)`` and ``sum(w)`` over a rolling band of raster rows."""

    def __init__(self, grid: TileGrid, n_channels: int, blend: str):
        self.grid, self.k, self.blend = grid, n_channels, blend
        self.top = 0  # first raster row held
        width = grid.shape_yx[1]
        self.acc = np.zeros((n_channels, 0, width), np.float32)
        self.wsum = np.zeros((0, width), np.float32)
        self.valid = np.zeros((0, width), bool)
        self._weights: dict[tuple[int, int, int, int], np.ndarray] = {}

    def _extend_to(self, row_end: int) -> None:
        have = self.top + self.wsum.shape[0]
        if row_end > have:
            extra, width = row_end - have, self.wsum.shape[1]
            self.acc = np.concatenate([self.acc, np.zeros((self.k, extra, width), np.float32)], axis=1)
            self.wsum = np.concatenate([self.wsum, np.zeros((extra, width), np.float32)])
            self.valid = np.concatenate([self.valid, np.zeros((extra, width), bool)])

    def _weight(self, tile: Tile) -> np.ndarray:
        core = tile.core_in_read
        key = (*tile.read.shape_yx, core.row_off, core.col_off) if self.blend == "crop" else tile.read.shape_yx
        if key not in self._weights:
            self._weights[key] = tile_weights(tile, self.blend)
        return self._weights[key]

    def add(self, tile: Tile, probs: np.ndarray | None, valid: np.ndarray) -> None:
        """Add one tile: ``probs`` ``(K, Y, X)`` over its read window (None: nothing valid)."""
        r = tile.read
        self._extend_to(r.row_end)
        rows = slice(r.row_off - self.top, r.row_end - self.top)
        cols = slice(r.col_off, r.col_end)
        self.valid[rows, cols] |= valid
        if probs is None:
            return
        w = self._weight(tile) * valid
        self.acc[:, rows, cols] += probs * w
        self.wsum[rows, cols] += w

    def flush(self, chunk: PixelWindow) -> tuple[np.ndarray, np.ndarray]:
        """Finish raster rows ``chunk`` (which must start at the held top): ``(probs (K,Y,X), valid (Y,X))``."""
        assert chunk.row_off >= self.top, (chunk, self.top)
        skip = chunk.row_off - self.top
        self._extend_to(chunk.row_end)
        n = skip + chunk.height
        wsum = self.wsum[skip:n]
        probs = np.where(wsum > 0, self.acc[:, skip:n] / np.maximum(wsum, 1e-12), 0.0).astype(np.float32)
        valid = self.valid[skip:n] & (wsum > 0)
        self.acc, self.wsum, self.valid = self.acc[:, n:].copy(), self.wsum[n:].copy(), self.valid[n:].copy()
        self.top = chunk.row_end
        return probs, valid
