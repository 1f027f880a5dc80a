"""The run plan: which grids, how many tiles, and what it will cost (no torch, no pixel reads)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from geoseg import georef
from geoseg.config import SegmentConfig
from geoseg.engine.tta import check_scales
from geoseg.engine.tta import passes as tta_passes
from geoseg.errors import ConfigError, GsdWarning, InputError, InputWarning
from geoseg.grid import RasterGrid
from geoseg.io.raster import RasterInfo
from geoseg.models.card import ModelCard
from geoseg.tiling import TileGrid, aligned_window, column_blocks

FAR_OUT_OF_RANGE = 4.0  # a native GSD this many times coarser than the valid range is refused
SLACK = 1.02  # a measured native GSD within 2 % of the valid range counts as inside it (UTM scale, rounding)
IMPLAUSIBLY_FINE = 100.0  # a native GSD this many times finer than the valid range is a wrong CRS unit or transform
# Peak memory (docs/benchmarks.md, "What plan estimates"): activations per input pixel of a batch (Sci-Net-sized), and
# the vectorizer's bytes per pixel of its window
ACTIVATION_FLOATS = 80
VECTORIZE_BYTES_PER_PX = 70
MIN_WORK_PIXELS = 16  # a working grid this small (a tiny raster, a far too coarse --gsd) has nothing to segment
# The time estimate's parts besides the model (measured on the 2-core CPU, docs/benchmarks.md, "What plan estimates"):
STARTUP_S = 5.0  # a CLI run's imports (torch, smp, geopandas), model build and first-pass warm-up
VECTORIZE_S_PER_MP = 0.4  # tracing footprints, per working-grid megapixel of a dense town


@dataclass(frozen=True)
class Plan:
    input_grid: RasterGrid
    work_grid: RasterGrid  # metric grid at the model's GSD: the model runs here
    out_grid: RasterGrid  # where probability outputs land (input grid, or --dst-crs)
    tiles: TileGrid
    native_gsd_m: float
    work_gsd_m: float
    n_channels: int
    est_peak_bytes: int
    est_seconds: float | None  # the model's passes over the tiles run, at the card's measured speed
    block_width: int  # working-grid columns per column block (bounds memory)
    aoi: object = None  # the area of interest in the working CRS (shapely), or None: the whole raster
    region: object = None  # the aoi plus its margin: where the model's output is kept
    run_tiles: frozenset | None = None  # ``(row, col)`` of the tiles whose read window reaches the region; None: all

    @property
    def tiles_to_run(self) -> int:
        return len(self.tiles) if self.run_tiles is None else len(self.run_tiles)

    def runs(self, index: tuple[int, int]) -> bool:
        """Whether the tile ``(row, col)`` has pixels to keep (the others are neither read nor predicted)."""
        return self.run_tiles is None or index in self.run_tiles

    @property
    def resampled(self) -> bool:
        """Whether the model runs on a grid other than (a pixel-aligned part of) the input's."""
        return self.work_grid.offset_in(self.input_grid) is None

    def describe(self) -> dict:
        t = self.tiles
        return {
            "input_shape_yx": list(self.input_grid.shape_yx), "input_crs": str(self.input_grid.crs),
            "native_gsd_m": round(self.native_gsd_m, 4), "work_gsd_m": self.work_gsd_m,
            "work_crs": str(self.work_grid.crs), "work_shape_yx": list(self.work_grid.shape_yx),
            "resampled": self.resampled, "output_crs": str(self.out_grid.crs),
            "tile_size": t.tile_size, "overlap": t.overlap, "tiles": len(t), "tile_rows": t.n_rows,
            "tile_cols": t.n_cols, "column_blocks": len(column_blocks(t, self.block_width)), "work_megapixels": round(self.work_grid.width * self.work_grid.height / 1e6, 2),
            "est_peak_memory_mb": round(self.est_peak_bytes / 2**20), **self._time_estimate(),
            **({} if self.aoi is None else {"aoi_area_m2": round(self.aoi.area, 1), "region_area_m2": round(self.region.area, 1),
                                            "tiles_in_aoi": self.tiles_to_run}),
        }


    def _time_estimate(self) -> dict:
        """``est_seconds``: a whole CLI run's wall time (start-up, the model's passes, footprints); ``est_model_seconds``:
        the model's part, which scales with the passes (``--tta``, ``--tta-scales``). None: no measured speed."""
        if self.est_seconds is None:
            return {"est_seconds": None, "est_model_seconds": None}
        share = 1.0 if self.run_tiles is None else len(self.run_tiles) / max(1, len(self.tiles))
        total = STARTUP_S + self.est_seconds + share * self.work_grid.width * self.work_grid.height / 1e6 * VECTORIZE_S_PER_MP
        return {"est_seconds": float(f"{total:.3g}"), "est_model_seconds": float(f"{self.est_seconds:.3g}")}


