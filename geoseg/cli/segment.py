"""``geoseg segment``."""

from __future__ import annotations

import click

from geoseg.cli import options as o
from geoseg.cli.errors import done, handle_errors


@click.command()
@click.argument("input_path", metavar="INPUT")
@click.option("--output", "-o", default=None, help="Footprints: .gpkg .parquet .fgb .geojson .shp (an existing file is replaced whole once the new one is complete, other layers of a GeoPackage included).")
@click.option("--prob", default=None, help="Also write the probability raster here (GeoTIFF, uint8 0-255).")
@o.model
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True)
@o.runtime
@o.batch_size
@o.tta
@o.tta_scales
@o.gsd
@o.tile_size
@o.overlap
@click.option("--blend", type=click.Choice(["cosine", "gaussian", "crop"]), default="cosine", show_default=True, help="How overlapping tiles are merged.")
@click.option("--dst-crs", default=None, help="CRS of the outputs (e.g. EPSG:4326); default: the input's.")
@click.option("--compress", type=click.Choice(["deflate", "zstd"]), default="deflate", show_default=True)
@click.option("--cog", is_flag=True, help="Finish the probability raster as a Cloud-Optimized GeoTIFF.")
@o.bands
@o.threshold
@o.min_area
@o.min_part
@o.border_cut
@o.simplify
@o.regularize
@o.no_split
@o.split_window
@o.aoi
@o.aoi_margin
@o.aoi_clip
@click.option("--no-resume", is_flag=True, help="Start over even if an interrupted run left finished tiles.")
@click.option("--keep-work", is_flag=True, help="Keep the intermediate work folder.")
@o.progress
@handle_errors  # the library says what an interrupted run kept (geoseg.errors.set_resume)
def segment(input_path, output, prob, model, device, precision, runtime, batch_size, tta, tta_scales, gsd, tile_size, overlap, blend, dst_crs,
            compress, cog, bands, threshold, min_area, min_part, border_cut, simplify, regularize, no_split, split_window, aoi, aoi_margin, aoi_clip, no_resume, keep_work,
            progress_mode):
    """Find buildings in INPUT (any GDAL raster) and write footprints (-o) and/or probabilities (--prob)."""
    from geoseg.config import SegmentConfig
    from geoseg.engine.segment import segment as run

    if not output and not prob:
        raise click.UsageError("give --output/-o for footprints and/or --prob for the probability raster")
    cfg = SegmentConfig(model=model, device=device, precision=precision, runtime=runtime, batch_size=batch_size, tta=tta,
                        tta_scales=o.parse_scales(tta_scales), gsd_m=gsd, tile_size=tile_size, overlap=overlap,
                        blend=blend, dst_crs=dst_crs, compress=compress, cog=cog,
                        resume=not no_resume, keep_work=keep_work, bands=o.parse_bands(bands),
                        aoi=aoi, aoi_margin_m=aoi_margin, aoi_clip=aoi_clip,
                        vectorize=o.vectorize_config(threshold, min_area, min_part, simplify, regularize, no_split,
                                                     border_cut, split_window))
    reporter = o.make_progress(progress_mode)
    try:
        result = run(input_path, output, prob, cfg, reporter, return_footprints=bool(output))
    finally:
        getattr(reporter, "close", lambda: None)()
    n = None if result.footprints is None else len(result.footprints)  # None: --prob only, no footprints made
    summary = {"footprints": n, "output": str(output) if output else None, "prob": str(prob) if prob else None,
               "tiles_predicted": result.stats.tiles_predicted, "tiles_empty": result.stats.tiles_empty,
               "chunks_reused": result.stats.chunks_reused, "work_gsd_m": result.plan.work_gsd_m}
    resumed = f", resumed {result.stats.chunks_reused} finished rows" if result.stats.chunks_reused else ""
    what = f"{n} buildings -> {output}" if output else f"probabilities -> {prob}"
    done(summary, f"{what} ({result.stats.tiles_predicted} tiles at {result.plan.work_gsd_m} m{resumed})")
