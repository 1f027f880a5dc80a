"""Opening and validating input rasters, and reading windows of a working grid.

:func:`inspect_raster` validates a path and describes it (no pixel decoding beyond
two probe blocks). :class:`WorkReader` reads windows of a *working grid* (the
grid the model runs on) as ``uint8 (C, Y, X)`` plus a validity mask, resampling
on the fly when the working grid differs from the raster's own.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np

from geoseg.errors import BandWarning, InputError, RasterNotFoundError, RasterReadError
from geoseg.grid import RasterGrid
from geoseg.window import PixelWindow


@dataclass(frozen=True)
class RasterInfo:
    """What geoseg needs to know about an input raster."""

    path: str
    grid: RasterGrid
    count: int
    dtype: str
    bands: tuple[int, ...]  # 1-based source bands fed to the model, in model order
    scale: tuple[tuple[float, float], ...] | None  # per model band (lo, hi) -> (0, 255); None for uint8


def open_raster(path: str | os.PathLike):
    """Open any GDAL raster; a missing or unreadable file raises a one-line RasterReadError."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    path = os.fspath(path)
    if not path.startswith("/vsi") and "://" not in path and not os.path.exists(path):
        raise RasterNotFoundError(f"input not found: {path}; check the path")
    try:
        with warnings.catch_warnings():  # a raster with no georeferencing is refused in one line by the caller
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except RasterioIOError as exc:
        msg = str(exc).splitlines()[0] if str(exc) else "unknown format"
        raise RasterReadError(f"{path} is not a readable raster ({msg}); pass a GeoTIFF or another GDAL raster") from None


def gdal_reason(exc: BaseException) -> str:
    """GDAL's own words for a read failure: the chained error when rasterio only says "see previous exception"
    (e.g. a VRT's source that is missing: ``gone.tif: No such file or directory``)."""
    cause = exc.__cause__ or exc.__context__
    text = str(cause if cause is not None and "previous exception" in str(exc) else exc)
    return (text.splitlines() or [type(exc).__name__])[0]


def _last_clauses(reason: str, keep: int = 2) -> str:
    """GDAL's reason without the outer layers it repeats (``IReadBlock failed at ...: f.tif, band 1: IReadBlock
    failed at ...: TIFFReadEncodedTile() failed.`` keeps the last two clauses)."""
    return ": ".join(reason.split(": ")[-keep:])


def _probe(ds, path: str) -> None:
    """Decode the first and last block so truncated or corrupt files fail now, not mid-run."""
    from rasterio.errors import RasterioError

    h, w = ds.height, ds.width
    for win in (PixelWindow(0, 0, min(h, 256), min(w, 256)), PixelWindow(max(0, h - 256), max(0, w - 256), min(h, 256), min(w, 256))):
        try:
            ds.read(1, window=win.to_rasterio())
        except RasterioError as exc:
            why = gdal_reason(exc)
            if ds.driver == "VRT" and "No such file" in why:
                raise RasterReadError(f"{path} is a VRT whose source is missing ({why}); restore the file or rebuild "
                                      "the VRT (gdalbuildvrt)") from None
            raise RasterReadError(f"{path} is corrupt or truncated ({why}); re-export or re-download it") from None


