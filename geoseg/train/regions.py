"""Load a labelled training region into memory on a metric grid.

A region is a raster plus vector labels (any CRS). It is resampled once, into
the local metric CRS at a fixed base GSD, with labels rasterised on that grid;
chips at other GSDs are then cut and resized from memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geoseg import georef
from geoseg.errors import InputError

_CELL = 16  # px: the grain at which Region.draw finds valid pixels


@dataclass(frozen=True)
class Region:
    name: str
    image: np.ndarray  # (C, Y, X) uint8, C = the model's in_channels
    label: np.ndarray  # (Y, X) int32 building instance id, 0 = background
    valid: np.ndarray  # (Y, X) bool
    gsd_m: float
    chip_gsd_m: tuple[float, float] | None = None  # the chip GSDs this region serves (None: all of train.gsd_range)

    @property
    def valid_pixels(self) -> float:
        return float(self.valid.sum())

    @property
    def n_bands(self) -> int:
        return int(self.image.shape[0])

    @property
    def has_buildings(self) -> bool:
        return bool((self.label[self.valid] > 0).any())

    def draw(self, rng: np.random.Generator, crop: int):
        """A random ``crop`` x ``crop`` window ``(image, instances, valid)``, or None if it cannot fit.

        The window is placed around a random valid pixel (found through cells of ``_CELL`` px), so windows are
        drawn about in proportion to the imagery in them: mosaics that are mostly nodata waste few draws."""
        h, w = self.label.shape
        if crop > h or crop > w:
            return None
        cum, n_cols = self._valid_cells()
        if cum[-1] > 0:
            cell = int(np.searchsorted(cum, rng.uniform(0, cum[-1]), side="right"))
            cy = (cell // n_cols) * _CELL + int(rng.integers(0, _CELL))
            cx = (cell % n_cols) * _CELL + int(rng.integers(0, _CELL))
            y = min(max(cy - int(rng.integers(0, crop)), 0), h - crop)
            x = min(max(cx - int(rng.integers(0, crop)), 0), w - crop)
        else:
            y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        return self.image[:, y:y + crop, x:x + crop], self.label[y:y + crop, x:x + crop], self.valid[y:y + crop, x:x + crop]

    def _valid_cells(self) -> tuple[np.ndarray, int]:
        """Cumulative valid-pixel counts of the ``_CELL``-px cells (row-major) and the number of cell columns."""
        cached = self.__dict__.get("_cells")
        if cached is None:
            h, w = self.valid.shape
            rows, cols = -(-h // _CELL), -(-w // _CELL)
            padded = np.zeros((rows * _CELL, cols * _CELL), np.uint8)
            padded[:h, :w] = self.valid
            counts = padded.reshape(rows, _CELL, cols, _CELL).sum(axis=(1, 3), dtype=np.int64).ravel()
            cached = (np.cumsum(counts), cols)
            object.__setattr__(self, "_cells", cached)  # a cache, not state: the fields stay as given
        return cached


def load_region(raster: str, labels: str, base_gsd_m: float, name: str | None = None,
                chip_gsd_m: tuple[float, float] | None = None, n_bands: int = 3,
                bands: tuple[int, ...] | None = None, aoi: str | None = None, validation: bool = False) -> Region:
    """``raster`` and its ``labels`` on the local metric grid at ``base_gsd_m``, read whole through the
    engine's reader (bands, dtype scaling, masks, nodata and alpha as at inference), cropped to its data;
    ``chip_gsd_m``: the chip GSDs it serves (see :class:`~geoseg.train.chips.ChipSampler`); ``n_bands`` bands
    (the model's ``in_channels``) are read, ``bands`` (1-based) if given, else picked as ``geoseg segment`` picks them.
    ``aoi``: a polygon file (any CRS) of the area where the labels are complete; the pixels outside it count as
    nodata, so they teach neither building nor background, and the region is cropped to it."""
    from rasterio.features import rasterize

    from geoseg.io.raster import WorkReader, inspect_raster

    info = inspect_raster(raster, n_bands, bands)  # one-line errors for a missing, corrupt or CRS-less raster
    crs = georef.metric_crs_for(info.grid)
    grid = georef.reproject_grid(info.grid, crs, base_gsd_m)
    with WorkReader(info, grid) as reader:
        image, valid = reader.read(grid.full_window)
    from geoseg.aoi import mask as area_mask
    from geoseg.train.tiles import aoi_geoms, read_labels, warn_unlabelled

    if aoi is not None:
        valid &= area_mask(aoi_geoms(aoi, crs, grid.bounds, raster), grid.transform, grid.shape_yx)
    geoms = read_labels(labels, crs, grid.bounds)
    label = rasterize(((g, i + 1) for i, g in enumerate(geoms)), out_shape=grid.shape_yx, transform=grid.transform, dtype="int32")
    rows = np.flatnonzero(valid.any(axis=1))
    cols = np.flatnonzero(valid.any(axis=0))
    if rows.size == 0:
        inside = " inside the aoi" if aoi is not None else ""
        raise InputError(f"{raster}: every pixel{inside} is nodata or masked; train on rasters with imagery in them")
    ys, xs = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
    region = Region(name or raster, image[:, ys, xs].copy(), label[ys, xs].copy(), valid[ys, xs].copy(), base_gsd_m,
                    chip_gsd_m)
    if not region.has_buildings:
        warn_unlabelled(raster, labels, validation)
    return region


_NONE = np.float32(2**25)  # "no building" for minima: above every instance id, exact in float32


def _extremes(values: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Maximum and minimum over each pixel's ``size`` x ``size`` window, the window cut at the array's
    edges (the same as scipy's ``maximum_filter``/``minimum_filter``; OpenCV's morphology is ~6x faster).
    ``values`` must be exact in float32: instance ids below 2**24 (and the sentinel ``_NONE``)."""
    import cv2

    kernel = np.ones((size, size), np.uint8)
    f = np.ascontiguousarray(values, dtype=np.float32)
    return cv2.dilate(f, kernel), cv2.erode(f, kernel)


def gap_mask(instances: np.ndarray, width: int = 2) -> np.ndarray:
    """Background pixels with two different buildings within ``width`` pixels: the narrow gaps
    between touching or nearly touching buildings (uint8 0/1)."""
    size = 2 * width + 1
    hi, _ = _extremes(instances, size)
    _, lo = _extremes(np.where(instances > 0, instances.astype(np.float32), _NONE), size)
    return ((instances == 0) & (lo < _NONE) & (hi != lo)).astype(np.uint8)


TARGETS = ("building", "border", "gap")


def instance_targets(instances: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` of building / border / gap target masks of an instance raster: uint8 ``(n, Y, X)``."""
    makers = (lambda i: (i > 0).astype(np.uint8), border_mask, gap_mask)
    return np.stack([make(instances) for make in makers[:n]])


def border_mask(instances: np.ndarray, width: int = 1) -> np.ndarray:
    """Pixels of a building within ``width`` pixels of another instance or of background:
    the outline and the shared walls between touching buildings (uint8 0/1)."""
    hi, lo = _extremes(instances, 2 * width + 1)
    return ((hi != lo) & (instances > 0)).astype(np.uint8)