def check_run_gsd(card: ModelCard, cfg: SegmentConfig) -> None:
    """A GSD given in metres must lie in the model's valid range (unless the config allows any)."""
    lo, hi = card.gsd_valid_m
    if cfg.gsd_m not in (None, "native") and not lo <= cfg.gsd_m <= hi and not cfg.allow_any_gsd:
        raise ConfigError(f"--gsd {cfg.gsd_m} m is outside model {card.name!r}'s valid range {lo}-{hi} m; pick a value inside it")


def _work_gsd(card: ModelCard, cfg: SegmentConfig, native: float, path: str) -> float:
    lo, hi = card.gsd_valid_m
    if cfg.gsd_m == "native":  # run where the input is, resampling only into the valid range
        if not lo / SLACK <= native <= hi * SLACK:
            warnings.warn(f"{path}: ground resolution {native:.3f} m is outside model {card.name!r}'s valid range {lo}-{hi} m; "
                          f"running at {round(min(max(native, lo), hi), 4)} m", GsdWarning, stacklevel=3)
        return round(min(max(native, lo), hi), 4)
    if cfg.gsd_m is not None:
        check_run_gsd(card, cfg)
        return float(cfg.gsd_m)
    if native > hi * FAR_OUT_OF_RANGE:
        raise InputError(f"{path} has a ground resolution of {native:.2f} m, far coarser than model {card.name!r} supports ({lo}-{hi} m); use finer imagery or another model")
    if native > hi * SLACK:  # finer input is only averaged down to the model's GSD: nothing is lost, so no warning
        warnings.warn(f"{path}: ground resolution {native:.3f} m is coarser than model {card.name!r}'s valid range {lo}-{hi} m; "
                      "results may be poor: use finer imagery or a model trained for it", GsdWarning, stacklevel=3)
    return card.gsd_m


def throughput(card: ModelCard, cfg: SegmentConfig) -> float | None:
    """The card's measured working-grid MP/s for how this run will compute (None: not measured that way).

    ``throughput_mps`` keys: ``cpu`` (bf16 autocast on a CPU with native bf16), ``cpu_fp32`` (a CPU without it, or
    ``--precision fp32``), ``cuda``. Decided from the CPU flags: planning does not import torch, so ``--device
    auto`` is planned as CPU. Emulated bf16 (asked for on a CPU without it) has no estimate: it is far slower.
    """
    from geoseg.engine.device import cpu_flags_bf16

    measured = card.raw.get("throughput_mps", {})
    if cfg.device == "cuda":
        return measured.get("cuda")
    native = cpu_flags_bf16()
    if cfg.precision == "bf16" and native is False:
        return None
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and native is not False)
    return measured.get("cpu" if bf16 else "cpu_fp32")


def _out_grid(grid: RasterGrid, dst_crs: str | None) -> RasterGrid:
    if dst_crs is None:
        return grid
    from affine import Affine
    from rasterio.warp import calculate_default_transform, transform_bounds

    crs = georef.parse_crs(dst_crs)
    georef.check_representable(grid, crs, dst_crs)
    g, (w, h) = grid, (grid.width, grid.height)
    t = g.transform
    if t.b or t.d:  # rotated or sheared: a north-up grid over its bounds with pixels of the same area, not coarser ones
        px = math.sqrt(abs(t.determinant))
        left, bottom, right, top = g.bounds
        w, h = max(1, round((right - left) / px)), max(1, round((top - bottom) / px))
    # the wrapped CRS: across the antimeridian, longitudes run on past 180 (as in rasters gdalwarp writes there)
    wrapped = georef.wrapped_crs(crs, g)
    transform, w, h = calculate_default_transform(g.crs, wrapped, w, h, *g.bounds)
    # GDAL's pixel size, but the bounds from transforming the edges: GDAL's suggested extent can land hundreds of
    # metres off where the CRS is far outside its area of use (EPSG:2056 over Nepal), away from the footprints
    left, bottom, right, top = transform_bounds(g.crs, wrapped, *g.bounds, densify_pts=21)
    xres, yres = transform.a, -transform.e
    w, h = max(1, math.ceil((right - left) / xres - 1e-6)), max(1, math.ceil((top - bottom) / yres - 1e-6))
    # Across the antimeridian a projected CRS can jump there (EPSG:3857: x from +20,037 km to -20,037 km): its
    # bounds then hold the whole world (or are inverted), and GDAL's pixels are 141 km wide.
    georef.check_not_torn(g, wrapped, dst_crs, inverted=not left < right)
    return RasterGrid((h, w), Affine(xres, 0.0, left, 0.0, -yres, top), crs)



