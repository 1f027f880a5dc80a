"""``geoseg evaluate``: accuracy against reference building polygons."""

from __future__ import annotations

import json

import click

from geoseg.cli.errors import handle_errors


@click.command()
@click.argument("pred", metavar="PRED")
@click.option("--truth", required=True, help="Reference building polygons (.gpkg .geojson .parquet .fgb .shp), any CRS.")
@click.option("--raster", default=None, help="Raster whose grid and valid area the pixel scores use (default: PRED if it is a raster).")
@click.option("--threshold", type=float, default=None, help="Probability threshold when PRED is a probability raster (default 0.5).")
@click.option("--iou", "iou_threshold", type=float, default=0.5, show_default=True, help="IoU for an object match.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def evaluate(pred, truth, raster, threshold, iou_threshold, as_json):
    """Pixel IoU, precision, recall, F1 and object F1 (one-to-one at IoU >= 0.5) of PRED against --truth."""
    from geoseg.evaluate.run import evaluate as run

    scores = run(pred, truth, raster, threshold, iou_threshold)
    if as_json:
        click.echo(json.dumps(scores, indent=2))
        return
    for k, v in scores.items():
        click.echo(f"{k:16s} {v:.4f}" if isinstance(v, float) else f"{k:16s} {v}")
