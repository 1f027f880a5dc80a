"""``geoseg evaluate``: accuracy against reference building polygons."""

from __future__ import annotations

import json

import click

from geoseg.cli import options as o
from geoseg.cli.errors import handle_errors, say


@click.command()
@click.argument("pred", metavar="PRED")
@click.option("--truth", required=True, help="Reference building polygons (.gpkg .geojson .parquet .fgb .shp), any CRS.")
@click.option("--raster", default=None, help="Raster whose grid and valid area the pixel scores use (default: PRED if it is a raster).")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None, help="Probability threshold when PRED is a probability raster (default: that of the run that wrote it, "
                   "as in `geoseg vectorize`, else 0.5); with --gsd-sweep, the footprint "
                   "threshold of each run (default: the model card's).")
@click.option("--iou", "iou_threshold", type=click.FloatRange(0, 1, min_open=True), default=0.5, show_default=True, help="IoU for an object match.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--matches", default=None, metavar="FILE",
              help="Also write each prediction and reference building with its status (tp, fp, fn) and IoU to this "
                   "vector file (.gpkg .fgb .geojson .parquet .shp), to see in QGIS where the model fails.")
@click.option("--aoi", default=None, metavar="FILE",
              help="Score only inside these polygons (any CRS): the area where the truth is complete.")
@click.option("--gsd-sweep", default=None, help="Comma-separated GSDs (m): PRED is then an input raster, run --model at each GSD and score it.")
@click.option("--model", "-m", "models", multiple=True, default=["default"], show_default=True,
              help="Model for --gsd-sweep; repeat to compare several (one curve each).")
@click.option("--breakdown", is_flag=True,
              help="Also report how much of the pixel error is whole buildings missed or invented (needs a raster grid).")
@click.option("--ceiling", is_flag=True,
              help="With --gsd-sweep: also score a perfect model on each run's grid (ceiling_iou, ceiling_obj_f1): "
                   "how much of a drop at coarse GSDs the grid itself causes.")
@click.option("--plot", default=None, help="With --gsd-sweep: write a plot of IoU against GSD here (.png, .svg or .pdf).")
@click.option("--sweep-mode", type=click.Choice(["model", "imagery"]), default="model", show_default=True,
              help="With --gsd-sweep: 'model' runs the model at each GSD (the scale-invariance test); 'imagery' makes "
                   "imagery of each GSD from PRED and segments it as `geoseg segment` would (at --gsd, default the model's).")
@click.option("--gsd", type=o.GsdType(), default=None,
              help="With --sweep-mode imagery: the GSD (m) to run the model at, or 'native'; default: the model card's.")
@click.option("--keep", "keep_dir", default=None, metavar="DIR",
              help="With --gsd-sweep: keep each run's footprints and probability raster in DIR (MODEL_GSDm.gpkg, MODEL_GSDm_prob.tif); "
                   "rerunning with the same DIR resumes the sweep, reusing finished runs.")
@o.tile_size
@o.overlap
@o.tta
@o.tta_scales
@o.runtime
@o.progress
@handle_errors
def evaluate(pred, truth, raster, threshold, iou_threshold, as_json, matches, aoi, gsd_sweep, models, breakdown, ceiling, plot, sweep_mode, gsd,
             keep_dir, tile_size, overlap, tta, tta_scales, runtime, progress_mode):
    """Pixel IoU, precision, recall, F1 and object F1 (one-to-one at IoU >= --iou, default 0.5) of PRED against --truth.

    PRED is footprints or a probability raster. A probability raster scored on its own grid (no --raster, or
    --raster naming it) is thresholded pixel by pixel; with --raster of another image, its footprints (traced by the
    footprint rules of the run that wrote it, as geoseg vectorize does) are scored on that image's grid. Its valid
    area is its mask or alpha band: a nodata value that is also a score (0 in a 0/255 mask) is scored as no
    building, with a warning.

    With --gsd-sweep, PRED is an image: it is resampled to each GSD, segmented with each --model, and scored.
    --sweep-mode imagery instead makes imagery of each GSD and segments it as `geoseg segment` would.
    """
    _check_usage(pred, raster, threshold, matches, gsd_sweep, breakdown, sweep_mode, gsd, keep_dir, tile_size, overlap,
                 tta, tta_scales, ceiling, plot, runtime)
    if gsd_sweep:
        _sweep(pred, truth, gsd_sweep, models, plot, as_json, tile_size, overlap, tta, breakdown, threshold, keep_dir,
               o.make_progress(progress_mode), sweep_mode, gsd, o.parse_scales(tta_scales), ceiling, aoi, iou_threshold,
               runtime)
        say("done", None, plot=plot)  # --progress json only: the scores are on stdout
        return
    from geoseg.evaluate.run import evaluate as run
    from geoseg.runlock import output_locks

    with output_locks(matches):  # another run writing the same --matches file stops at once
        scores = run(pred, truth, raster, threshold, iou_threshold, breakdown, matches, aoi)
    say("done", None, matches=matches)
    if as_json:
        click.echo(json.dumps(scores, indent=2))
        return
    for k, v in scores.items():
        if v is None:  # e.g. no threshold for footprints, no raster for object-only scores
            continue
        click.echo(f"{k:16s} {v:.4f}" if isinstance(v, float) else f"{k:16s} {v}")


