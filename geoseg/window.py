"""Integer pixel windows: the unit of all tiling arithmetic (no I/O here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PixelWindow:
    """A rectangle of whole pixels: rows ``[row_off, row_off + height)``, cols likewise."""

    row_off: int
    col_off: int
    height: int
    width: int

    @property
    def row_end(self) -> int:
        return self.row_off + self.height

    @property
    def col_end(self) -> int:
        return self.col_off + self.width

    @property
    def shape_yx(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def size(self) -> int:
        return self.height * self.width

    def intersection(self, other: PixelWindow) -> PixelWindow | None:
        r0, c0 = max(self.row_off, other.row_off), max(self.col_off, other.col_off)
        r1, c1 = min(self.row_end, other.row_end), min(self.col_end, other.col_end)
        if r1 <= r0 or c1 <= c0:
            return None
        return PixelWindow(r0, c0, r1 - r0, c1 - c0)

    def contains(self, other: PixelWindow) -> bool:
        return (
            self.row_off <= other.row_off
            and self.col_off <= other.col_off
            and other.row_end <= self.row_end
            and other.col_end <= self.col_end
        )

    def relative_to(self, outer: PixelWindow) -> PixelWindow:
        """This window in the pixel frame of ``outer`` (offsets relative to its origin)."""
        return PixelWindow(self.row_off - outer.row_off, self.col_off - outer.col_off, self.height, self.width)

    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices for indexing the last two axes of a ``(C, Y, X)`` array."""
        return slice(self.row_off, self.row_end), slice(self.col_off, self.col_end)

    def to_rasterio(self):  # -> rasterio.windows.Window
        from rasterio.windows import Window

        return Window(self.col_off, self.row_off, self.width, self.height)
