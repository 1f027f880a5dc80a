"""``geoseg vectorize``: footprints from an existing probability raster."""

from __future__ import annotations

import click

from geoseg.cli import options as o
from geoseg.cli.errors import handle_errors


@click.command()
@click.argument("prob_path", metavar="PROB")
@click.option("--output", "-o", required=True, help="Footprints: .gpkg .parquet .fgb .geojson .shp (an existing file is replaced whole once the new one is complete, other layers of a GeoPackage included).")
@o.threshold
@o.min_area
@o.min_part
@o.border_cut
@o.simplify
@o.regularize
@o.no_split
@click.option("--dst-crs", default=None, help="CRS of the footprints; default: the raster's.")
@o.aoi
@o.aoi_margin
@o.aoi_clip
@o.progress
@handle_errors
def vectorize(prob_path, output, threshold, min_area, min_part, border_cut, simplify, regularize, no_split, dst_crs, aoi, aoi_margin,
              aoi_clip, progress_mode):
    """Turn PROB (band 1 = building probability, uint8 0-255 or float 0-1) into footprints."""
    import json
    import os

    from geoseg import __version__
    from geoseg.footprints.from_file import AoiLimit, vectorize_file
    from geoseg.io.atomic import check_not_an_input
    from geoseg.io.vector import check_vector_output, write_vectors

    check_vector_output(output)
    check_not_an_input({"the output": output}, {"the input": prob_path, "--aoi": aoi})
    vcfg = o.vectorize_config(threshold, min_area, min_part, simplify, regularize, no_split, border_cut)
    limit = AoiLimit(aoi, aoi_margin, aoi_clip) if aoi else None
    reporter = o.make_progress(progress_mode)
    try:
        gdf, used, tags = vectorize_file(prob_path, vcfg, out_crs=dst_crs, progress=reporter, aoi=limit)
    finally:
        getattr(reporter, "close", lambda: None)()
    meta = {k: v for k, v in tags.items() if k in ("geoseg_version", "model", "model_sha256", "settings")}
    meta.update({"vectorized_by": __version__, "source": os.path.abspath(prob_path), "vectorize": json.dumps(used.to_dict(), sort_keys=True),
                 **({"aoi": os.path.abspath(aoi), "aoi_margin_m": str(aoi_margin), "aoi_clip": str(aoi_clip)} if aoi else {})})
    write_vectors(gdf, output, meta)
    click.echo(f"{len(gdf)} buildings -> {output}", err=True)
