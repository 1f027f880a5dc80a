"""Write a raster as imagery captured at a coarser ground resolution (GSD).

Used by the imagery-mode GSD sweep (:func:`geoseg.evaluate.sweep.gsd_sweep`): the input is
averaged onto a metric grid at the requested GSD, exactly as the engine's reader would resample
it (:class:`geoseg.io.raster.WorkReader`), and kept as a GeoTIFF so it can then be segmented like any
other input. Memory is bounded: strips of rows are read and written in turn.
"""

from __future__ import annotations

from pathlib import Path

from geoseg import georef
from geoseg.grid import RasterGrid
from geoseg.io.atomic import atomic_output
from geoseg.io.raster import WorkReader, inspect_raster
from geoseg.progress import NullProgress, check_cancel
from geoseg.window import PixelWindow

STRIP_ROWS = 512
STRIP_PIXELS = 1 << 24  # a strip holds at most this many pixels (about 64 MB with its mask), however wide the raster


def write_at_gsd(src: str | Path, gsd_m: float, dst: str | Path, n_bands: int = 3,
                 bands: tuple[int, ...] | None = None, progress=None) -> RasterGrid:
    """Write ``src``'s bands (the ones a model with ``n_bands`` inputs would get) to ``dst`` at ``gsd_m``.

    Pixels are averaged when ``gsd_m`` is coarser than the source and interpolated bilinearly when it is
    finer (which adds no detail). The output is uint8 (non-uint8 sources are scaled as the engine scales
    them), tiled, deflate-compressed, with an internal mask marking where the source had data. Returns the
    written grid. ``dst`` is whole or absent: it is written to a temporary file and renamed.
    ``progress`` sees the stage ``"degrade"`` strip by strip; cancelling it raises
    :class:`geoseg.errors.Cancelled` and leaves no ``dst``.
    """
    import numpy as np
    import rasterio

    progress = progress or NullProgress()
    info = inspect_raster(str(src), n_bands, bands)
    grid = georef.work_grid(info.grid, gsd_m)
    profile = {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": len(info.bands), "dtype": "uint8",
               "crs": grid.crs, "transform": grid.transform, "tiled": True, "blockxsize": 256, "blockysize": 256,
               "compress": "deflate", "predictor": 2, "BIGTIFF": "IF_SAFER"}
    with atomic_output(Path(dst)) as tmp, WorkReader(info, grid) as reader, \
            rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(tmp, "w", **profile) as out:
        rows = max(1, min(STRIP_ROWS, STRIP_PIXELS // grid.width))
        strips = range(0, grid.height, rows)
        for i, row in enumerate(strips):
            check_cancel(progress)
            win = PixelWindow(row, 0, min(rows, grid.height - row), grid.width)
            data, valid = reader.read(win)
            out.write(data, window=win.to_rasterio())
            out.write_mask(np.where(valid, 255, 0).astype(np.uint8), window=win.to_rasterio())
            progress.update(i + 1, len(strips), "degrade")
    return grid
