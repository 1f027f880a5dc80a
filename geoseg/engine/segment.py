"""``segment``: GeoTIFF in, georeferenced probability raster and footprints out."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from geoseg.aoi import clip, outline, renumbered, restrict, to_crs
from geoseg.config import SegmentConfig
from geoseg.engine.plan import MIN_WORK_PIXELS, Plan, plan_for
from geoseg.engine.run import RunStats, chunk_windows, predict_rows
from geoseg.engine.workdir import WorkDir, fingerprint, work_dir_for
from geoseg.errors import Cancelled, InputError, set_resume
from geoseg.georef import wrapped_crs
from geoseg.io.atomic import check_not_an_input
from geoseg.io.prob_raster import check_raster_output, write_probability
from geoseg.models.registry import get_card
from geoseg.progress import NullProgress, Progress
from geoseg.runlock import output_locks

GDAL_CACHE_MB = 64


@dataclass
class SegmentResult:
    footprints: object  # geopandas.GeoDataFrame, or None when not requested
    plan: Plan
    stats: RunStats
    vector_path: Path | None
    prob_path: Path | None
    resumed: bool


def provenance(card, cfg: SegmentConfig, plan: Plan, input_path: str) -> dict[str, str]:
    from geoseg import __version__

    return {
        "geoseg_version": __version__, "model": card.name, "model_sha256": card.sha256,
        "input": os.path.abspath(input_path), "work_crs": str(plan.work_grid.crs), "gsd_m": str(plan.work_gsd_m),
        "settings": json.dumps(cfg.to_dict(), sort_keys=True),
    }


def segment(input_path: str, output: str | Path | None = None, prob: str | Path | None = None,
            config: SegmentConfig | None = None, progress: Progress | None = None,
            return_footprints: bool = True) -> SegmentResult:
    """Run a building model over ``input_path``.

    Writes footprints to ``output`` (by extension) and the probability raster to
    ``prob`` when given; returns the footprints as a GeoDataFrame. Interrupted runs
    with an output path resume from the finished rows of tiles.
    """
    from geoseg.io.vector import check_vector_output

    cfg, progress = config or SegmentConfig(), progress or NullProgress()
    output, prob = (Path(output) if output else None), (Path(prob) if prob else None)
    card = get_card(cfg.model)
    v = cfg.vectorize  # the card's threshold and border cut, unless given: recorded in the outputs' settings tag
    cfg = replace(cfg, vectorize=replace(v, threshold=card.threshold if v.threshold is None else v.threshold,
                                         border_cut=card.border_cut if v.border_cut is None else v.border_cut))
    check_not_an_input({"the output": output, "--prob": prob}, {"the input": input_path, "--aoi": cfg.aoi})
    if output is not None:
        check_vector_output(output)
    if prob is not None:
        check_raster_output(prob)
    info, plan = plan_for(input_path, card, cfg)

    anchor = output or prob
    tmp_root = None if anchor else tempfile.TemporaryDirectory(prefix="geoseg-")
    wd_path = work_dir_for(anchor) if anchor else Path(tmp_root.name) / "work"
    try:
        with output_locks(output, prob), _gdal_env():
            progress.update(0, 1, "load model")  # the first words of a run, before the weights load
            predictor = _predictor(card, cfg)
            progress.update(1, 1, "load model")
            fp = fingerprint({"input": os.path.abspath(input_path), "files": _input_files(input_path),
                              "model": card.sha256, "card": _card_key(card), "plan": plan.describe(),
                              "block_width": plan.block_width, "blend": cfg.blend, "bands": info.bands,
                              "scale": info.scale, "device": predictor.device, "precision": predictor.precision,
                              "tta": predictor.tta, **_scales_key(predictor), **_aoi_key(plan),
                              **({} if predictor.runtime == "torch" else {"runtime": predictor.runtime})})
            work = WorkDir(wd_path, plan.work_grid, plan.n_channels, fp, resume=cfg.resume)
            try:
                return _run(info, plan, card, cfg, predictor, work, input_path, output, prob, progress, return_footprints)
            except BaseException as exc:  # Cancelled, Ctrl-C, a termination: say what a rerun reuses
                if isinstance(exc, Cancelled) or not isinstance(exc, Exception):
                    set_resume(exc, _what_is_kept(plan, work if anchor else None, cfg.resume))
                raise
    finally:
        if tmp_root is not None:
            tmp_root.cleanup()


def _what_is_kept(plan: Plan, work: WorkDir | None, resume: bool) -> str:
    """What a rerun of an interrupted run reuses: the finished parts (tile rows x column blocks) in ``work``."""
    if work is None:
        return "nothing was kept (only a run with an output, -o or --prob, can resume)"
    chunks = chunk_windows(plan)
    done = sum(work.done(i) for i in chunks)
    if done == 0:
        return "no row of tiles had finished, so a rerun starts from the beginning"
    rerun = "rerun the same command" if resume else "rerun without --no-resume"
    if done == len(chunks):
        return f"the prediction had finished; {rerun} to reuse it"
    return f"{rerun} to resume from the {done} of {len(chunks)} finished parts (rows of tiles)"


def _input_files(input_path: str) -> list:
    """Path, size and modification time of every file GDAL reads for the input (a VRT's sources, masks,
    ``.aux.xml``), for the resume fingerprint: a changed source must not resume into a mix of old and new rows."""
    import rasterio

    try:
        with rasterio.open(input_path) as ds:
            files = sorted({input_path, *ds.files})
    except Exception:  # noqa: BLE001 - the fingerprint then falls back to the input file alone
        files = [input_path]
    out = []
    for f in files:
        st = os.stat(f) if os.path.exists(f) else None
        out.append([os.path.abspath(f), st and st.st_size, st and st.st_mtime_ns])
    return out


def _card_key(card) -> dict:
    """What in a model card shapes the probabilities besides its weights (their sha256 is keyed apart)."""
    raw = card.raw or {}
    return {k: raw.get(k) for k in ("architecture", "input", "outputs")}


def _gdal_env():
    """Bound GDAL's block cache (default: 5% of RAM) unless the user chose a size."""
    import rasterio

    return rasterio.Env() if "GDAL_CACHEMAX" in os.environ else rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 2**20)


