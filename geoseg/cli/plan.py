"""``geoseg plan``: a dry run that never imports torch."""

from __future__ import annotations

import json

import click

from geoseg.cli import options as o
from geoseg.cli.errors import handle_errors


@click.command()
@click.argument("input_path", metavar="INPUT")
@o.model
@o.gsd
@o.tile_size
@o.overlap
@o.batch_size
@o.tta
@o.tta_scales
@o.bands
@click.option("--dst-crs", default=None, help="CRS of the outputs (e.g. EPSG:4326); default: the input's.")
@o.aoi
@o.aoi_margin
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@handle_errors
def plan(input_path, model, gsd, tile_size, overlap, batch_size, tta, tta_scales, bands, dst_crs, aoi, aoi_margin, as_json):
    """Show what `geoseg segment INPUT` would do: grids, tiles, GSD, memory and time estimate."""
    from geoseg.config import SegmentConfig
    from geoseg.engine.plan import describe_plan
    from geoseg.models.registry import get_card

    cfg = SegmentConfig(model=model, gsd_m=gsd, tile_size=tile_size, overlap=overlap, batch_size=batch_size, tta=tta,
                        tta_scales=o.parse_scales(tta_scales), bands=o.parse_bands(bands), dst_crs=dst_crs,
                        aoi=aoi, aoi_margin_m=aoi_margin)
    card = get_card(cfg.model)  # a bad card is refused here, as `geoseg segment` refuses it
    desc = describe_plan(input_path, card, cfg)
    if as_json:
        click.echo(json.dumps(desc, indent=2))
        return
    width = max(len(k) for k in desc)
    for k, v in desc.items():
        click.echo(f"{k.ljust(width)}  {v}")
