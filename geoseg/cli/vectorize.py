"""``geoseg vectorize``: footprints from an existing probability raster."""

from __future__ import annotations

import click

from geoseg.cli import options as o
from geoseg.cli.errors import done, handle_errors


@click.command()
@click.argument("prob_path", metavar="PROB")
@click.option("--output", "-o", required=True, help="Footprints: .gpkg .parquet .fgb .geojson .shp (an existing file is replaced whole once the new one is complete, other layers of a GeoPackage included).")
@o.vectorize_threshold
@o.min_area
@o.min_part
@o.vectorize_border_cut
@o.simplify
@o.regularize
@o.no_split
@o.split_window
@click.option("--dst-crs", default=None, help="CRS of the footprints; default: the raster's.")
@o.vectorize_aoi
@o.vectorize_aoi_margin
@o.aoi_clip
@o.progress
@handle_errors
def vectorize(prob_path, output, threshold, min_area, min_part, border_cut, simplify, regularize, no_split, split_window, dst_crs, aoi, aoi_margin,
              aoi_clip, progress_mode):
    """Turn PROB (band 1 = building probability, uint8 0-255 or float 0-1) into footprints.

    Footprint options left out take the values of the geoseg segment run that wrote PROB (its settings tag:
    threshold, border cut, --min-area, --min-part, --simplify, --regularize, --no-split), else the defaults shown."""
    from geoseg.footprints.from_file import AoiLimit, check_outputs
    from geoseg.runlock import output_locks

    limit = AoiLimit(aoi, aoi_margin, aoi_clip) if aoi else None
    check_outputs(output, prob_path, limit)
    with output_locks(output):  # a segment (or vectorize) run writing the same file: this one stops at once
        _vectorize(prob_path, output, threshold, min_area, min_part, border_cut, simplify, regularize, no_split,
                   split_window, dst_crs, limit, progress_mode)


def _vectorize(prob_path, output, threshold, min_area, min_part, border_cut, simplify, regularize, no_split,
               split_window, dst_crs, limit, progress_mode) -> None:
    from geoseg.footprints.from_file import provenance, vectorize_file
    from geoseg.io.vector import write_vectors

    vcfg = o.vectorize_config(threshold, min_area, min_part, simplify, regularize, no_split, border_cut, split_window)
    reporter = o.make_progress(progress_mode)
    try:
        gdf, used, tags = vectorize_file(prob_path, vcfg, out_crs=dst_crs, progress=reporter, aoi=limit,
                                         given=o.given_footprint_fields(click.get_current_context()))
    finally:
        getattr(reporter, "close", lambda: None)()
    write_vectors(gdf, output, provenance(prob_path, used, tags, limit))
    done({"footprints": len(gdf), "output": str(output)}, f"{len(gdf)} buildings -> {output}")
