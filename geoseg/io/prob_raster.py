"""Write probability rasters: uint8 0..255 bands plus an internal validity mask, tiled,
DEFLATE or ZSTD, written window by window, optionally finished as a COG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geoseg.errors import OutputError
from geoseg.grid import RasterGrid
from geoseg.io.atomic import atomic_output, check_writable_dir
from geoseg.progress import NullProgress, Progress, check_cancel
from geoseg.window import PixelWindow

RASTER_EXTENSIONS = (".tif", ".tiff")
COLS_PER_STEP = 4096


def check_raster_output(path: Path) -> None:
    if path.suffix.lower() not in RASTER_EXTENSIONS:
        raise OutputError(f"probability output {path} must end in .tif or .tiff (GeoTIFF)")
    check_writable_dir(path)


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

    progress = progress or NullProgress()
    out_path = Path(out_path)
    check_raster_output(out_path)
    profile = dict(driver="GTiff", width=out_grid.width, height=out_grid.height, count=n_bands, dtype="uint8",
                   crs=out_grid.crs, transform=out_grid.transform, tiled=True, blockxsize=512, blockysize=512,
                   compress=compress, predictor=2, BIGTIFF="IF_SAFER",  # no NUM_THREADS: see below
                   **({"ZLEVEL": 4} if compress == "deflate" else {"ZSTD_LEVEL": 6}))
    # GDAL's multi-threaded compression (NUM_THREADS) printed 'ERROR 1: ... Bad value 1 for "ExtraSamples"'
    # for masked multi-band outputs (5 writes in 8 in a standalone repro, data intact) and saved little time here.
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(src_path) as src, atomic_output(out_path) as tmp:
        offset = out_grid.offset_in(RasterGrid((src.height, src.width), src.transform, src.crs))
        same = offset is not None  # the source's own pixels (all, or a part at ``offset``): copied as they are
        warp = {"crs": out_grid.crs, "transform": out_grid.transform, "width": out_grid.width, "height": out_grid.height}
        reader = src if same else WarpedVRT(src, resampling=Resampling.bilinear, **warp)
        vsrc = None if same or valid_path is None else rasterio.open(valid_path)
        vreader = None if vsrc is None else WarpedVRT(vsrc, resampling=Resampling.nearest, **warp)
        try:
            with rasterio.open(tmp, "w", **profile) as dst:
                steps = [PixelWindow(r0, c0, min(rows_per_step, out_grid.height - r0), min(COLS_PER_STEP, out_grid.width - c0))
                         for r0 in range(0, out_grid.height, rows_per_step) for c0 in range(0, out_grid.width, COLS_PER_STEP)]
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
                    dst.write(data, window=win)
                    dst.write_mask(np.where(mask > 0, 255, 0).astype(np.uint8), window=win)
                    progress.update(i + 1, len(steps), "write probability")
                dst.update_tags(**(tags or {}))
                for b in range(1, n_bands + 1):
                    # the output's name ("building", "border"): `geoseg vectorize` finds the border band by it
                    dst.set_band_description(b, band_names[b - 1] if band_names else "probability")
        finally:
            for handle in (vreader, vsrc) + ((reader,) if reader is not src else ()):
                if handle is not None:
                    handle.close()
        if cog:
            _to_cog(tmp, compress)
    return out_path


def _to_cog(path: Path, compress: str) -> None:
    import rasterio
    from rasterio.shutil import copy as rio_copy

    cog = path.with_name(path.stem + ".cog" + path.suffix)
    try:
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
            rio_copy(str(path), str(cog), driver="COG", COMPRESS=compress.upper(), PREDICTOR="YES", OVERVIEWS="AUTO", BIGTIFF="IF_SAFER")
        cog.replace(path)
    finally:
        if cog.exists():
            cog.unlink()