def _crop(grid: RasterGrid, work: RasterGrid, aoi, margin_m: float, tile: int, overlap: int):
    """``(work grid, input-CRS output grid, aoi, region)`` for an ``aoi`` (in ``grid``'s CRS). The region is the aoi
    plus ``margin_m``; the working grid, the part of ``work`` covering it, snapped to the whole raster's tiles (so the
    region gets the values a run over the whole raster would give it); the output grid, the part of ``grid``
    covering the aoi. The aoi and region are in ``work``'s (metric) CRS."""
    from geoseg.aoi import to_crs

    area = to_crs(aoi, grid.crs, work.crs)
    region = area.buffer(margin_m) if margin_m > 0 else area
    win = work.window_covering(region.bounds)
    if win is None:  # read_aoi cut the aoi to the raster, whose working grid covers it: not expected
        raise InputError("the aoi lies off the raster's working grid; draw it over the raster")
    cropped = work[aligned_window(win, work.shape_yx, tile, overlap)]
    if work.offset_in(grid) is not None:
        return cropped, work[work.window_covering(area.bounds)], area, region
    from rasterio.warp import transform_bounds

    out = grid.window_covering(transform_bounds(work.crs, georef.wrapped_crs(grid.crs, grid), *area.bounds,
                                                densify_pts=21))  # longitudes past 180 where the grid's are
    return cropped, grid[out], area, region


def make_plan(info: RasterInfo, card: ModelCard, cfg: SegmentConfig, aoi=None) -> Plan:
    """The plan for ``info``; ``aoi`` (a shapely geometry in the input's CRS, :func:`geoseg.aoi.read_aoi`) limits
    the run to it plus ``cfg.aoi_margin_m``."""
    native = georef.ground_gsd_m(info.grid)
    lo = card.gsd_valid_m[0]
    if native < lo / IMPLAUSIBLY_FINE:
        raise InputError(f"{info.path} has a ground resolution of {native:.3g} m, implausibly fine for imagery; check "
                         "its CRS units and geotransform (e.g. gdalinfo), and fix them with gdal_edit.py -a_srs / -a_ullr")
    gsd = _work_gsd(card, cfg, native, info.path)
    work = georef.work_grid(info.grid, gsd)
    _check_size(info, work, gsd, native, lo)
    tile = card.tile_size if cfg.tile_size is None else cfg.tile_size
    overlap = card.overlap if cfg.overlap is None else cfg.overlap
    if tile < 32 or tile % 32:
        raise ConfigError(f"--tile-size {tile} must be a positive multiple of 32 (e.g. {card.tile_size}, the card's)")
    try:
        TileGrid(work.shape_yx, tile, overlap)  # checks tile and overlap before they snap an aoi's window
    except ValueError as exc:
        raise ConfigError(f"invalid tiling: {exc}") from None
    out, area, region = info.grid, None, None
    if aoi is not None:
        work, out, area, region = _crop(info.grid, work, aoi, cfg.aoi_margin_m, tile, overlap)
    tiles = TileGrid(work.shape_yx, tile, overlap)
    k = len(card.outputs)
    width = min(work.width, cfg.block_width + 2 * tile)
    peak = (4 * tile * width * (card.bands + 1)  # row super-windows in the queue, in flight and batched
            + (k * 4 + 5) * tile * width  # stitcher accumulators
            + cfg.batch_size * tile * tile * 4 * ACTIVATION_FLOATS * max(1.0, max(check_scales(cfg.tta_scales))) ** 2
            + VECTORIZE_BYTES_PER_PX * _vectorize_window_px(work, cfg)  # tracing and splitting footprints, after
            + 450 * 2**20)  # interpreter, torch, GDAL cache
    _warn_memory(int(peak), tile, cfg.batch_size)
    mps = throughput(card, cfg)
    passes = tta_passes(cfg.tta, cfg.tta_scales)  # forward-pass cost per tile, in plain passes
    run = None if region is None else tiles_touching(tiles, work, region)
    share = 1.0 if run is None else len(run) / max(1, len(tiles))  # the card's speed is per working-grid megapixel
    est = None if not mps else share * work.width * work.height * passes / 1e6 / mps
    return Plan(info.grid, work, _output_grid(info.grid, out, cfg.dst_crs, work, area), tiles, native, gsd, k, int(peak),
                est, cfg.block_width, area, region, run)


def _output_grid(grid: RasterGrid, out: RasterGrid, dst_crs: str | None, work: RasterGrid, area) -> RasterGrid:
    """Where the probabilities land: ``out`` (the input grid, or its part covering the aoi), or in ``dst_crs`` the
    whole input's output grid, cut to the aoi: so area runs are pixel-aligned with each other and with a whole run."""
    if dst_crs is None or area is None:
        return _out_grid(out, dst_crs)
    from rasterio.warp import transform_bounds

    full = _out_grid(grid, dst_crs)
    win = full.window_covering(transform_bounds(work.crs, georef.wrapped_crs(full.crs, full), *area.bounds,
                                                densify_pts=21))
    return full if win is None else full[win]