def _check_usage(pred, raster, threshold, matches, gsd_sweep, breakdown, sweep_mode, gsd, keep_dir, tile_size, overlap,
                 tta, tta_scales, ceiling, plot, runtime="torch") -> None:
    """Usage errors (exit 2) for options that would be ignored or cannot apply, before any work."""
    from click.core import ParameterSource

    from geoseg.evaluate.run import is_raster_path

    if gsd is not None and sweep_mode != "imagery":
        raise click.UsageError("--gsd sets where the model runs in --sweep-mode imagery; in model mode it runs at each --gsd-sweep GSD")
    if gsd_sweep and matches:
        raise click.UsageError("--matches scores one prediction; with --gsd-sweep, --keep DIR keeps each run's footprints "
                               "to evaluate with --matches")
    if gsd_sweep and raster is not None:
        raise click.UsageError("with --gsd-sweep, PRED is the raster the runs are scored on; leave --raster out")
    if gsd_sweep:
        return
    if (tile_size is not None or overlap is not None or tta != "none" or tta_scales is not None or keep_dir is not None
            or sweep_mode != "model" or ceiling or plot is not None or runtime != "torch"):
        raise click.UsageError("--tile-size, --overlap, --tta, --tta-scales, --runtime, --keep, --ceiling, --plot and "
                               "--sweep-mode apply to --gsd-sweep runs only")
    if click.get_current_context().get_parameter_source("models") is not ParameterSource.DEFAULT:
        raise click.UsageError("--model runs with --gsd-sweep only; to score a model's footprints, segment first "
                               "(`geoseg segment ... -o b.gpkg`) and evaluate b.gpkg")
    pred_is_raster = is_raster_path(pred)
    if threshold is not None and not pred_is_raster:
        raise click.UsageError("--threshold applies to a probability raster PRED or --gsd-sweep; footprints have none")
    if breakdown and raster is None and not pred_is_raster:
        raise click.UsageError("--breakdown scores pixels: give --raster (the image the footprints were made from)")


def _sweep(raster, truth, gsds_text, models, plot, as_json, tile_size=None, overlap=None, tta="none", breakdown=False,
           threshold=None, keep_dir=None, progress=None, mode="model", run_gsd=None, tta_scales=(1.0,), ceiling=False,
           aoi=None, iou_threshold=0.5, runtime="torch"):
    from geoseg.config import SegmentConfig, VectorizeConfig
    from geoseg.evaluate.sweep import check_plot_output, curve_label, each_warning_once, gsd_sweep, plot_sweep, run_names

    try:
        gsds = list(dict.fromkeys(float(g) for g in gsds_text.split(",")))  # in the order given, once each
    except ValueError:
        gsds = []
    if not gsds or not all(0 < g < float("inf") for g in gsds):
        raise click.BadParameter(f"{gsds_text!r}: give comma-separated GSDs in metres, each > 0, e.g. 0.15,0.3,0.6",
                                 param_hint="--gsd-sweep")
    if plot:
        check_plot_output(plot)  # before the sweep, not after it
    names = run_names(models)  # an unknown model fails before any run; cards that share a name are told apart
    # None: each model card's own
    base = SegmentConfig(tile_size=tile_size, overlap=overlap, tta=tta, tta_scales=tta_scales, gsd_m=run_gsd,
                         runtime=runtime, vectorize=VectorizeConfig(threshold=threshold))
    try:
        with each_warning_once():  # what every model's runs warn of, once
            by_model = {m: gsd_sweep(raster, truth, gsds, m, progress, base_config=base, breakdown=breakdown,
                                     keep_dir=keep_dir, mode=mode, ceiling=ceiling, aoi=aoi,
                                     iou_threshold=iou_threshold, name=names[m])
                        for m in models}
    finally:  # the last bar ends before the results are printed
        getattr(progress, "close", lambda: None)()
    if plot:
        plot_sweep(by_model, plot, xlabel="GSD of the imagery (m)" if mode == "imagery" else None, names=names)
    if as_json:  # one model: a list of rows per GSD; several: {model: rows}
        click.echo(json.dumps(by_model[models[0]] if len(models) == 1 else by_model, indent=2))
        return
    click.echo("model                  gsd_m   run_at  iou     f1      obj_f1  n_pred  n_truth"
               + ("  ceiling_iou  ceiling_obj_f1" if ceiling else ""))
    for m, rows in by_model.items():
        label = curve_label(m, rows, names[m])
        for r in rows:
            best = f"  {r['ceiling_iou']:.4f}       {r['ceiling_obj_f1']:.4f}" if ceiling else ""
            click.echo(f"{label[:22]:<22} {r['gsd_m']:<7} {r['run_gsd_m']:<7} {r['iou']:.4f}  {r['f1']:.4f}  {r['obj_f1']:.4f}  "
                       f"{r['n_pred']:<7} {r['n_truth']}{best}")
