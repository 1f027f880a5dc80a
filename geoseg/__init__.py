"""geoseg: find buildings in aerial and satellite imagery.

The public API is imported lazily so ``import geoseg`` (and ``geoseg --help``)
stays fast and never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "GeosegError",
    "PixelWindow",
    "RasterGrid",
    "SegmentConfig",
    "Tile",
    "TileGrid",
    "VectorizeConfig",
    "__version__",
    "gsd_sweep",
    "plan",
    "score",
    "segment",
    "train_model",
    "vectorize",
]

_LAZY = {
    "SegmentConfig": "geoseg.config", "VectorizeConfig": "geoseg.config", "RasterGrid": "geoseg.grid",
    "PixelWindow": "geoseg.window", "Tile": "geoseg.tiling", "TileGrid": "geoseg.tiling", "GeosegError": "geoseg.errors",
}

if TYPE_CHECKING:
    from geoseg.config import SegmentConfig, VectorizeConfig
    from geoseg.errors import GeosegError
    from geoseg.grid import RasterGrid
    from geoseg.tiling import Tile, TileGrid
    from geoseg.window import PixelWindow


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'geoseg' has no attribute {name!r}")


def _segment_config(model: str = "default", **options: Any):
    """A :class:`geoseg.config.SegmentConfig` from keyword options: its own fields (``device``, ``gsd_m``, ...) and
    those of :class:`geoseg.config.VectorizeConfig` (``threshold``, ``min_area_m2``, ``regularize``, ...), which
    tune ``vectorize`` (itself a ``VectorizeConfig``, if given)."""
    from dataclasses import fields, replace

    from geoseg.config import SegmentConfig, VectorizeConfig

    own = {f.name for f in fields(SegmentConfig)}
    footprint = {f.name for f in fields(VectorizeConfig)}
    unknown = sorted(set(options) - own - footprint)
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(unknown)}; segment options: {', '.join(sorted(own - {'model'}))}; "
                        f"footprint options: {', '.join(sorted(footprint))}")
    cfg = SegmentConfig(model=model, **{k: v for k, v in options.items() if k in own})
    extra = {k: v for k, v in options.items() if k in footprint and k not in own}
    return replace(cfg, vectorize=replace(cfg.vectorize, **extra)) if extra else cfg


def segment(path: str, model: str = "default", *, output: str | None = None, prob: str | None = None,
            progress=None, **options: Any):
    """Segment buildings in the raster at ``path``; return footprints as a GeoDataFrame.

    ``options`` are :class:`geoseg.config.SegmentConfig` fields (``device``, ``gsd_m``, ``batch_size``, ...) and
    :class:`geoseg.config.VectorizeConfig` fields for the footprints (``threshold``, ``min_area_m2``,
    ``regularize``, ...), as the CLI's options.
    """
    from geoseg.engine.segment import segment as _segment

    return _segment(path, output, prob, _segment_config(model, **options), progress).footprints


def plan(path: str, model: str = "default", **options: Any) -> dict:
    """Dry run: the grids, tile count and estimates ``segment`` would use, and the share of valid input pixels."""
    from geoseg.engine.plan import describe_plan
    from geoseg.models.registry import get_card

    cfg = _segment_config(model, **options)
    return describe_plan(path, get_card(cfg.model), cfg)


def vectorize(prob_path: str, output: str | None = None, *, aoi: str | None = None, aoi_margin_m: float = 50.0,
              aoi_clip: bool = False, dst_crs: str | None = None, progress=None, **options: Any):
    """Footprints from an existing probability raster (``options``: VectorizeConfig fields).

    As ``geoseg vectorize``: unset options come from the raster when ``geoseg segment`` wrote it (its threshold,
    border cut and footprint rules: minimum area and part, simplification, squaring, splitting; and its border/gap
    bands to split touching buildings). ``aoi`` (a polygon file): only
    there, with ``aoi_margin_m`` traced beyond it and footprints kept whole or, with ``aoi_clip``, cut at its edge,
    as ``segment(..., aoi=...)``.
    """
    from geoseg.config import VectorizeConfig
    from geoseg.footprints.from_file import AoiLimit, check_outputs, provenance, vectorize_file

    limit = AoiLimit(aoi, aoi_margin_m, aoi_clip) if aoi else None
    if output is not None:
        check_outputs(output, prob_path, limit)
    gdf, used, tags = vectorize_file(prob_path, VectorizeConfig(**options), out_crs=dst_crs, progress=progress, aoi=limit,
                                     given=set(options))
    if output is not None:
        from geoseg.io.vector import write_vectors

        write_vectors(gdf, output, provenance(prob_path, used, tags, limit))
    return gdf


def score(pred: str, truth: str, raster: str | None = None, **options: Any) -> dict:
    """Pixel IoU/precision/recall/F1 and object F1 (IoU >= 0.5, one-to-one) of predicted footprints or a
    probability raster ``pred`` against reference polygons ``truth``, as ``geoseg evaluate``. ``raster`` sets the
    grid and valid area of the pixel scores; ``options``: ``threshold``, ``iou_threshold``, ``breakdown`` (needs a
    raster grid: ``raster``, or ``pred`` a raster; else a :class:`~geoseg.errors.ConfigError`), ``matches`` (a vector
    file of each building's tp/fp/fn status and IoU), ``aoi`` (a polygon file: score only where the truth is complete)."""
    from geoseg.evaluate.run import evaluate as _evaluate

    return _evaluate(pred, truth, raster, **options)


def gsd_sweep(raster: str, truth: str, gsds: list[float], model: str = "default", *, mode: str = "model",
              keep_dir: str | None = None, aoi: str | None = None, ceiling: bool = False, breakdown: bool = False,
              iou_threshold: float = 0.5, progress=None, **options: Any) -> list[dict]:
    """Score ``model`` on ``raster`` resampled to each GSD, as ``geoseg evaluate --gsd-sweep``: one dict of scores per
    GSD. ``mode``: ``"model"`` runs the model at each GSD, ``"imagery"`` makes imagery of each GSD and segments it
    as ``segment`` would. ``aoi``: score only inside these polygons. ``ceiling``: also score a perfect model on each
    run's grid (``ceiling_iou``, ...); ``breakdown``: also how much of the pixel error is whole buildings missed or
    invented; ``iou_threshold``: the IoU of an object match (as ``--ceiling``, ``--breakdown``, ``--iou``).
    ``options`` are ``segment``'s (``tile_size``, ``tta``, ``threshold``, ...). GSDs that are not finite and
    positive, or far finer than the raster's, are a :class:`~geoseg.errors.ConfigError`."""
    from geoseg.evaluate.sweep import gsd_sweep as _sweep

    return _sweep(raster, truth, list(gsds), model, progress, base_config=_segment_config(**options),
                  keep_dir=keep_dir, mode=mode, aoi=aoi, ceiling=ceiling, breakdown=breakdown,
                  iou_threshold=iou_threshold)


def train_model(config: Any, out_dir: str | None = None, *, export_dir: str | None = None, card_extra: Any = None,
                int8: bool = False, progress=None) -> dict:
    """Train from an experiment (a TOML/YAML file or its dict; see ``docs/training.md``), resuming ``out_dir``;
    with ``export_dir``, export the best checkpoint as a model card. ``progress``: a :class:`geoseg.progress.Progress`
    that sees every step and may cancel (the steps taken are kept). Returns ``{"best": path, "card": path}``."""
    from geoseg.train.run import train_experiment

    return train_experiment(config, out_dir, export_dir, card_extra, int8, show_progress=progress or False)
