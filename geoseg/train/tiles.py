"""Training data read on the fly: engine tiles of a raster on its metric grid, labels rasterised per tile.

A :class:`TiledRegion` never holds a whole raster. It cuts the working grid (local
metric CRS at a base GSD) with the engine's :class:`~geoseg.tiling.TileGrid`, reads a
tile through the engine's :class:`~geoseg.io.raster.WorkReader` (bands, masks, nodata
and alpha handled as at inference), rasterises the labels that touch it, and keeps the
last few tiles in a small cache. Chips are cut from cached tiles; a new tile is read
now and then (``refresh``), so memory stays bounded and reads stay rare.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict

import numpy as np
from affine import Affine

from geoseg import georef
from geoseg.aoi import mask as area_mask
from geoseg.errors import InputError
from geoseg.grid import RasterGrid
from geoseg.tiling import Tile, TileGrid


def read_labels(path: str, crs, bounds: tuple[float, float, float, float] | None = None, what: str = "labels") -> list:
    """Label polygons of ``path`` (GeoJSON, GPKG, Parquet, ...) in ``crs``; empty ones, points and lines dropped.
    With ``bounds`` (in ``crs``), only those that touch them. The file is read once per CRS (a few are cached), so
    many rasters can share one label file."""
    import os

    import shapely

    st = os.stat(path) if os.path.exists(path) else None
    geoms = _labels_in(str(path), crs.to_wkt(), st and (st.st_size, st.st_mtime_ns), what)
    if bounds is None:
        return list(geoms)
    hits = shapely.STRtree(geoms).query(shapely.box(*bounds)) if len(geoms) else []
    return [geoms[i] for i in sorted(hits)]


@functools.lru_cache(maxsize=4)
def _labels_in(path: str, crs_wkt: str, stamp, what: str) -> tuple:
    from geoseg.io.vector import read_polygon_features

    return tuple(read_polygon_features(path, what).to_crs(crs_wkt).geometry)


def aoi_geoms(path: str, crs, bounds: tuple[float, float, float, float], raster: str) -> list:
    """The polygons of an entry's ``aoi`` file (the area where its labels are complete) that touch ``bounds``
    (in ``crs``); a one-line error if none does."""
    from geoseg.io.vector import polygonal

    geoms = [g for g in polygonal(read_labels(path, crs, bounds, "aoi")) if not g.is_empty]  # self-crossing outlines repaired
    if not geoms:
        raise InputError(f"no polygon of the aoi {path} lies on {raster}; draw the area where the labels are "
                         "complete over the raster (any CRS), or leave aoi out")
    return geoms


def warn_unlabelled(raster: str, labels: str, validation: bool = False) -> None:
    """Say that no label polygon lies on ``raster``: its chips would teach "no building" only (or, ``validation``,
    score every building the model finds there as a false alarm)."""
    import warnings

    from geoseg.errors import LabelWarning

    effect = ("validation there counts every building found as a false alarm" if validation
              else "its chips teach only 'no building'")
    warnings.warn(f"no polygon of {labels} lies on {raster}; {effect}. "
                  "If that is not meant, check that the labels cover the raster", LabelWarning, stacklevel=3)


class TiledRegion:
    """A labelled raster sampled tile by tile (see the module docstring)."""

    def __init__(self, raster: str, labels: str, base_gsd_m: float, tile_size: int, name: str | None = None,
                 cache_tiles: int = 8, refresh: float = 1 / 32, min_valid: float = 0.05,
                 chip_gsd_m: tuple[float, float] | None = None, n_bands: int = 3,
                 bands: tuple[int, ...] | None = None, aoi: str | None = None):
        import shapely
        from shapely import STRtree

        from geoseg.io.raster import inspect_raster

        self.name = name or raster
        self.gsd_m = base_gsd_m
        self.chip_gsd_m = chip_gsd_m  # the chip GSDs this region serves (None: all)
        self.info = inspect_raster(raster, n_bands, bands)  # the model's bands, picked as at inference
        crs = georef.metric_crs_for(self.info.grid)
        self.grid = georef.reproject_grid(self.info.grid, crs, base_gsd_m)
        self.tiles = TileGrid(self.grid.shape_yx, tile_size, 0)
        self.geoms = read_labels(labels, crs, self.grid.bounds)
        self.tree = STRtree(self.geoms)
        self.aoi = None if aoi is None else aoi_geoms(aoi, crs, self.grid.bounds, raster)
        where = shapely.box(*self.grid.bounds) if self.aoi is None else shapely.union_all(self.aoi)
        self.has_buildings = len(self.tree.query(where, predicate="intersects")) > 0
        if not self.has_buildings:
            warn_unlabelled(raster, labels)
        self.cache: OrderedDict[tuple[int, int], tuple] = OrderedDict()
        self.cache_tiles, self.refresh = cache_tiles, refresh
        fraction = self._valid_fraction_per_tile()
        fraction[fraction < min_valid] = 0
        if not fraction.any():
            rest = "nodata, masked or outside the aoi" if aoi is not None else "nodata or masked"
            raise InputError(f"{raster}: no tile of {tile_size} px is at least {min_valid:.0%} valid (the rest is {rest}); "
                             "train on rasters with imagery in them")
        # valid pixels per tile: an edge tile, or a raster smaller than a tile, counts its own pixels, not a whole
        # tile's (which over-sampled small rasters up to 4x against large ones)
        area = np.zeros_like(fraction)
        for t in self.tiles:
            area[t.index] = t.read.height * t.read.width
        self.tile_weights = fraction * area
        self.valid_pixels = float(self.tile_weights.sum())

    @property
    def n_bands(self) -> int:
        return len(self.info.bands)

    @property
    def max_crop(self) -> int:
        return min(self.tiles.tile_size, *self.grid.shape_yx)

    def _valid_fraction_per_tile(self) -> np.ndarray:
        """Valid fraction of each tile, from one read of the mask on a coarse copy of the grid."""
        from geoseg.io.raster import WorkReader
        from geoseg.window import PixelWindow

        k = max(1, self.tiles.tile_size // 32)
        h, w = self.grid.shape_yx
        coarse = RasterGrid((math.ceil(h / k), math.ceil(w / k)), self.grid.transform @ Affine.scale(k), self.grid.crs)
        with WorkReader(self.info, coarse) as reader:
            _, valid = reader.read(PixelWindow(0, 0, *coarse.shape_yx))
        if self.aoi is not None:
            valid &= area_mask(self.aoi, coarse.transform, coarse.shape_yx)
        out = np.zeros((self.tiles.n_rows, self.tiles.n_cols))
        for t in self.tiles:
            r = t.read
            out[t.index] = valid[r.row_off // k:-(-r.row_end // k), r.col_off // k:-(-r.col_end // k)].mean()
        return out

    def _load(self, tile: Tile):
        """``(image uint8 (C,Y,X), instances int32 (Y,X), valid bool (Y,X))`` of one tile."""
        from rasterio.features import rasterize
        from shapely.geometry import box

        from geoseg.io.raster import WorkReader

        with WorkReader(self.info, self.grid) as reader:
            image, valid = reader.read(tile.read)
        transform = self.grid.transform @ Affine.translation(tile.read.col_off, tile.read.row_off)
        x0, y1 = transform @ (0, 0)
        x1, y0 = transform @ (tile.read.width, tile.read.height)
        hits = self.tree.query(box(x0, y0, x1, y1))
        inst = np.zeros(tile.read.shape_yx, dtype=np.int32)
        if len(hits):
            inst = rasterize(((self.geoms[i], int(i) + 1) for i in hits), out_shape=tile.read.shape_yx,
                             transform=transform, dtype="int32")
        if self.aoi is not None:  # outside the area where the labels are complete nothing is taught
            valid &= area_mask(self.aoi, transform, tile.read.shape_yx)
        return image, inst, valid

    def clear_cache(self) -> None:
        """Forget the cached tiles: draws then depend on the generator alone (see ``ChipSampler.reseed``)."""
        self.cache.clear()

    def _tile(self, rng: np.random.Generator):
        if len(self.cache) < self.cache_tiles or rng.random() < self.refresh:
            p = self.tile_weights.ravel() / self.tile_weights.sum()
            idx = divmod(int(rng.choice(p.size, p=p)), self.tiles.n_cols)
            if idx not in self.cache:
                self.cache[idx] = self._load(self.tiles.tile(*idx))
                while len(self.cache) > self.cache_tiles:
                    self.cache.popitem(last=False)
            self.cache.move_to_end(idx)
            return self.cache[idx]
        keys = list(self.cache)
        return self.cache[keys[int(rng.integers(len(keys)))]]

    def draw(self, rng: np.random.Generator, crop: int):
        """A random ``crop`` x ``crop`` window ``(image, instances, valid)``, or None if it cannot fit."""
        if crop > self.max_crop:
            return None
        image, inst, valid = self._tile(rng)
        h, w = inst.shape
        if crop > h or crop > w:
            return None
        y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        return image[:, y:y + crop, x:x + crop], inst[y:y + crop, x:x + crop], valid[y:y + crop, x:x + crop]
