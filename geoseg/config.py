"""Typed, immutable run configurations. The CLI, QGIS and Dask only build these."""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

Blend = Literal["cosine", "gaussian", "crop"]
Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Runtime = Literal["torch", "onnx"]
Tta = Literal["none", "flip", "d4"]
Compress = Literal["deflate", "zstd"]
DEFAULT_BORDER_CUT = 0.5  # border/gap probability cut out of shapes before splitting, for cards that set none

# Options as users know them: the CLI flag, with the keyword of the Python API (geoseg.segment(..., gsd_m=0.3)) where
# it differs. Fields with no flag are named as in the API.
OPTION_NAMES = {
    "threshold": "--threshold", "border_cut": "--border-cut", "min_area_m2": "--min-area", "min_part_m2": "--min-part",
    "simplify_m": "--simplify", "model": "--model", "device": "--device", "precision": "--precision", "runtime": "--runtime",
    "batch_size": "--batch-size", "gsd_m": "--gsd", "tile_size": "--tile-size", "overlap": "--overlap",
    "blend": "--blend", "tta": "--tta", "tta_scales": "--tta-scales", "dst_crs": "--dst-crs", "compress": "--compress",
    "bands": "--bands", "aoi": "--aoi", "aoi_margin_m": "--aoi-margin",
}


def option_name(name: str) -> str:
    """``"--gsd (gsd_m)"``, ``"--tile-size"``, ``"band_rows"``: how an error names config field ``name``."""
    flag = OPTION_NAMES.get(name)
    if flag is None:
        return name
    return flag if flag[2:].replace("-", "_") == name else f"{flag} ({name})"


def _fail(name: str, what: str, value: Any, advice: str = "") -> None:
    from geoseg.errors import ConfigError

    shown = " ".join(repr(value).split())
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise ConfigError(f"{option_name(name)} must be {what}, not {shown}" + (f"; {advice}" if advice else ""))


