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
    "plan",
    "segment",
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


def segment(path: str, model: str = "default", *, output: str | None = None, prob: str | None = None,
            progress=None, **options: Any):
    """Segment buildings in the raster at ``path``; return footprints as a GeoDataFrame.

    ``options`` are :class:`geoseg.config.SegmentConfig` fields (``device``, ``gsd_m``,
    ``batch_size``, ...); ``vectorize=VectorizeConfig(...)`` tunes the footprints.
    """
    from geoseg.config import SegmentConfig
    from geoseg.engine.segment import segment as _segment

    cfg = SegmentConfig(model=model, **options)
    return _segment(path, output, prob, cfg, progress).footprints


def plan(path: str, model: str = "default", **options: Any) -> dict:
    """Dry run: the grids, tile count and estimates ``segment`` would use."""
    from geoseg.config import SegmentConfig
    from geoseg.engine.plan import make_plan
    from geoseg.io.raster import inspect_raster
    from geoseg.models.registry import get_card

    cfg = SegmentConfig(model=model, **options)
    card = get_card(cfg.model)
    return make_plan(inspect_raster(path, card.bands, cfg.bands), card, cfg).describe()


def vectorize(prob_path: str, output: str | None = None, **options: Any):
    """Footprints from an existing probability raster (``options``: VectorizeConfig fields).

    As ``geoseg vectorize``: unset options come from the raster when ``geoseg segment`` wrote it
    (its threshold, and its border/gap bands to split touching buildings).
    """
    from geoseg.config import VectorizeConfig
    from geoseg.footprints.raster import settings_from_raster, vectorize_raster

    cfg, tags = settings_from_raster(prob_path, VectorizeConfig(**options))
    gdf = vectorize_raster(prob_path, cfg, model_name=tags.get("model", ""))
    if output is not None:
        from geoseg.io.vector import write_vectors

        write_vectors(gdf, output, {"source": str(prob_path)})
    return gdf