def _vectorize_window_px(work: RasterGrid, cfg: SegmentConfig) -> int:
    """Pixels of the vectorizer's largest read: its block window (band rows plus two halos a side), or the grid."""
    v = cfg.vectorize
    side = v.band_rows + 2 * max(1, v.halo_rows)
    return min(work.height, side) * min(work.width, side)


def _warn_memory(peak: int, tile: int, batch: int) -> None:
    """Warn when the estimated peak memory exceeds this machine's RAM (a --tile-size or --batch-size far too large)."""
    import os

    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not a POSIX system
        return
    if peak > ram > 0:
        warnings.warn(f"the run needs about {peak / 2**30:.1f} GiB, more than this machine's {ram / 2**30:.1f} GiB of "
                      f"memory; lower --tile-size ({tile}) or --batch-size ({batch})", InputWarning, stacklevel=3)


def _check_size(info: RasterInfo, work: RasterGrid, gsd: float, native: float, lo: float) -> None:
    """A working grid of at most :data:`MIN_WORK_PIXELS` pixels is refused before any model loads."""
    if work.height * work.width > MIN_WORK_PIXELS:
        return
    finer = max(lo, native)
    more = (work.height * gsd / finer) * (work.width * gsd / finer) > MIN_WORK_PIXELS
    advice = (f"run it at a finer GSD (--gsd {finer:.3g})" if finer < gsd and more else
              f"it covers only {info.grid.width * native:.3g} x {info.grid.height * native:.3g} m; pass a larger raster")
    raise InputError(f"{info.path} is only {work.height}x{work.width} pixels at {gsd:g} m, too few to segment; {advice}")


def tiles_touching(tiles: TileGrid, work: RasterGrid, region) -> frozenset[tuple[int, int]]:
    """The ``(row, col)`` of the tiles whose read windows (on ``work``) reach ``region`` (a geometry in ``work``'s
    CRS) with their pixel centres' box. No pixel centre of the others lies in the region, so they have nothing to keep
    (a sliver of the region between pixel centres may add a tile whose pixels all lie outside)."""
    import numpy as np
    import shapely

    h = 0.5  # pixel centres
    cr = np.array([(c, r) for t in tiles for c, r in (
        (t.read.col_off + h, t.read.row_off + h), (t.read.col_end - h, t.read.row_off + h),
        (t.read.col_off + h, t.read.row_end - h), (t.read.col_end - h, t.read.row_end - h))])
    t = work.transform
    x = (t.a * cr[:, 0] + t.b * cr[:, 1] + t.c).reshape(-1, 4)
    y = (t.d * cr[:, 0] + t.e * cr[:, 1] + t.f).reshape(-1, 4)
    boxes = shapely.box(x.min(1), y.min(1), x.max(1), y.max(1))  # a rotated grid's tiles: their bounding boxes
    shapely.prepare(region)
    hit = shapely.intersects(region, boxes)
    return frozenset(t.index for t, h in zip(tiles, hit) if h)


def plan_for(input_path: str, card: ModelCard, cfg: SegmentConfig) -> tuple[RasterInfo, Plan]:
    """Inspect ``input_path`` and plan the run; reads ``cfg.aoi`` when given (one-line errors on bad input)."""
    from geoseg.aoi import read_aoi
    from geoseg.io.raster import inspect_raster

    info = inspect_raster(input_path, card.bands, cfg.bands)
    return info, make_plan(info, card, cfg, read_aoi(cfg.aoi, info.grid, input_path) if cfg.aoi else None)


def describe_plan(input_path: str, card: ModelCard, cfg: SegmentConfig) -> dict:
    """What ``geoseg plan`` prints: the plan, and the share of valid input pixels (``valid_fraction``; sampled on
    large rasters). An input with no valid pixel fails here as ``segment`` would, before any work."""
    from geoseg.io.raster import valid_fraction

    missing = card.weights_problem()  # a missing file only: hashing large weights would make planning slow
    if missing:
        warnings.warn(f"{missing} (`geoseg segment` would stop there)", UserWarning, stacklevel=2)
    info, plan = plan_for(input_path, card, cfg)
    share, exact = valid_fraction(info)
    if share == 0.0 and exact:
        raise InputError(f"{input_path} has no valid pixels (all nodata or masked); nothing to segment")
    if share == 0.0:
        warnings.warn(f"{input_path}: no valid pixel in a sample of the raster (nodata or masked almost everywhere); "
                      "segment may find nothing to run on", InputWarning, stacklevel=2)
    return {"model": card.name, "bands": list(info.bands), **plan.describe(), "valid_fraction": round(share, 3)}