def _run(info, plan: Plan, card, cfg: SegmentConfig, predictor, work: WorkDir, input_path: str,
         output: Path | None, prob: Path | None, progress: Progress, return_footprints: bool) -> SegmentResult:
    from geoseg.footprints.raster import vectorize_raster
    from geoseg.io.atomic import deferred_commits
    from geoseg.io.vector import write_vectors

    stats = predict_rows(info, plan, predictor, cfg.blend, work, progress)
    if not stats.any_valid:
        work.remove()
        h, w = plan.work_grid.shape_yx
        if h * w <= MIN_WORK_PIXELS:
            raise InputError(f"{input_path} is only {h}x{w} pixels at {plan.work_gsd_m:g} m, too few to segment; "
                             "run it at a finer GSD")
        if cfg.aoi:
            raise InputError(f"{input_path} has no valid pixel centred inside the aoi {cfg.aoi} at {plan.work_gsd_m:g} m "
                             "(the imagery there is nodata, or the aoi and its margin are narrower than a pixel); "
                             "nothing to segment: widen the aoi or --aoi-margin")
        raise InputError(f"{input_path} has no valid pixels (all nodata or masked); nothing to segment")
    chunks = chunk_windows(plan)
    mosaic = work.vrt(chunks)
    meta = provenance(card, cfg, plan, input_path)
    gdf = None
    if output is not None or return_footprints:
        vcfg = cfg.vectorize
        if vcfg.boundary_band is None and card.boundary_band is not None:
            vcfg = replace(vcfg, boundary_band=card.boundary_band)
        gdf = vectorize_raster(mosaic, vcfg, model_name=card.name,  # vcfg holds the card's threshold and cut (segment())
                               out_crs=plan.out_grid.crs, progress=progress, warn_low_values=False)
        gdf["gsd_m"] = float(plan.work_gsd_m)  # the GSD the model ran at (its grid's ground size varies by UTM scale)
        if plan.resampled:
            gdf = _clip_to_input(gdf, plan, vcfg.min_area_m2)
        if plan.aoi is not None:
            out_crs = wrapped_crs(gdf.crs, plan.out_grid)  # the footprints' longitudes run past 180 where its do
            area = to_crs(plan.aoi, plan.work_grid.crs, out_crs)
            gdf = restrict(gdf, area, cfg.aoi_clip, vcfg.min_area_m2,
                           region=to_crs(plan.region, plan.work_grid.crs, out_crs), px_m=plan.work_gsd_m)
    with deferred_commits():  # both outputs are replaced together or not at all (a cancel between them: neither)
        if prob is not None:
            area = None if plan.aoi is None else to_crs(plan.aoi, plan.work_grid.crs,
                                                        wrapped_crs(plan.out_grid.crs, plan.out_grid))
            write_probability(mosaic, prob, plan.out_grid, plan.n_channels, compress=cfg.compress, cog=cfg.cog,
                              tags=meta, progress=progress, valid_path=work.validity_vrt(chunks),
                              band_names=card.outputs, within=area)
        if output is not None:
            write_vectors(gdf, output, meta)
    if not cfg.keep_work:
        work.remove()
    return SegmentResult(gdf, plan, stats, output, prob, work.resumed)


def _clip_to_input(gdf, plan: Plan, min_area_m2: float):
    """The working grid is snapped outward; keep footprints within the input raster's footprint (pieces cut under
    ``min_area_m2`` are dropped, as everywhere else)."""
    import geopandas as gpd

    if gdf.empty:
        return gdf
    edge = gpd.GeoSeries([outline(plan.input_grid)], crs=plan.input_grid.crs).segmentize(max(plan.input_grid.res_xy) * 64)
    return renumbered(clip(gdf, edge.to_crs(gdf.crs).iloc[0], min_area_m2))


def _predictor(card, cfg: SegmentConfig):
    from geoseg.engine.device import resolve_device
    from geoseg.engine.onnx_runtime import check_runtime, onnx_module
    from geoseg.engine.predictor import Predictor
    from geoseg.models.loading import load_module

    check_runtime(cfg.runtime, cfg.device, cfg.precision)  # said before the weights load, as is:
    resolve_device(cfg.device)  # --device cuda without a GPU
    module = onnx_module(card) if cfg.runtime == "onnx" else load_module(card)
    return Predictor(module, card, cfg.device, cfg.precision, cfg.batch_size, cfg.tta, cfg.tta_scales, cfg.runtime)


def _aoi_key(plan: Plan) -> dict:
    """The region the model's output is kept in, for the resume fingerprint; absent without an aoi."""
    import hashlib

    import shapely

    return {} if plan.region is None else {"region": hashlib.sha256(shapely.to_wkb(plan.region)).hexdigest()}


def _scales_key(predictor) -> dict:
    """Multi-scale settings for the resume fingerprint; absent for a single scale, so older work folders still match."""
    return {} if predictor.tta_scales == (1.0,) else {"tta_scales": list(predictor.tta_scales)}