def _real(v: Any) -> bool:
    """A real number (Python's or numpy's), not a bool and not text."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _integer(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _sequence(v: Any) -> bool:
    """A list, tuple or 1-D array: what a tuple field accepts (text is not a sequence of values here)."""
    if isinstance(v, (list, tuple, range)):
        return True
    return getattr(v, "ndim", None) == 1 and hasattr(v, "tolist")


class _Checks:
    """``__post_init__`` helpers: each checks one field and stores it back in a plain Python type (numpy numbers
    become ``float``/``int``, lists tuples), so configs compare, hash and serialise (the outputs' settings tag) alike
    however they were built."""

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def _number(self, name: str, lo: float, hi: float = math.inf, *, lo_open: bool = False, optional: bool = False,
                what: str = "", advice: str = "") -> None:
        v = getattr(self, name)
        if v is None and optional:
            return
        ok = _real(v) and math.isfinite(v) and (lo < v if lo_open else lo <= v) and v <= hi
        if not ok:
            _fail(name, what or (f"a number >= {lo:g}" if hi == math.inf else f"a number from {lo:g} to {hi:g}"), v, advice)
        if type(v) not in (int, float):
            self._set(name, float(v))

    def _whole(self, name: str, lo: int | None = None, *, optional: bool = False, advice: str = "") -> None:
        v = getattr(self, name)
        if v is None and optional:
            return
        if not (_integer(v) and (lo is None or v >= lo)):
            _fail(name, "a whole number" + ("" if lo is None else f" >= {lo}"), v, advice)
        self._set(name, int(v))

    def _choice(self, name: str, choices: tuple[str, ...]) -> None:
        v = getattr(self, name)
        if not (isinstance(v, str) and v in choices):
            _fail(name, f"one of {', '.join(choices)}", v)

    def _whole_tuple(self, name: str, lo: int, *, empty: bool, what: str, advice: str) -> None:
        v = getattr(self, name)
        items = list(v.tolist() if hasattr(v, "tolist") else v) if _sequence(v) else None
        if items is None or not (empty or items) or not all(_integer(x) and x >= lo for x in items):
            _fail(name, what, v, advice)
        self._set(name, tuple(int(x) for x in items))


@dataclass(frozen=True)
class VectorizeConfig(_Checks):
    """How a probability raster becomes footprints.

    ``threshold`` is a probability in [0, 1] (None: the model card's). ``min_area_m2``
    drops small instances; when touching buildings are split, a piece under
    ``min_part_m2`` joins the neighbour it shares most border with (docs/splitting.md).
    ``border_cut`` (above 0, at most 1; None: the model card's, else 0.5): pixels whose border/gap probability is at least this
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
        """One-line :class:`~geoseg.errors.ConfigError` for a value of the wrong type or out of range."""
        for name in ("threshold", "regularize_min_iou"):
            self._number(name, 0.0, 1.0, optional=name == "threshold", what="a probability",
                         advice="give a value from 0 to 1")
        self._number("border_cut", 0.0, 1.0, lo_open=True, optional=True, what="a probability above 0",
                     advice="give a value above 0 and at most 1 (lower splits touching buildings more)")
        for name, unit in (("min_area_m2", "square metres"), ("min_part_m2", "square metres"), ("simplify_m", "metres")):
            self._number(name, 0.0, optional=name == "simplify_m", what="a number >= 0", advice=f"give 0 or more {unit}")
        self._whole("band_rows", 1)
        self._whole("halo_rows", 0)
        if self.boundary_band is not None:
            if _integer(self.boundary_band):
                self._whole("boundary_band", 1, advice="give the 1-based band of the border/gap output")
            else:
                self._whole_tuple("boundary_band", 1, empty=True, what="a band number or a tuple of them, from 1 up",
                                  advice="give the 1-based band(s) of the border/gap outputs, e.g. (2, 3)")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SegmentConfig(_Checks):
    """Everything ``geoseg segment`` needs besides the input and output paths."""

    model: str = "default"
    device: Device = "auto"
    precision: Precision = "auto"
    runtime: Runtime = "torch"  # "onnx": ONNX Runtime on the CPU (fp32), faster there without native bf16
    batch_size: int = 8
    gsd_m: float | Literal["native"] | None = None  # None: the model's GSD; "native": the input's, within the valid range
    allow_any_gsd: bool = False  # let gsd_m leave the model's valid range (scale sweeps)
    tile_size: int | None = None  # None: the model card's
    overlap: int | None = None  # None: the model card's
    blend: Blend = "cosine"
    tta: Tta = "none"  # test-time augmentation: 1, 4 or 8 forward passes per tile
    tta_scales: tuple[float, ...] = (1.0,)  # zoom factors of multi-scale inference (0.5: also at twice the GSD)
    dst_crs: str | None = None
    compress: Compress = "deflate"
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
        """One-line :class:`~geoseg.errors.ConfigError` for a value of the wrong type or out of range, checked here
        so that the Python API refuses what the CLI refuses, before any work. What needs the model card or the
        input (a GSD outside the model's range, a tile size that is no multiple of 32, bands the raster lacks, a
        CRS) is checked when the run is planned."""
        from geoseg.engine.tta import check_scales

        for name in ("model", "aoi"):
            v = getattr(self, name)
            if isinstance(v, os.PathLike):
                self._set(name, os.fspath(v))
        if not (isinstance(self.model, str) and self.model):
            _fail("model", "a model name or a model card path (*.json)", self.model, "see `geoseg models list`")
        if not (self.aoi is None or isinstance(self.aoi, str)):
            _fail("aoi", "the path of a polygon file", self.aoi)
        self._choice("device", get_args(Device))
        self._choice("precision", get_args(Precision))
        self._choice("runtime", get_args(Runtime))
        self._choice("blend", get_args(Blend))
        self._choice("tta", get_args(Tta))
        self._choice("compress", get_args(Compress))
        self._whole("batch_size", 1, advice="give how many tiles go through the model at once")
        if not (isinstance(self.gsd_m, str) and self.gsd_m == "native"):
            self._number("gsd_m", 0.0, lo_open=True, optional=True, what="metres (a number > 0) or 'native'",
                         advice="e.g. 0.3, or 'native' for the input's own GSD")
        self._whole("tile_size", optional=True, advice="give a multiple of 32, e.g. 512")
        self._whole("overlap", 0, optional=True, advice="give whole pixels, under half the tile size")
        self._whole("block_width", 1)
        if self.bands is not None:
            self._whole_tuple("bands", 1, empty=False, what="band numbers from 1 up, in model order",
                              advice="e.g. (3, 2, 1): band 3 as red, 2 as green, 1 as blue")
        if not (_sequence(self.tta_scales) and all(_real(s) for s in self.tta_scales)):
            _fail("tta_scales", "a sequence of zoom factors", self.tta_scales, "e.g. (1.0, 0.5)")
        self._set("tta_scales", tuple(float(s) for s in self.tta_scales))
        check_scales(self.tta_scales)  # in range (its message names the scale)
        if self.dst_crs is not None and not isinstance(self.dst_crs, str) and hasattr(self.dst_crs, "to_wkt"):
            self._set("dst_crs", self.dst_crs.to_string())  # a rasterio or pyproj CRS: text, as the settings tag holds
        self._number("aoi_margin_m", 0.0, what="a number >= 0", advice="give 0 or more metres")
        if not isinstance(self.vectorize, VectorizeConfig):
            _fail("vectorize", "a VectorizeConfig", self.vectorize,
                  "or pass its fields as options, e.g. geoseg.segment(..., threshold=0.6)")

    def to_dict(self) -> dict:
        return asdict(self)
