"""Score the engine on non-uint8 copies of held-out Banepa imagery (docs/imagery_gsd.md, "Imagery that is not uint8").

    python scripts/dtype_scaling.py TAG [--out runs/dtype]

Writes uint16 (40 * v + 1000, an 11-bit-like DN with an offset) and float32 (v / 255, reflectance-like) copies of the
48 Banepa chips (one VRT each) and a uint16 copy of the z21 mosaic, segments each with the default model, scores it
against OSM as the uint8 original is scored, and prints one line per raster, labelled TAG (e.g. the code version).
"""

from __future__ import annotations

import argparse
import glob
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "buildings"


def _copy(src: str, dst: Path, kind: str, bands=(1, 2, 3)) -> bool:
    import rasterio

    with rasterio.open(src) as s:
        d, m = s.read(list(bands)).astype(np.float64), s.dataset_mask() > 0
        prof = {"driver": "GTiff", "width": s.width, "height": s.height, "count": 3, "dtype": kind, "crs": s.crs,
                "transform": s.transform, "compress": "deflate", "tiled": True}
    if m.sum() < 100:
        return False
    out = (d * 40 + 1000).astype(np.uint16) if kind == "uint16" else (d / 255).astype(np.float32)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(dst, "w", **prof) as w:
        w.write(out)
        w.write_mask(np.where(m, 255, 0).astype(np.uint8))
    return True


def _score(raster: str, truth: str, out: Path) -> dict:
    subprocess.run(["geoseg", "segment", raster, "-o", str(out), "--progress", "none"], check=True, capture_output=True)
    r = subprocess.run(["geoseg", "evaluate", str(out), "--truth", truth, "--raster", raster, "--json"],
                       check=True, capture_output=True, text=True)
    s = json.loads(r.stdout)
    return {k: round(s[k], 4) for k in ("iou", "precision", "recall", "obj_f1")}


def main() -> int:
    sys.path.insert(0, str(Path(__file__).parent))
    from chips_vrt import build_vrt

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tag")
    ap.add_argument("--out", type=Path, default=Path("runs/dtype"))
    args = ap.parse_args()
    chips_dir = SHARED / "banepa_geotiff" / "train"
    labels = glob.glob(str(chips_dir / "osm" / "*.geojson"))[0]
    mosaic = SHARED / "oam_mosaics_r3_banepa_np"
    for kind in ("uint16", "float32"):
        folder = args.out / kind
        folder.mkdir(parents=True, exist_ok=True)
        chips = [str(folder / Path(c).name) for c in sorted(glob.glob(str(chips_dir / "oam" / "*.tif")))
                 if _copy(c, folder / Path(c).name, kind)]
        vrt = build_vrt(folder / "chips.vrt", chips)  # a Byte VRT: name the copies' type
        vrt.write_text(vrt.read_text().replace('dataType="Byte"', f'dataType="{"UInt16" if kind == "uint16" else "Float32"}"'))
        print(args.tag, "48 chips", kind, _score(str(vrt), labels, folder / f"fp_{args.tag}.gpkg"), flush=True)
    z21 = args.out / "z21_uint16.tif"
    _copy(str(mosaic / "r3_banepa_np_z21.tif"), z21, "uint16")
    print(args.tag, "z21 mosaic uint16", _score(str(z21), str(mosaic / "r3_banepa_np_buildings.geojson"),
                                               args.out / f"z21_{args.tag}.gpkg"), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
