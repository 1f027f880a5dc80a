"""Tiles and the tile grid: pure window arithmetic over a raster shape (no I/O).

A :class:`Tile` has a *read* window (what the model sees: core plus halo, always
inside the raster) and a *core* window (the pixels it owns). The cores of a
:class:`TileGrid` partition the raster exactly. Tiles come in rows; a row of
tiles is the unit of streaming (see :meth:`TileGrid.final_rows_after`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise

from geoseg.window import PixelWindow


def _starts(length: int, tile: int, stride: int) -> list[int]:
    """Tile start offsets along one axis: regular stride, last tile shifted to end at the edge."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def aligned_span(start: int, end: int, length: int, tile: int, overlap: int) -> tuple[int, int]:
    """A span ``[s, e)`` of an axis of ``length`` pixels that holds ``[start, end)`` and whose own tiles are tiles of the
    whole axis (shifted by ``s``): every pixel of ``[start, end)`` is then covered by the same tiles, with the same
    weights, as in a run over the whole axis, so a run over the span gives the same values there."""
    stride = tile - overlap
    if length <= tile:
        return 0, length
    s = max(0, (start - overlap) // stride * stride)  # a tile start, one overlap before ``start``
    e = s + max(0, -(-(end + overlap - s - tile) // stride)) * stride + tile  # a tile end, one overlap after ``end``
    if e >= length or end > length - tile:  # the whole axis ends with a tile shifted to end at its edge; where that
        e, s = length, min(s, length - tile)  # tile reaches [start, end), the span ends with it too
    return s, e


def aligned_window(window: PixelWindow, shape_yx: tuple[int, int], tile: int, overlap: int) -> PixelWindow:
    """:func:`aligned_span` along both axes: the part of a raster of ``shape_yx`` to run so that ``window`` gets the
    values a run over the whole raster would give it."""
    r0, r1 = aligned_span(window.row_off, window.row_end, shape_yx[0], tile, overlap)
    c0, c1 = aligned_span(window.col_off, window.col_end, shape_yx[1], tile, overlap)
    return PixelWindow(r0, c0, r1 - r0, c1 - c0)


def _core_bounds(starts: list[int], tile: int, length: int) -> list[tuple[int, int]]:
    """Split ``[0, length)`` among tiles: boundaries at the middle of each overlap."""
    bounds = [0]
    for a, b in pairwise(starts):
        end_a = min(a + tile, length)
        bounds.append((b + end_a) // 2)
    bounds.append(length)
    return list(pairwise(bounds))


@dataclass(frozen=True, slots=True)
class Tile:
    """One tile: ``index = (row, col)`` in the grid, ``read`` window (core + halo), ``core`` window."""

    index: tuple[int, int]
    read: PixelWindow
    core: PixelWindow

    @property
    def core_in_read(self) -> PixelWindow:
        """The core in the read window's own pixel frame."""
        return self.core.relative_to(self.read)


@dataclass(frozen=True)
class TileGrid:
    """Tiles of ``tile_size`` pixels with ``overlap`` pixels shared by neighbours.

    Rasters smaller than a tile give a single tile whose read window is the whole
    raster (the predictor pads it). ``overlap`` must be ``< tile_size / 2`` so that
    only adjacent rows of tiles overlap.
    """

    shape_yx: tuple[int, int]
    tile_size: int
    overlap: int

    def __post_init__(self) -> None:
        h, w = self.shape_yx
        if h <= 0 or w <= 0:
            raise ValueError(f"raster shape must be positive, got {self.shape_yx}")
        if self.tile_size <= 0 or not 0 <= 2 * self.overlap < self.tile_size:
            raise ValueError(f"need tile_size > 0 and 0 <= overlap < tile_size/2, got {self.tile_size}, {self.overlap}")

    @property
    def stride(self) -> int:
        return self.tile_size - self.overlap

    @cached_property
    def row_starts(self) -> list[int]:
        return _starts(self.shape_yx[0], self.tile_size, self.stride)

    @cached_property
    def col_starts(self) -> list[int]:
        return _starts(self.shape_yx[1], self.tile_size, self.stride)

    @cached_property
    def _row_cores(self) -> list[tuple[int, int]]:
        return _core_bounds(self.row_starts, self.tile_size, self.shape_yx[0])

    @cached_property
    def _col_cores(self) -> list[tuple[int, int]]:
        return _core_bounds(self.col_starts, self.tile_size, self.shape_yx[1])

    @property
    def n_rows(self) -> int:
        return len(self.row_starts)

    @property
    def n_cols(self) -> int:
        return len(self.col_starts)

    def __len__(self) -> int:
        return self.n_rows * self.n_cols

    def tile(self, row: int, col: int) -> Tile:
        h, w = self.shape_yx
        r0, c0 = self.row_starts[row], self.col_starts[col]
        read = PixelWindow(r0, c0, min(self.tile_size, h - r0), min(self.tile_size, w - c0))
        (cr0, cr1), (cc0, cc1) = self._row_cores[row], self._col_cores[col]
        return Tile((row, col), read, PixelWindow(cr0, cc0, cr1 - cr0, cc1 - cc0))

    def row(self, row: int) -> list[Tile]:
        return [self.tile(row, c) for c in range(self.n_cols)]

    def __iter__(self):
        for r in range(self.n_rows):
            yield from self.row(r)

    def row_read_window(self, row: int) -> PixelWindow:
        """The rows read by tile row ``row``, across the full width."""
        r0 = self.row_starts[row]
        return PixelWindow(r0, 0, min(self.tile_size, self.shape_yx[0] - r0), self.shape_yx[1])

    def row_core_window(self, row: int) -> PixelWindow:
        r0, r1 = self._row_cores[row]
        return PixelWindow(r0, 0, r1 - r0, self.shape_yx[1])

    def final_rows_after(self, row: int) -> PixelWindow:
        """Raster rows that no later tile row touches once tile row ``row`` is done, and
        that earlier rows did not already finalise: the chunk a streaming stitcher may
        flush after that row. The chunks of all rows partition the raster."""
        start = 0 if row == 0 else self.row_starts[row]
        end = self.row_starts[row + 1] if row + 1 < self.n_rows else self.shape_yx[0]
        return PixelWindow(start, 0, end - start, self.shape_yx[1])

    def first_row_touching(self, raster_row: int) -> int:
        """Index of the first tile row whose read window reaches ``raster_row`` or below."""
        for i, r0 in enumerate(self.row_starts):
            if r0 + self.tile_size > raster_row:
                return i
        return self.n_rows - 1


def read_spans(grid: TileGrid, row: int, cols, within: tuple[int, int] | None = None) -> list[tuple[int, int]]:
    """The raster columns ``[c0, c1)`` that the read windows of tile row ``row``'s tile columns ``cols`` cover, cut to
    ``within`` (a column range) and merged where they overlap or touch, left to right: what to read for those tiles."""
    spans: list[tuple[int, int]] = []
    lo, hi = within if within is not None else (0, grid.shape_yx[1])
    for c in sorted(cols):
        read = grid.tile(row, c).read
        c0, c1 = max(read.col_off, lo), min(read.col_end, hi)
        if c0 >= c1:
            continue
        if spans and c0 <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], c1))
        else:
            spans.append((c0, c1))
    return spans


@dataclass(frozen=True, slots=True)
class ColumnBlock:
    """A vertical strip of the raster processed on its own, to bound memory by its width.

    ``owned`` are the raster columns ``[c0, c1)`` whose results this block produces (its
    tiles' cores); ``tile_cols`` are the tile columns it must predict: every tile whose
    read window reaches into ``owned`` (so the neighbour's border column is shared).
    """

    index: int
    owned: tuple[int, int]
    tile_cols: tuple[int, ...]
    read_cols: tuple[int, int]


def column_blocks(grid: TileGrid, max_width: int) -> list[ColumnBlock]:
    """Split the tile columns into blocks owning at most ``max_width`` raster columns each
    (at least one tile column per block); block borders fall on tile-core borders."""
    cores = [grid.tile(0, c).core for c in range(grid.n_cols)]
    groups: list[list[int]] = [[]]
    for c, core in enumerate(cores):
        start = cores[groups[-1][0]].col_off if groups[-1] else core.col_off
        if groups[-1] and core.col_end - start > max_width:
            groups.append([])
        groups[-1].append(c)
    blocks = []
    for i, cols in enumerate(groups):
        c0, c1 = cores[cols[0]].col_off, cores[cols[-1]].col_end
        need = [j for j in range(grid.n_cols)
                if grid.tile(0, j).read.col_off < c1 and grid.tile(0, j).read.col_end > c0]
        reads = [grid.tile(0, j).read for j in need]
        blocks.append(ColumnBlock(i, (c0, c1), tuple(need), (min(r.col_off for r in reads), max(r.col_end for r in reads))))
    return blocks
