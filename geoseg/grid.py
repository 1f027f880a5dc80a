"""RasterGrid: the pixel grid of a raster as a value (shape + affine + CRS). No I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass

from affine import Affine

from geoseg.window import PixelWindow


@dataclass(frozen=True, slots=True)
class RasterGrid:
    """A north-up or rotated pixel grid.

    ``shape_yx`` is ``(height, width)``; ``transform`` maps ``(col, row)`` to map ``(x, y)``;
    ``crs`` is anything :class:`rasterio.crs.CRS` accepts (kept as given; compare with
    :meth:`same_as`).
    """

    shape_yx: tuple[int, int]
    transform: Affine
    crs: object = None

    @property
    def height(self) -> int:
        return self.shape_yx[0]

    @property
    def width(self) -> int:
        return self.shape_yx[1]

    @property
    def res_xy(self) -> tuple[float, float]:
        """Pixel size ``(x, y)`` in CRS units (positive)."""
        t = self.transform
        return (math.hypot(t.a, t.d), math.hypot(t.b, t.e))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in CRS units."""
        xs, ys = [], []
        for col, row in ((0, 0), (self.width, 0), (0, self.height), (self.width, self.height)):
            x, y = self.transform @ (col, row)
            xs.append(x)
            ys.append(y)
        return (min(xs), min(ys), max(xs), max(ys))

    @property
    def full_window(self) -> PixelWindow:
        return PixelWindow(0, 0, self.height, self.width)

    def window_transform(self, window: PixelWindow) -> Affine:
        return self.transform @ Affine.translation(window.col_off, window.row_off)

    def __getitem__(self, window: PixelWindow) -> RasterGrid:
        """The sub-grid covered by ``window`` (which may extend past the edges)."""
        return RasterGrid(window.shape_yx, self.window_transform(window), self.crs)

    def same_as(self, other: RasterGrid, tol: float = 1e-9) -> bool:
        """Same shape, same transform (to ``tol`` of a pixel) and same CRS."""
        if self.shape_yx != other.shape_yx:
            return False
        a, b = self.transform, other.transform
        scale = max(self.res_xy) or 1.0
        if any(abs(p - q) > tol * scale for p, q in zip(tuple(a)[:6], tuple(b)[:6])):
            return False
        return _crs_equal(self.crs, other.crs)

    def offset_in(self, other: RasterGrid, tol: float = 1e-6) -> tuple[int, int] | None:
        """``(row, col)`` of this grid's first pixel in ``other`` when this grid is a pixel-aligned part of it (same
        CRS, same pixel size and rotation, whole-pixel offset, inside it); None otherwise."""
        a, b = self.transform, other.transform
        scale = max(other.res_xy) or 1.0
        if any(abs(p - q) > tol * scale for p, q in zip((a.a, a.b, a.d, a.e), (b.a, b.b, b.d, b.e))):
            return None
        col, row = ~b @ (a.c, a.f)
        r, c = round(row), round(col)
        if abs(row - r) > tol or abs(col - c) > tol or not _crs_equal(self.crs, other.crs):
            return None
        if not other.full_window.contains(PixelWindow(r, c, self.height, self.width)):
            return None
        return r, c

    def window_covering(self, bounds: tuple[float, float, float, float]) -> PixelWindow | None:
        """The smallest window of whole pixels covering map ``bounds`` ``(left, bottom, right, top)``, cut to the
        grid; None where they miss it."""
        left, bottom, right, top = bounds
        inv = ~self.transform
        cols, rows = zip(*(inv @ xy for xy in ((left, bottom), (left, top), (right, bottom), (right, top))))
        eps = 1e-6  # a bound on a pixel edge does not take in the next pixel
        r0, c0 = max(0, math.floor(min(rows) + eps)), max(0, math.floor(min(cols) + eps))
        r1, c1 = min(self.height, math.ceil(max(rows) - eps)), min(self.width, math.ceil(max(cols) - eps))
        if r1 <= r0 or c1 <= c0:
            return None
        return PixelWindow(r0, c0, r1 - r0, c1 - c0)

    def pixel_area(self) -> float:
        """Area of one pixel in CRS units squared."""
        return abs(self.transform.determinant)


def _crs_equal(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is b
    from rasterio.crs import CRS

    return CRS.from_user_input(a) == CRS.from_user_input(b)
