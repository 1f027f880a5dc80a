"""Mosaic same-CRS, same-resolution GeoTIFF chips into one VRT (no gdalbuildvrt needed).

    python scripts/chips_vrt.py OUT.vrt chip1.tif chip2.tif ...

Pixels outside every chip are nodata (0): the evaluation then counts only the chips' area.
Used to score models on the held-out Banepa chips as one raster (docs/scinet_vs_unet.md).
"""

from __future__ import annotations

import sys
from pathlib import Path


def build_vrt(out: Path, chips: list[str]) -> Path:
    import rasterio

    metas = []
    for c in chips:
        with rasterio.open(c) as s:
            metas.append((str(Path(c).resolve()), s.transform, s.width, s.height, s.crs, s.count))
    t0 = metas[0][1]
    rx, ry = t0.a, t0.e
    left = min(m[1].c for m in metas)
    top = max(m[1].f for m in metas)
    right = max(m[1].c + m[2] * rx for m in metas)
    bottom = min(m[1].f + m[3] * ry for m in metas)
    width, height = round((right - left) / rx), round((bottom - top) / ry)
    bands = []
    for b in range(1, metas[0][5] + 1):
        srcs = []
        for path, t, w, h, _, _ in metas:
            xoff, yoff = round((t.c - left) / rx), round((t.f - top) / ry)
            srcs.append(f'    <SimpleSource><SourceFilename relativeToVRT="0">{path}</SourceFilename><SourceBand>{b}</SourceBand>'
                        f'<SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/><DstRect xOff="{xoff}" yOff="{yoff}" xSize="{w}" ySize="{h}"/></SimpleSource>')
        bands.append(f'  <VRTRasterBand dataType="Byte" band="{b}">\n    <NoDataValue>0</NoDataValue>\n' + "\n".join(srcs) + "\n  </VRTRasterBand>")
    xml = (f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">\n  <SRS>{metas[0][4].to_wkt()}</SRS>\n'
           f"  <GeoTransform>{left!r}, {rx!r}, 0.0, {top!r}, 0.0, {ry!r}</GeoTransform>\n" + "\n".join(bands) + "\n</VRTDataset>\n")
    out.write_text(xml)
    return out


if __name__ == "__main__":
    print(build_vrt(Path(sys.argv[1]), sys.argv[2:]))
