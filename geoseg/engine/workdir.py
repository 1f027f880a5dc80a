"""Crash-safe intermediate storage for a run, and the resume manifest.

A run's working directory holds ``manifest.json`` (a fingerprint of everything that
determines the result) and one small GeoTIFF per finished chunk of rows
(``chunk_00012.tif``: K probability bands as uint8 0..255 plus an alpha band), each
written to a temporary name and renamed. A VRT stitches the chunks into one
raster on the working grid. A rerun with the same fingerprint skips finished chunks.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from geoseg.grid import RasterGrid
from geoseg.window import PixelWindow


def work_dir_for(output: Path) -> Path:
    return output.parent / f".{output.name}.geoseg-work"


def fingerprint(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class WorkDir:
    def __init__(self, path: Path, grid: RasterGrid, n_channels: int, fp: str, resume: bool = True):
        self.path, self.grid, self.k, self.fp = path, grid, n_channels, fp
        manifest = path / "manifest.json"
        old = json.loads(manifest.read_text()) if manifest.is_file() else None
        if old is None or old.get("fingerprint") != fp or not resume:
            self.resumed = False
            if path.exists():
                shutil.rmtree(path)
            path.mkdir(parents=True)
            tmp = path / "manifest.json.tmp"
            tmp.write_text(json.dumps({"fingerprint": fp, "grid": {"shape_yx": grid.shape_yx, "transform": list(grid.transform)[:6], "crs": str(grid.crs)}}))
            tmp.replace(manifest)
        else:
            self.resumed = True

    def chunk_path(self, index: tuple[int, int]) -> Path:
        """``index = (tile row, column block)``."""
        return self.path / f"chunk_{index[0]:05d}_{index[1]:03d}.tif"

    def done(self, index: tuple[int, int]) -> bool:
        return self.chunk_path(index).is_file()

    def edge_path(self, tile_index: tuple[int, int]) -> Path:
        return self.path / f"tile_{tile_index[0]:05d}_{tile_index[1]:05d}.npy"

    def save_edge(self, tile_index: tuple[int, int], probs: np.ndarray) -> None:
        """Keep a tile's prediction that the next column block needs too (saves predicting it twice)."""
        tmp = self.path / f".tile_{tile_index[0]:05d}_{tile_index[1]:05d}.tmp.npy"
        np.save(tmp, probs)
        tmp.replace(self.edge_path(tile_index))

    def load_edge(self, tile_index: tuple[int, int]) -> np.ndarray | None:
        p = self.edge_path(tile_index)
        return np.load(p) if p.is_file() else None

    def write_chunk(self, index: tuple[int, int], window: PixelWindow, probs: np.ndarray, valid: np.ndarray) -> None:
        import rasterio

        data = np.concatenate([np.round(np.clip(probs, 0, 1) * 255).astype(np.uint8), (valid * 255).astype(np.uint8)[None]])
        data[:-1, ~valid] = 0
        tmp = self.path / f".chunk_{index[0]:05d}_{index[1]:03d}.tmp.tif"
        profile = {"driver": "GTiff", "width": window.width, "height": window.height, "count": self.k + 1, "dtype": "uint8",
                   "crs": self.grid.crs, "transform": self.grid.window_transform(window), "compress": "zstd",
                   "zstd_level": 1, "predictor": 2, "tiled": True, "blockxsize": 256, "blockysize": 256,
                   "photometric": "minisblack"}
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data)
        tmp.replace(self.chunk_path(index))

    def validity_vrt(self, chunks: dict[tuple[int, int], PixelWindow]) -> Path:
        """``validity.vrt``: the chunks' validity (0/255) as an ordinary band, for warping."""
        text = self.vrt(chunks).read_text()
        head, rest = text.split("  <VRTRasterBand", 1)
        mask = rest[rest.index("<MaskBand>") + len("<MaskBand>"):rest.index("</MaskBand>")]
        out = self.path / "validity.vrt"
        out.write_text(head + mask.replace('<VRTRasterBand dataType="Byte">', '<VRTRasterBand dataType="Byte" band="1">', 1) + "</VRTDataset>\n")
        return out

    def vrt(self, chunks: dict[tuple[int, int], PixelWindow]) -> Path:
        """Write ``mosaic.vrt`` over all chunks (``{(row, block): window}``): K probability bands
        and a per-dataset mask band (validity)."""
        g, t = self.grid, self.grid.transform
        lines = [f'<VRTDataset rasterXSize="{g.width}" rasterYSize="{g.height}">',
                 f"  <SRS>{escape(g.crs.to_wkt() if hasattr(g.crs, 'to_wkt') else str(g.crs))}</SRS>",
                 f"  <GeoTransform>{t.c!r}, {t.a!r}, {t.b!r}, {t.f!r}, {t.d!r}, {t.e!r}</GeoTransform>"]
        for band in range(1, self.k + 2):
            mask = band == self.k + 1
            if mask:  # validity as a per-dataset mask band: honoured for any band count (alpha is not)
                lines.append('  <MaskBand>')
                lines.append('  <VRTRasterBand dataType="Byte">')
            else:
                lines.append(f'  <VRTRasterBand dataType="Byte" band="{band}">')
                lines.append("    <ColorInterp>Gray</ColorInterp>")
            for i, w in chunks.items():
                if w.height == 0 or w.width == 0:
                    continue
                lines += ["    <SimpleSource>",
                          f'      <SourceFilename relativeToVRT="1">{self.chunk_path(i).name}</SourceFilename>',
                          f"      <SourceBand>{band}</SourceBand>",
                          f'      <SourceProperties RasterXSize="{w.width}" RasterYSize="{w.height}" DataType="Byte" BlockXSize="256" BlockYSize="256"/>',
                          f'      <SrcRect xOff="0" yOff="0" xSize="{w.width}" ySize="{w.height}"/>',
                          f'      <DstRect xOff="{w.col_off}" yOff="{w.row_off}" xSize="{w.width}" ySize="{w.height}"/>',
                          "    </SimpleSource>"]
            lines.append("  </VRTRasterBand>")
            if mask:
                lines.append("  </MaskBand>")
        lines.append("</VRTDataset>")
        out = self.path / "mosaic.vrt"
        out.write_text("\n".join(lines) + "\n")
        return out

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
