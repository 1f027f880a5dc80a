"""How strongly a model's border and gap outputs fire on the true gaps between buildings.

    python scripts/gap_signal.py scinet-r18-buildings-gap sample_tiles/banepa_chip_*_4326.tif

For each RASTER (with RASTER_STEM_buildings.geojson beside it): segment with MODEL, rasterise the
labelled buildings as instances on the output grid, mark background pixels with two different
buildings within W pixels (the training target's definition) and compare the mean probabilities
there with the rest of the background.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path


def main() -> None:
    import geopandas as gpd
    import rasterio
    from rasterio.features import rasterize

    from geoseg.config import SegmentConfig
    from geoseg.engine.segment import segment
    from geoseg.models.registry import get_card
    from geoseg.train.regions import gap_mask

    model, rasters = sys.argv[1], sys.argv[2:]
    outputs = get_card(model).outputs
    for raster in rasters:
        with tempfile.TemporaryDirectory() as tmp:
            segment(raster, None, Path(tmp) / "p.tif", SegmentConfig(model=model), return_footprints=False)
            with rasterio.open(Path(tmp) / "p.tif") as ds:
                prob, transform, crs, shape_yx = ds.read().astype(float) / 255, ds.transform, ds.crs, (ds.height, ds.width)
        labels = Path(raster).with_name(Path(raster).stem + "_buildings.geojson")
        geoms = gpd.read_file(labels).to_crs(crs).geometry
        inst = rasterize(((g, i + 1) for i, g in enumerate(geoms)), out_shape=shape_yx, transform=transform, dtype="int32")
        for width in (2, 4):
            gaps = gap_mask(inst, width).astype(bool)
            rest = (inst == 0) & ~gaps
            cells = [f"{name} {prob[b][gaps].mean():.3f} vs {prob[b][rest].mean():.3f}" for b, name in enumerate(outputs) if b]
            print(f"{Path(raster).name} gap width {width} px ({gaps.sum()} px): " + "; ".join(cells))


if __name__ == "__main__":
    main()
