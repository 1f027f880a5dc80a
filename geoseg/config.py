"""Typed, immutable run configurations. The CLI, QGIS and Dask only build these."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

Blend = Literal["cosine", "gaussian", "crop"]
Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
DEFAULT_BORDER_CUT = 0.5  # border/gap probability cut out of shapes before splitting, for cards that set none


@dataclass(frozen=True)
class VectorizeConfig:
    """How a probability raster becomes footprints.

    ``threshold`` is a probability in [0, 1] (None: the model card's). ``min_area_m2``
    drops small instances; when touching buildings are split, a piece under
    ``min_part_m2`` joins the neighbour it shares most border with (docs/splitting.md).
    ``border_cut`` (0-1, None: the model card's, else 0.5): pixels whose border/gap probability is at least this
    are cut out of a shape before it is split; lower values split touching buildings more readily.
    ``simplify_m`` is the Douglas-Peucker tolerance in metres (None: one pixel). ``regularize`` squares building outlines, falling back to the
    raw polygon when the squared one has IoU < ``regularize_min_iou`` with it.
    ``band_rows``/``halo_rows`` bound memory: the raster is processed in 2-D blocks of
    ``band_rows`` x ``band_rows`` pixels plus a halo of ``halo_rows`` on every side.
    """

    threshold: float | None = None
    split_touching: bool = True
    min_area_m2: float = 10.0
    min_part_m2: float = 20.0
    border_cut: float | None = None
    simplify_m: float | None = None
    regularize: bool = False
    regularize_min_iou: float = 0.85
    boundary_band: int | tuple[int, ...] | None = None  # 1-based separator band(s) (border, gap); their max is used
    band_rows: int = 2048
    halo_rows: int = 256

    def __post_init__(self) -> None:
        from geoseg.errors import ConfigError

        for name in ("threshold", "border_cut", "regularize_min_iou"):
            v = getattr(self, name)
            if v is not None and not 0.0 <= v <= 1.0:
                raise ConfigError(f"{name.replace('_', ' ')} {v} is not a probability; give a value from 0 to 1")
        for name in ("min_area_m2", "min_part_m2", "simplify_m"):
            v = getattr(self, name)
            if v is not None and not v >= 0:
                raise ConfigError(f"{name} {v} is negative; give 0 or more")
        if self.band_rows < 1 or self.halo_rows < 0:
            raise ConfigError(f"band_rows {self.band_rows} and halo_rows {self.halo_rows} must be >= 1 and >= 0")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SegmentConfig:
    """Everything ``geoseg segment`` needs besides the input and output paths."""

    model: str = "default"
    device: Device = "auto"
    precision: Precision = "auto"
    batch_size: int = 8
    gsd_m: float | Literal["native"] | None = None  # None: the model's GSD; "native": the input's, within the valid range
    allow_any_gsd: bool = False  # let gsd_m leave the model's valid range (scale sweeps)
    tile_size: int | None = None  # None: the model card's
    overlap: int | None = None  # None: the model card's
    blend: Blend = "cosine"
    tta: Literal["none", "flip", "d4"] = "none"  # test-time augmentation: 1, 4 or 8 forward passes per tile
    tta_scales: tuple[float, ...] = (1.0,)  # zoom factors of multi-scale inference (0.5: also at twice the GSD)
    dst_crs: str | None = None
    compress: Literal["deflate", "zstd"] = "deflate"
    cog: bool = False
    resume: bool = True
    keep_work: bool = False
    block_width: int = 4096  # working-grid columns processed at once: bounds memory on wide rasters
    bands: tuple[int, ...] | None = None  # 1-based source bands in model order; None: first data bands
    aoi: str | None = None  # polygon file (any CRS): run only there (docs/aoi.md)
    aoi_margin_m: float = 50.0  # predict this far beyond the aoi, so buildings across its edge come out whole
    aoi_clip: bool = False  # cut footprints at the aoi's edge (default: keep those whose inside point is in it, whole)
    vectorize: VectorizeConfig = field(default_factory=VectorizeConfig)

    def __post_init__(self) -> None:
        from geoseg.errors import ConfigError

        if not self.aoi_margin_m >= 0:
            raise ConfigError(f"aoi margin {self.aoi_margin_m} m is negative; give 0 or more metres")

    def to_dict(self) -> dict:
        return asdict(self)
