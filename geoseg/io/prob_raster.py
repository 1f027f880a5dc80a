"""Probability rasters: writing them (uint8 0..255 bands plus an internal validity mask, tiled, DEFLATE or ZSTD,
written window by window, optionally finished as a COG) and reading them back (their bands, values and the
settings of the run that wrote them)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from geoseg.config import VectorizeConfig
from geoseg.errors import InputError, OutputFormatError
from geoseg.grid import RasterGrid
from geoseg.io.atomic import atomic_output, check_writable_dir, close_checked, gdal_failures, quiet_libtiff, write_errors
from geoseg.progress import NullProgress, Progress, check_cancel
from geoseg.window import PixelWindow

RASTER_EXTENSIONS = (".tif", ".tiff")
COLS_PER_STEP = 4096


def check_raster_output(path: Path) -> None:
    if path.suffix.lower() not in RASTER_EXTENSIONS:
        raise OutputFormatError(f"probability output {path} must end in .tif or .tiff (GeoTIFF)")
    check_writable_dir(path)


def _warp_scale(src, out_grid: RasterGrid) -> dict[str, float]:
    """GDAL's XSCALE/YSCALE (output pixels per source pixel) for one fixed resampling kernel: left to GDAL, the
    kernel follows each chunk's extent, and an aoi run's cropped output differed from the whole run's by up to 11
    of 255 levels where the working grid is finer than the output."""
    from geoseg.georef import ground_gsd_m

    try:
        scale = ground_gsd_m(RasterGrid((src.height, src.width), src.transform, src.crs)) / ground_gsd_m(out_grid)
    except Exception:  # noqa: BLE001 - GDAL's own choice then
        return {}
    return {"XSCALE": scale, "YSCALE": scale}


def write_probability(src_path: Path, out_path: Path, out_grid: RasterGrid, n_bands: int, *, compress: str = "deflate",
                      cog: bool = False, tags: dict[str, str] | None = None, progress: Progress | None = None,
                      rows_per_step: int = 1024, valid_path: Path | None = None,
                      band_names: tuple[str, ...] | None = None, within=None) -> Path:
    """Copy (or warp, if ``out_grid`` is not ``src_path``'s grid or a part of it) bands ``1..n_bands`` of ``src_path``
    into ``out_path``.

    Validity comes from ``src_path``'s mask; when warping, from band 1 of ``valid_path``
    (0/255) if given, since GDAL's warper ignores per-dataset mask bands of VRTs. ``within`` (a shapely geometry
    in ``out_grid``'s CRS): pixels whose centre lies outside it are written as nodata too.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    from geoseg.georef import wrapped_crs

    progress = progress or NullProgress()
    out_path = Path(out_path)
    check_raster_output(out_path)
    profile = dict(driver="GTiff", width=out_grid.width, height=out_grid.height, count=n_bands, dtype="uint8",
                   crs=out_grid.crs, transform=out_grid.transform, tiled=True, blockxsize=512, blockysize=512,
                   compress=compress, predictor=2, BIGTIFF="IF_SAFER",  # no NUM_THREADS: see below
                   **({"ZLEVEL": 4} if compress == "deflate" else {"ZSTD_LEVEL": 6}))
    # GDAL's multi-threaded compression (NUM_THREADS) printed 'ERROR 1: ... Bad value 1 for "ExtraSamples"'
    # for masked multi-band outputs (5 writes in 8 in a standalone repro, data intact) and saved little time here.
    # A failed write (disk full, quota, ...) is one OutputError line (write_errors) and leaves no file: the temp file
    # is removed by atomic_output. quiet_libtiff keeps libtiff's own "No space left on device." lines off stderr.
    with quiet_libtiff(), rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(src_path) as src, \
            atomic_output(out_path) as tmp:
        offset = out_grid.offset_in(RasterGrid((src.height, src.width), src.transform, src.crs))
        same = offset is not None  # the source's own pixels (all, or a part at ``offset``): copied as they are
        warp = {"crs": wrapped_crs(out_grid.crs, out_grid), "transform": out_grid.transform, "width": out_grid.width,
                "height": out_grid.height}  # wrapped: an output grid past 180 degrees is filled there too
        reader = src if same else WarpedVRT(src, resampling=Resampling.bilinear, **warp, **_warp_scale(src, out_grid))
        vsrc = None if same or valid_path is None else rasterio.open(valid_path)
        vreader = None if vsrc is None else WarpedVRT(vsrc, resampling=Resampling.nearest, **warp)
        dst = None
        try:
            with write_errors(out_path, tmp):
                dst = rasterio.open(tmp, "w", **profile)
            steps = [PixelWindow(r0, c0, min(rows_per_step, out_grid.height - r0), min(COLS_PER_STEP, out_grid.width - c0))
                     for r0 in range(0, out_grid.height, rows_per_step) for c0 in range(0, out_grid.width, COLS_PER_STEP)]
            progress.update(0, len(steps) + 1, "write probability")
            for i, step in enumerate(steps):  # 2-D windows: memory does not grow with the raster's width
                check_cancel(progress)
                win = step.to_rasterio()
                rwin = PixelWindow(step.row_off + offset[0], step.col_off + offset[1], *step.shape_yx).to_rasterio() if same else win
                data = reader.read(indexes=list(range(1, n_bands + 1)), window=rwin)
                mask = reader.dataset_mask(window=rwin) if vreader is None else vreader.read(1, window=win)
                if within is not None:
                    from geoseg.aoi import mask as area_mask

                    mask = np.where(area_mask(within, out_grid.window_transform(step), step.shape_yx), mask, 0)
                data[:, mask == 0] = 0
                with write_errors(out_path, tmp):  # only the writes: a read error is not the output's fault
                    dst.write(data, window=win)
                    dst.write_mask(np.where(mask > 0, 255, 0).astype(np.uint8), window=win)
                progress.update(i + 1, len(steps) + 1, "write probability")  # the last step: the flush at close
            with write_errors(out_path, tmp):
                dst.update_tags(**(tags or {}))
                for b in range(1, n_bands + 1):
                    # the output's name ("building", "border"): `geoseg vectorize` finds the border band by it
                    dst.set_band_description(b, band_names[b - 1] if band_names else "probability")
            close_checked(dst, out_path, tmp)  # most of the file is written here (GDAL flushes its cache)
            progress.update(len(steps) + 1, len(steps) + 1, "write probability")
        finally:
            if dst is not None and not dst.closed:  # after an error: the temp file is discarded, its flush errors too
                with contextlib.suppress(Exception):  # the first error is the one to report
                    dst.close()
            for handle in (vreader, vsrc) + ((reader,) if reader is not src else ()):
                if handle is not None:
                    handle.close()
        if cog:
            _to_cog(tmp, compress, out_path)
    return out_path


def _to_cog(path: Path, compress: str, out_path: Path) -> None:
    """Rewrite ``path`` (the temporary file of ``out_path``, named in errors) as a cloud-optimized GeoTIFF."""
    import rasterio
    from rasterio.shutil import copy as rio_copy

    cog = path.with_name(path.stem + ".cog" + path.suffix)
    try:
        with gdal_failures(out_path, cog), rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
            rio_copy(str(path), str(cog), driver="COG", COMPRESS=compress.upper(), PREDICTOR="YES", OVERVIEWS="AUTO", BIGTIFF="IF_SAFER")
        cog.replace(path)
    finally:
        if cog.exists():
            cog.unlink()


def check_bands(ds, cfg: VectorizeConfig) -> None:
    bands = [1, *separator_bands(cfg.boundary_band)]
    for band in bands:
        if not 1 <= band <= ds.count:
            raise InputError(f"{ds.name} has {ds.count} band(s); band {band} does not exist, check boundary_band")
        dtype = np.dtype(ds.dtypes[band - 1])
        if dtype != np.uint8 and dtype.kind != "f":
            raise InputError(f"band {band} of {ds.name} is {dtype}; expected uint8 (0..255) or float (0..1) probability")


def described_separators(ds) -> tuple[int, ...] | None:
    """1-based bands of an open probability raster described as a separator output (``border``, ``gap``), as
    ``geoseg segment --prob`` writes them; None if it has none. Vectorizing with them splits as segment does."""
    from geoseg.models.card import SEPARATORS

    return tuple(i + 1 for i, d in enumerate(ds.descriptions) if d in SEPARATORS) or None


def refuse_imagery(ds, path, hint: str) -> None:
    """A one-line error if the open raster ``ds`` is plainly imagery rather than a probability raster.

    Imagery here means three or more bands, none with a description and no ``model`` tag: every probability
    raster geoseg writes describes its bands (``building``, ``border``, ... or ``probability``). A single- or
    two-band raster from another tool is taken as a probability. ``hint`` says what to run instead.
    """

    if ds.count >= 3 and not any(ds.descriptions) and "model" not in ds.tags():
        raise InputError(f"{path} looks like imagery ({ds.count} bands, none described as a probability), not a "
                         f"probability raster; {hint}")


# The footprint rules a run records in its probability raster's ``settings`` tag and vectorizing it reuses
RUN_RULES = ("min_area_m2", "min_part_m2", "simplify_m", "regularize", "regularize_min_iou", "split_touching")


def settings_from_raster(path, cfg: VectorizeConfig, imagery_hint: str | None = None,
                         given: frozenset[str] | set[str] | None = None) -> tuple[VectorizeConfig, dict]:
    """``cfg`` completed from what a ``geoseg segment --prob`` raster says, and the raster's tags.

    A threshold or border cut left unset becomes the one of the run that wrote the raster (its ``settings``
    tag). ``given`` (the fields of ``cfg`` its caller set; None: only those two are taken): the run's other
    footprint rules (:data:`RUN_RULES`: minimum area and part, simplification, squaring, splitting) replace the
    fields not given, so the footprints follow the rules of the run unless told otherwise. With splitting on and no
    ``boundary_band`` given, the bands described as ``border``/``gap`` become the separators, so footprints split
    as ``geoseg segment`` splits them. Imagery given instead is refused (:func:`refuse_imagery`), ``imagery_hint``
    saying what to run instead. Values a hand-edited tag makes unusable are ignored.
    """
    import json
    from dataclasses import replace

    from geoseg.io.raster import open_raster

    with open_raster(path) as ds:
        refuse_imagery(ds, path, imagery_hint or f"segment it first (`geoseg segment {path} -o footprints.gpkg --prob prob.tif`)")
        tags = ds.tags()
        seps = described_separators(ds)
    try:
        written = json.loads(tags["settings"])["vectorize"]
    except (KeyError, ValueError, TypeError):
        written = {}
    for key in ("threshold", "border_cut"):
        value = written.get(key) if isinstance(written, dict) else None
        if getattr(cfg, key) is None and _usable_fraction(value):  # a tag edited by hand into text, NaN, 7: ignored
            cfg = replace(cfg, **{key: value})
    if given is not None and isinstance(written, dict):
        cfg = _with_run_rules(cfg, written, given)
    if cfg.split_touching and cfg.boundary_band is None and seps:
        cfg = replace(cfg, boundary_band=seps)
    return cfg, tags


def _with_run_rules(cfg: VectorizeConfig, written: dict, given) -> VectorizeConfig:
    from dataclasses import replace

    from geoseg.errors import ConfigError

    for key in RUN_RULES:
        if key in written and key not in given:
            try:
                cfg = replace(cfg, **{key: written[key]})
            except (ConfigError, TypeError):  # a value the config refuses (a hand-edited tag): the default stays
                pass
    return cfg


def _usable_fraction(value) -> bool:
    """A threshold or border cut a run could have written: a number in (0, 1]."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1


def separator_bands(boundary_band: int | tuple[int, ...] | None) -> tuple[int, ...]:
    """``VectorizeConfig.boundary_band`` as a tuple of 1-based bands (empty: none)."""
    if boundary_band is None:
        return ()
    return (boundary_band,) if isinstance(boundary_band, int) else tuple(boundary_band)


def read_window(ds, window: tuple[int, int, int, int], boundary_band: int | tuple[int, ...] | None):
    """``(band 1 values, valid, boundary band values)`` for raster rows ``[r0, r1)``, columns ``[c0, c1)``.

    uint8 bands stay uint8 (a quarter of the memory; see :class:`_Probability`),
    float bands become float32.
    """
    from rasterio.windows import Window

    r0, r1, c0, c1 = window
    win = Window(c0, r0, c1 - c0, r1 - r0)
    raw_yx = raw_values(ds.read(1, window=win))
    valid_yx = ds.dataset_mask(window=win) > 0
    if raw_yx.dtype != np.uint8:
        valid_yx &= np.isfinite(raw_yx)
    check_probability_values(raw_yx, valid_yx, ds.dtypes[0], ds.name)
    boundary_yx = None
    for band in separator_bands(boundary_band):  # border and gap: a pixel separates if either says so
        sep = raw_values(ds.read(band, window=win))
        boundary_yx = sep if boundary_yx is None else np.maximum(boundary_yx, sep)
    return raw_yx, valid_yx, boundary_yx


def check_probability_values(values_yx: np.ndarray, valid_yx: np.ndarray, dtype: str, path: str) -> None:
    """A one-line error for float values outside 0-1 (percentages, or 0-255 stored as float), which any threshold
    would misread. (Integer types other than uint8 are refused when the raster is opened.)"""

    if not np.issubdtype(np.dtype(dtype), np.floating):
        return
    v = values_yx[valid_yx]
    if v.size and (v.max() > 1.0 + 1e-4 or v.min() < -1e-4):
        raise InputError(f"{path} holds values from {v.min():g} to {v.max():g}; float probabilities must lie in "
                         "0-1: rescale it (e.g. divide by 255 or 100) first")


def raw_values(values_yx: np.ndarray) -> np.ndarray:
    return values_yx if values_yx.dtype == np.uint8 else values_yx.astype(np.float32, copy=False)
