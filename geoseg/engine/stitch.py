"""Streaming blend of overlapping tile predictions, one row of tiles at a time.

The accumulators span one tile height of a column block's width and are reused
in place: memory does not depend on the raster's size.
"""

from __future__ import annotations

import numpy as np

from geoseg.blending import tile_weights
from geoseg.tiling import Tile, TileGrid
from geoseg.window import PixelWindow


class RowStitcher:
    """Accumulates ``sum(w * p)`` and ``sum(w)`` for raster rows ``[top, top + tile)`` over
    columns ``cols = (x0, x1)``."""

    def __init__(self, grid: TileGrid, n_channels: int, blend: str, cols: tuple[int, int] | None = None, top: int = 0):
        self.grid, self.k, self.blend = grid, n_channels, blend
        self.x0, x1 = cols or (0, grid.shape_yx[1])
        self.top = top
        rows, width = min(grid.tile_size, grid.shape_yx[0]), x1 - self.x0
        self.acc = np.zeros((n_channels, rows, width), np.float32)
        self.wsum = np.zeros((rows, width), np.float32)
        self.valid = np.zeros((rows, width), bool)
        self._weights: dict[tuple, np.ndarray] = {}

    def _weight(self, tile: Tile) -> np.ndarray:
        core = tile.core_in_read
        key = (*tile.read.shape_yx, core.row_off, core.col_off, core.height, core.width) if self.blend == "crop" else tile.read.shape_yx
        if key not in self._weights:
            self._weights[key] = tile_weights(tile, self.blend)
        return self._weights[key]

    def add(self, tile: Tile, probs: np.ndarray | None, valid: np.ndarray) -> None:
        """Add one tile: ``probs`` ``(K, Y, X)`` over its read window (None: nothing valid)."""
        r = tile.read
        rows = slice(r.row_off - self.top, r.row_end - self.top)
        cols = slice(r.col_off - self.x0, r.col_end - self.x0)
        assert rows.start >= 0 and rows.stop <= self.wsum.shape[0], (tile, self.top)
        self.valid[rows, cols] |= valid
        if probs is None:
            return
        w = self._weight(tile) * valid
        self.acc[:, rows, cols] += probs * w
        self.wsum[rows, cols] += w

    def flush(self, chunk: PixelWindow) -> tuple[np.ndarray, np.ndarray]:
        """Finish ``chunk`` (its rows start at ``top``; its columns lie within the block):
        ``(probs (K, Y, X), valid (Y, X))``; the rows are then released."""
        assert chunk.row_off == self.top, (chunk, self.top)
        n = chunk.height
        cols = slice(chunk.col_off - self.x0, chunk.col_end - self.x0)
        wsum = self.wsum[:n, cols]
        probs = np.divide(self.acc[:, :n, cols], wsum, out=np.zeros((self.k, n, wsum.shape[1]), np.float32), where=wsum > 0)
        valid = self.valid[:n, cols] & (wsum > 0)
        for a in (self.acc[:], self.wsum[None], self.valid[None]):
            keep = a.shape[1] - n
            a[:, :keep] = a[:, n:]
            a[:, keep:] = 0
        self.top = chunk.row_end
        return probs, valid
