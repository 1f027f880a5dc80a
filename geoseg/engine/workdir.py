"""Crash-safe intermediate storage for a run, and the resume manifest.

A run's working directory holds ``manifest.json`` (a fingerprint of everything that
determines the result) and one small GeoTIFF per finished chunk of rows
(``chunk_00012.tif``: K probability bands as uint8 0..255 plus an alpha band), each
written to a temporary name and renamed. A VRT stitches the chunks into one
raster on the working grid. A rerun with the same fingerprint skips finished chunks.

Damaged state (a garbled manifest after a power loss, a truncated chunk) is never fatal: it is set aside with
one warning and predicted again. A failed write (disk full, ...) is one :class:`~geoseg.errors.OutputError` line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import warnings
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from geoseg.errors import OutputError, ResumeWarning
from geoseg.grid import RasterGrid
from geoseg.io.atomic import close_checked, quiet_libtiff, write_errors
from geoseg.window import PixelWindow


def work_dir_for(output: Path) -> Path:
    return output.parent / f".{output.name}.geoseg-work"


def fingerprint(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class WorkDir:
    def __init__(self, path: Path, grid: RasterGrid, n_channels: int, fp: str, resume: bool = True):
        self.path, self.grid, self.k, self.fp = path, grid, n_channels, fp
        manifest = path / "manifest.json"
        old = _read_manifest(manifest) if resume else None  # --no-resume: whatever is there is not even read
        if old is None or old.get("fingerprint") != fp:
            self.resumed = False
            self._clear()
            with write_errors(self._what()):
                path.mkdir(parents=True)
                tmp = path / "manifest.json.tmp"
                tmp.write_text(json.dumps({"fingerprint": fp, "grid": {"shape_yx": grid.shape_yx, "transform": list(grid.transform)[:6], "crs": str(grid.crs)}}))
                tmp.replace(manifest)
        else:
            self.resumed = True

    def _what(self) -> str:
        return f"the work folder {self.path}"

    def _clear(self) -> None:
        """Remove an earlier run's folder (or a file in its place) to start over."""
        p = self.path
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()
        except OSError as exc:
            raise OutputError(f"cannot clear {self._what()} of an earlier run ({exc.strerror or exc}); "
                              "remove it or choose another output") from None

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
        try:
            with write_errors(self._what(), tmp):
                np.save(tmp, probs)
                tmp.replace(self.edge_path(tile_index))
        finally:
            tmp.unlink(missing_ok=True)

    def drop_edge(self, tile_index: tuple[int, int]) -> None:
        """Forget a kept tile prediction once no rerun can need it (the rows it feeds are written)."""
        self.edge_path(tile_index).unlink(missing_ok=True)

    def load_edge(self, tile_index: tuple[int, int]) -> np.ndarray | None:
        """A kept tile prediction, or None (none kept, or a damaged one, which is removed: it is predicted again)."""
        p = self.edge_path(tile_index)
        if not p.is_file():
            return None
        try:
            return np.load(p)
        except (OSError, ValueError, EOFError):
            p.unlink(missing_ok=True)
            return None

    def write_chunk(self, index: tuple[int, int], window: PixelWindow, probs: np.ndarray, valid: np.ndarray) -> None:
        import rasterio

        data = np.concatenate([np.round(np.clip(probs, 0, 1) * 255).astype(np.uint8), (valid * 255).astype(np.uint8)[None]])
        data[:-1, ~valid] = 0
        tmp = self.path / f".chunk_{index[0]:05d}_{index[1]:03d}.tmp.tif"
        profile = {"driver": "GTiff", "width": window.width, "height": window.height, "count": self.k + 1, "dtype": "uint8",
                   "crs": self.grid.crs, "transform": self.grid.window_transform(window), "compress": "zstd",
                   "zstd_level": 1, "predictor": 2, "tiled": True, "blockxsize": 256, "blockysize": 256,
                   "photometric": "minisblack"}
        try:  # whole or absent: a chunk that failed half-way (disk full) is not left to look finished
            with quiet_libtiff(), write_errors(self._what(), tmp):
                dst = rasterio.open(tmp, "w", **profile)
                try:
                    dst.write(data)
                except BaseException:
                    with contextlib.suppress(Exception):  # the first error is the one to report
                        dst.close()
                    raise
                close_checked(dst, self._what(), tmp)  # a small chunk mostly reaches the disk only here
                tmp.replace(self.chunk_path(index))
        finally:
            tmp.unlink(missing_ok=True)

    def validity_vrt(self, chunks: dict[tuple[int, int], PixelWindow]) -> Path:
        """``validity.vrt``: the chunks' validity (0/255) as an ordinary band, for warping."""
        text = self.vrt(chunks).read_text()
        head, rest = text.split("  <VRTRasterBand", 1)
        mask = rest[rest.index("<MaskBand>") + len("<MaskBand>"):rest.index("</MaskBand>")]
        out = self.path / "validity.vrt"
        with write_errors(self._what()):
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
        with write_errors(self._what()):
            out.write_text("\n".join(lines) + "\n")
        return out

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _read_manifest(manifest: Path) -> dict | None:
    """The manifest of an earlier run, or None: absent, or damaged (unreadable, not JSON, not an object; e.g. after a
    power loss, since it is renamed into place without fsync), which is warned about once: the run starts over."""
    if not manifest.is_file():
        return None
    try:
        old = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: JSONDecodeError, UnicodeDecodeError
        problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not valid JSON"
    else:
        if isinstance(old, dict):
            return old
        problem = f"a JSON {type(old).__name__}, not an object"
    warnings.warn(f"the saved state of an earlier run in {manifest.parent} is damaged ({manifest.name}: {problem}); "
                  "starting over", ResumeWarning, stacklevel=3)
    return None
