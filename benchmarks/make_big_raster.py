"""Build big test rasters cheaply: one real tile, repeated by a GDAL VRT mosaic.

The base tile is ``sample_tiles/banepa_z20_crop_3857.tif`` (Web Mercator, ~0.13 m on
the ground) warped once to its UTM zone at 0.3 m (the default model's GSD) and
trimmed to fully valid pixels, so the engine runs on the raster's own grid and
does not resample; 4 x 4 mirrored copies of it (1224 x 1672 px) make the base tile.
An N x N raster is a VRT with one ``SimpleSource`` per copy of the base tile per band
(about 0.3 MB of XML at 20k, 1.8 MB at 50k).

    python benchmarks/make_big_raster.py --size 1k 2k 5k 10k 20k
    python benchmarks/make_big_raster.py --size 50k --out /data/bench      # larger
    python benchmarks/make_big_raster.py --size 5k --materialize            # real GeoTIFF copy

Caveat: every copy reads the same small file, so after the first pass its blocks
come from GDAL's block cache; reading is cheaper than from a real N x N GeoTIFF
(use ``--materialize`` to time decoding too; that one does write N^2 pixels).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA_DIR, REPO, parse_size, size_label

SAMPLE = REPO / "sample_tiles" / "banepa_z20_crop_3857.tif"
GSD_M = 0.3
BASE_REPEAT = 4  # the base tile is 4 x 4 mirrored copies of the warped sample: fewer VRT sources
BASE_NAME = f"base_banepa_utm_0.3m_x{BASE_REPEAT}.tif"


def _trim_to_valid(valid: np.ndarray) -> tuple[slice, slice]:
    """Shrink a rectangle from its edges until every pixel in it is valid."""
    r0, r1, c0, c1 = 0, valid.shape[0], 0, valid.shape[1]
    while r1 > r0 and c1 > c0:
        v = valid[r0:r1, c0:c1]
        bad = {"top": (~v[0]).sum(), "bottom": (~v[-1]).sum(), "left": (~v[:, 0]).sum(), "right": (~v[:, -1]).sum()}
        side = max(bad, key=bad.get)
        if bad[side] == 0:
            break
        if side == "top":
            r0 += 1
        elif side == "bottom":
            r1 -= 1
        elif side == "left":
            c0 += 1
        else:
            c1 -= 1
    return slice(r0, r1), slice(c0, c1)


def _mirror_tile(data: np.ndarray, n: int) -> np.ndarray:
    """``n x n`` copies of ``data`` (C, Y, X), every other one mirrored, so the seams are continuous."""
    row = np.concatenate([data if i % 2 == 0 else data[:, :, ::-1] for i in range(n)], axis=2)
    return np.concatenate([row if i % 2 == 0 else row[:, ::-1] for i in range(n)], axis=1)


def base_tile(out_dir: Path, compress: str = "jpeg") -> Path:
    """The sample tile in UTM at 0.3 m, all pixels valid, mirrored 4 x 4 (built once, then reused)."""
    import rasterio
    from affine import Affine
    from rasterio.enums import ColorInterp, Resampling
    from rasterio.vrt import WarpedVRT
    from rasterio.warp import transform_bounds

    from geoseg.georef import center_lonlat, utm_crs_for
    from geoseg.grid import RasterGrid

    path = out_dir / (BASE_NAME if compress == "jpeg" else BASE_NAME.replace(".tif", f".{compress}.tif"))
    if path.is_file():
        return path
    out_dir.mkdir(parents=True, exist_ok=True)
    with rasterio.open(SAMPLE) as src:
        utm = utm_crs_for(*center_lonlat(RasterGrid((src.height, src.width), src.transform, src.crs)))
        left, bottom, right, top = transform_bounds(src.crs, utm, *src.bounds)
        x0, y0 = np.floor(left / GSD_M) * GSD_M, np.ceil(top / GSD_M) * GSD_M
        w, h = int(np.ceil((right - x0) / GSD_M)), int(np.ceil((y0 - bottom) / GSD_M))
        transform = Affine(GSD_M, 0, x0, 0, -GSD_M, y0)
        with WarpedVRT(src, crs=utm, transform=transform, width=w, height=h, resampling=Resampling.average,
                       add_alpha=True) as vrt:
            data = vrt.read([1, 2, 3])
            valid = vrt.read(4) > 0
    rows, cols = _trim_to_valid(valid)
    data = _mirror_tile(data[:, rows, cols], BASE_REPEAT)
    transform = transform * Affine.translation(cols.start, rows.start)
    opts = {"compress": "jpeg", "photometric": "ycbcr", "jpeg_quality": 90} if compress == "jpeg" else {"compress": compress}
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=3, dtype="uint8",
                       crs=utm, transform=transform, tiled=True, blockxsize=256, blockysize=256, **opts) as dst:
        dst.write(data)
        dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
    return path


def mosaic_vrt(base: Path, width: int, height: int, out: Path) -> Path:
    """A ``width x height`` VRT tiling ``base`` (same CRS and pixel size) from its top-left corner."""
    import rasterio

    with rasterio.open(base) as ds:
        tw, th, t, wkt = ds.width, ds.height, ds.transform, ds.crs.to_wkt()
        bx, by = ds.block_shapes[0][1], ds.block_shapes[0][0]
    lines = [f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">', f"  <SRS>{escape(wkt)}</SRS>",
             f"  <GeoTransform>{t.c!r}, {t.a!r}, {t.b!r}, {t.f!r}, {t.d!r}, {t.e!r}</GeoTransform>"]
    rel = base.name if base.parent == out.parent else str(base.resolve())
    for band, color in ((1, "Red"), (2, "Green"), (3, "Blue")):
        lines += [f'  <VRTRasterBand dataType="Byte" band="{band}">', f"    <ColorInterp>{color}</ColorInterp>"]
        for y in range(0, height, th):
            for x in range(0, width, tw):
                sw, sh = min(tw, width - x), min(th, height - y)
                lines += ["    <SimpleSource>",
                          f'      <SourceFilename relativeToVRT="{int(rel == base.name)}">{escape(rel)}</SourceFilename>',
                          f"      <SourceBand>{band}</SourceBand>",
                          f'      <SourceProperties RasterXSize="{tw}" RasterYSize="{th}" DataType="Byte" BlockXSize="{bx}" BlockYSize="{by}"/>',
                          f'      <SrcRect xOff="0" yOff="0" xSize="{sw}" ySize="{sh}"/>',
                          f'      <DstRect xOff="{x}" yOff="{y}" xSize="{sw}" ySize="{sh}"/>',
                          "    </SimpleSource>"]
        lines.append("  </VRTRasterBand>")
    lines.append("</VRTDataset>")
    out.write_text("\n".join(lines) + "\n")
    return out


def materialize(vrt: Path) -> Path:
    """Copy a mosaic VRT into a real tiled JPEG GeoTIFF (writes every pixel)."""
    import rasterio
    from rasterio.shutil import copy as rio_copy

    out = vrt.with_suffix(".tif")
    if not out.is_file():
        with rasterio.Env(GDAL_CACHEMAX=256):
            rio_copy(str(vrt), str(out), driver="GTiff", TILED="YES", BLOCKXSIZE=256, BLOCKYSIZE=256,
                     COMPRESS="JPEG", PHOTOMETRIC="YCBCR", JPEG_QUALITY=90, BIGTIFF="IF_SAFER")
    return out


def build(width: int, height: int, out_dir: Path = DEFAULT_DATA_DIR, real_tiff: bool = False) -> Path:
    """Path of a ``width x height`` test raster in ``out_dir`` (built if missing)."""
    out_dir = Path(out_dir)
    base = base_tile(out_dir)
    vrt = mosaic_vrt(base, width, height, out_dir / f"mosaic_{size_label(width, height)}.vrt")
    return materialize(vrt) if real_tiff else vrt


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", nargs="+", default=["1k", "2k", "5k", "10k", "20k"],
                    help="pixels per side (1024, 20k) or WIDTHxHEIGHT; any size works, e.g. 50k")
    ap.add_argument("--out", type=Path, default=DEFAULT_DATA_DIR, help=f"folder (default {DEFAULT_DATA_DIR}, or $GEOSEG_BENCH_DIR)")
    ap.add_argument("--materialize", action="store_true", help="also write a real GeoTIFF of every pixel (big!)")
    args = ap.parse_args(argv)
    import rasterio

    for spec in args.size:
        w, h = parse_size(spec)
        path = build(w, h, args.out, args.materialize)
        with rasterio.open(path) as ds:
            print(f"{path}  {ds.width}x{ds.height}  {ds.width * ds.height / 1e6:.1f} MP  {ds.crs}  "
                  f"res {ds.res[0]:.3f} m  {path.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