def _pick_bands(ds, n_model: int, requested: tuple[int, ...] | None, path: str) -> tuple[int, ...]:
    from rasterio.enums import ColorInterp

    if requested:
        bad = [b for b in requested if not 1 <= b <= ds.count]
        if bad or len(requested) != n_model:
            raise InputError(f"--bands {','.join(map(str, requested))} is invalid for {path} ({ds.count} bands); give {n_model} band numbers between 1 and {ds.count}")
        return tuple(requested)
    data = [i + 1 for i, ci in enumerate(ds.colorinterp) if ci != ColorInterp.alpha]
    if any(ds.colorinterp[b - 1] == ColorInterp.palette for b in data[:n_model]):
        raise InputError(f"{path} holds colour-table indices, not colours; expand it to RGB first, e.g. "
                         f"`gdal_translate -expand rgb {path} rgb.tif`")
    named = {ci: i + 1 for i, ci in reversed(list(enumerate(ds.colorinterp)))}  # the first band of each name
    rgb = (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
    if n_model == 3 and all(c in named for c in rgb):
        return tuple(named[c] for c in rgb)  # the file names its colours: use them in model order (e.g. BGR files)
    if len(data) > n_model == 3:
        warnings.warn(f"{path} has {len(data)} bands without red/green/blue names; bands "
                      f"{','.join(map(str, data[:n_model]))} are read as red, green, blue (choose others with --bands)",
                      BandWarning, stacklevel=3)
    if len(data) >= n_model:
        return tuple(data[:n_model])
    if len(data) == 1:
        warnings.warn(f"{path} has a single band; it is replicated to the model's {n_model} bands", BandWarning, stacklevel=3)
        return tuple(data * n_model)
    raise InputError(f"{path} has {len(data)} data bands but the model needs {n_model}; give a raster with {n_model} "
                     f"bands, or use (or train) a {len(data)}-band model (training: architecture.in_channels = "
                     f"{len(data)} and a normalization for each band)")


STRETCH_PERCENTILES = (0.5, 99.5)  # of all chosen bands' valid pixels together (docs/imagery_gsd.md, "Imagery that is not uint8")


def _scaling(ds, bands: tuple[int, ...]) -> tuple[tuple[float, float], ...] | None:
    """uint8 passes through. Other dtypes map one range, the 0.5th..99.5th percentile of every chosen band's valid
    pixels together (a decimated read), linearly onto 0..255, clipping outside. One range for all bands keeps the
    colour balance: the models do not tolerate a change of white balance, and a per-band stretch cost 0.03 pixel
    IoU on uint16/float copies of the held-out Banepa imagery (scripts/dtype_scaling.py)."""
    if all(ds.dtypes[b - 1] == "uint8" for b in bands):
        return None
    f = max(1, max(ds.height, ds.width) // 1024)
    shape = (max(1, ds.height // f), max(1, ds.width // f))
    mask = ds.dataset_mask(out_shape=shape) > 0
    v = np.concatenate([ds.read(b, out_shape=shape).astype(np.float64)[mask] for b in bands])
    v = v[np.isfinite(v)]
    lo, hi = (np.percentile(v, STRETCH_PERCENTILES) if v.size else (0.0, 1.0))
    lo, hi = float(lo), (float(hi) if hi > lo else float(lo) + 1.0)
    return tuple((lo, hi) for _ in bands)


def valid_fraction(info: RasterInfo, max_side: int = 2048, probes: int = 8, probe_px: int = 256) -> tuple[float, bool]:
    """``(share, exact)``: the share of ``info``'s pixels that are valid (not nodata, masked or NaN). A raster at
    most ``max_side`` pixels a side is read whole (``exact``). A larger one is estimated, cheaply enough for a dry
    run: from its overviews when it has them, else from ``probes`` x ``probes`` windows of ``probe_px`` pixels
    spread evenly over it (a decimated read of a file without overviews decodes every block)."""
    import rasterio
    from rasterio.enums import MaskFlags
    from rasterio.windows import Window

    h, w = info.grid.shape_yx
    with rasterio.Env(GDAL_CACHEMAX=64 * 2**20), open_raster(info.path) as ds:
        floats = any(ds.dtypes[b - 1][0] == "f" for b in info.bands)
        if not floats and all(ds.mask_flag_enums[b - 1] == [MaskFlags.all_valid] for b in info.bands):
            return 1.0, True  # no nodata, mask or alpha: nothing to read

        def valid(window=None, out_shape=None):
            ok = ds.dataset_mask(window=window, out_shape=out_shape) > 0
            for b in info.bands if floats else ():
                ok &= np.isfinite(ds.read(b, window=window, out_shape=out_shape))
            return ok

        if max(h, w) <= max_side:
            return float(valid().mean()), True
        if ds.overviews(info.bands[0]):
            f = -(-max(h, w) // 1024)
            return float(valid(out_shape=(max(1, h // f), max(1, w // f))).mean()), False
        ph, pw = min(probe_px, h), min(probe_px, w)
        rows = np.linspace(0, h - ph, probes).astype(int)
        cols = np.linspace(0, w - pw, probes).astype(int)
        return float(np.mean([valid(Window(c, r, pw, ph)).mean() for r in rows for c in cols])), False


def check_georeferenced(ds, path: str) -> None:
    """A one-line :class:`InputError` unless the open dataset ``ds`` has pixels, a CRS and a geotransform (a raster
    placed by ground control points only must be warped first)."""
    if ds.width == 0 or ds.height == 0 or ds.count == 0:
        raise InputError(f"{path} is empty ({ds.width}x{ds.height}, {ds.count} bands); pass a raster with pixels")
    if ds.crs is None and ds.gcps[0]:
        raise InputError(f"{path} is georeferenced by {len(ds.gcps[0])} ground control points only; warp it onto a "
                         f"grid first, e.g. `gdalwarp -r bilinear {path} warped.tif`")
    if ds.crs is None:
        raise InputError(f"{path} has no CRS; assign one first, e.g. `gdal_edit.py -a_srs EPSG:XXXX {path}`")
    if ds.transform.is_identity:
        raise InputError(f"{path} has no geotransform; georeference it first (e.g. gdal_translate -a_ullr or gdalwarp with GCPs)")


def inspect_raster(path: str, n_model_bands: int = 3, bands: tuple[int, ...] | None = None) -> RasterInfo:
    """Validate ``path`` and describe it; raises a one-line :mod:`geoseg.errors` error on bad input."""
    path = str(path)
    with open_raster(path) as ds:
        check_georeferenced(ds, path)
        _probe(ds, path)
        picked = _pick_bands(ds, n_model_bands, bands, path)
        if any(ds.dtypes[b - 1].startswith("complex") for b in picked):
            raise InputError(f"{path} holds complex numbers ({ds.dtypes[picked[0] - 1]}, e.g. radar), not image "
                             "brightness; convert it to amplitude first (gdal_translate -ot Float32 with a ModulusVRT "
                             "or gdal_calc)")
        return RasterInfo(path, RasterGrid((ds.height, ds.width), ds.transform, ds.crs), ds.count, ds.dtypes[0], picked, _scaling(ds, picked))


def to_uint8(data: np.ndarray, scale: tuple[tuple[float, float], ...] | None) -> np.ndarray:
    if scale is None:
        return data.astype(np.uint8, copy=False)
    lo = np.array([s[0] for s in scale], dtype=np.float32)[:, None, None]
    hi = np.array([s[1] for s in scale], dtype=np.float32)[:, None, None]
    out = (data.astype(np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(np.nan_to_num(out), 0, 255).round().astype(np.uint8)


# GDAL's warper approximates the pixel mapping to within this many source pixels (rasterio's default: 0.125). So
# small, a window reads the same values whatever grid it is part of (an --aoi run equals the whole run there); the
# default shifted 0.07 % of pixels by up to 44 levels between two such reads, and this cost no measurable time.
WARP_TOLERANCE_PX = 0.001


class WorkReader:
    """Reads windows of ``work`` (a grid over the same ground as the raster) from ``info``'s file.

    ``within`` (a shapely geometry in ``work``'s CRS): pixels whose centre lies outside it are not valid (the
    pixels are still read: a model sees them as context). Opens its own dataset handle: create one reader per
    thread. Use as a context manager.
    """

    def __init__(self, info: RasterInfo, work: RasterGrid, within=None):
        self.info, self.work, self.within = info, work, within
        self._ds = self._vrt = None
        self._alpha: int | None = None  # the warped alpha band, whose values are the validity
        self._offset = (0, 0)

    def __enter__(self) -> WorkReader:  # noqa: PYI034 - not subclassed; Self needs Python 3.11
        from rasterio.enums import ColorInterp, Resampling
        from rasterio.vrt import WarpedVRT

        self._ds = open_raster(self.info.path)
        offset = self.work.offset_in(self.info.grid)
        if offset is not None:  # the raster's own pixels (all of them, or a part): read them as they are
            self._src, self._offset = self._ds, offset
        else:
            from geoseg.georef import ground_gsd_m, wrapped_crs

            # the working grid is metric: average when it is coarser than the source, else bilinear
            coarser = min(self.work.res_xy) > 1.01 * ground_gsd_m(self.info.grid)
            wrapped = wrapped_crs(self.info.grid.crs, self.info.grid)  # longitudes past 180 stay there
            self._vrt = WarpedVRT(
                self._ds, **({} if wrapped == self.info.grid.crs else {"src_crs": wrapped}), crs=self.work.crs, transform=self.work.transform, width=self.work.width,
                height=self.work.height, resampling=Resampling.average if coarser else Resampling.bilinear, tolerance=WARP_TOLERANCE_PX,
                add_alpha=ColorInterp.alpha not in self._ds.colorinterp,  # an RGBA source's alpha is the mask already
            )
            self._src = self._vrt
            # validity from the warped alpha band itself: GDAL uses that band as the VRT's mask only for Byte and
            # UInt16 data, so float or Int16 imagery would read as valid everywhere (nodata segmented as black)
            alpha = [i + 1 for i, ci in enumerate(self._vrt.colorinterp) if ci == ColorInterp.alpha]
            self._alpha = alpha[-1] if alpha else None
        return self

    def __exit__(self, *exc) -> None:
        if self._vrt is not None:
            self._vrt.close()
        if self._ds is not None:
            self._ds.close()

    def read(self, window: PixelWindow) -> tuple[np.ndarray, np.ndarray]:
        """``(uint8 (C, Y, X), valid bool (Y, X))`` for ``window`` of the working grid."""
        from rasterio.errors import RasterioError

        win = PixelWindow(window.row_off + self._offset[0], window.col_off + self._offset[1], window.height,
                          window.width).to_rasterio()
        try:
            data = self._src.read(indexes=list(self.info.bands), window=win)
            if self._alpha is not None:
                valid = self._src.read(self._alpha, window=win) > 0
            else:
                valid = self._src.dataset_mask(window=win) > 0
        except RasterioError as exc:
            w = window
            raise RasterReadError(f"{self.info.path} could not be read for working-grid rows {w.row_off}-{w.row_end}, "
                                  f"columns {w.col_off}-{w.col_end} ({_last_clauses(gdal_reason(exc))}); the file may be "
                                  "corrupt or truncated: re-export or re-download it") from None
        if data.dtype.kind == "f":
            valid &= np.isfinite(data).all(axis=0)
        if self.within is not None:
            from geoseg.aoi import mask

            valid &= mask(self.within, self.work.window_transform(window), window.shape_yx)
        return to_uint8(data, self.info.scale), valid

