"""Model cards: a model's self-description (JSON), loaded without importing torch."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geoseg.errors import ModelIntegrityError, ModelNotFoundError

REQUIRED = ("name", "architecture", "weights", "sha256", "input", "gsd_m", "gsd_valid_m", "tile_size", "overlap", "threshold")


SEPARATORS = ("border", "gap")  # outputs that mark where touching buildings meet


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def card_field_problem(raw: dict[str, Any]) -> str | None:
    """What is wrong with the card fields present in ``raw`` (types and ranges), or None.

    Only the fields present are checked, so the same check serves a whole card and the fields a training run
    adds on export (``geoseg train --card``)."""
    if "gsd_m" in raw and not (_number(raw["gsd_m"]) and raw["gsd_m"] > 0):
        return f"gsd_m must be a GSD in metres > 0, not {raw['gsd_m']!r}"
    if "gsd_valid_m" in raw:
        v = raw["gsd_valid_m"]
        if not (isinstance(v, list) and len(v) == 2 and all(_number(x) and x > 0 for x in v) and v[0] <= v[1]):
            return f"gsd_valid_m must be [finest, coarsest] in metres, both > 0, not {v!r}"
    t = raw.get("tile_size")
    if "tile_size" in raw and not (isinstance(t, int) and not isinstance(t, bool) and t >= 32 and t % 32 == 0):
        return f"tile_size must be a multiple of 32 pixels, not {t!r}"
    if "overlap" in raw:
        o = raw["overlap"]
        if not (isinstance(o, int) and not isinstance(o, bool) and o >= 0 and (not isinstance(t, int) or 2 * o < t)):
            return f"overlap must be whole pixels >= 0 and under half the tile size, not {o!r}"
    for key in ("threshold", "border_cut"):
        if key in raw and not (_number(raw[key]) and 0 <= raw[key] <= 1):
            return f"{key} must be a probability from 0 to 1, not {raw[key]!r}"
    return None


@dataclass(frozen=True)
class ModelCard:
    """A parsed model card. ``path`` is the card file; ``weights_path`` is resolved next to it."""

    name: str
    path: Path
    architecture: dict[str, Any]
    weights: str
    sha256: str
    input: dict[str, Any]
    gsd_m: float
    gsd_valid_m: tuple[float, float]
    tile_size: int
    overlap: int
    threshold: float
    outputs: tuple[str, ...] = ("building",)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def weights_path(self) -> Path:
        return (self.path.parent / self.weights).resolve()

    @property
    def bands(self) -> int:
        return int(self.architecture.get("in_channels", 3))

    @property
    def normalization(self) -> dict[str, Any]:
        return self.input["normalization"]

    @property
    def border_cut(self) -> float:
        """The separator probability the vectorizer cuts out before splitting (card ``border_cut``, else 0.5):
        tuned per model, since models differ in how high their border output runs."""
        from geoseg.config import DEFAULT_BORDER_CUT

        return float(self.raw.get("border_cut", DEFAULT_BORDER_CUT))

    @property
    def boundary_band(self) -> tuple[int, ...] | None:
        """1-based bands of the separator outputs (``border``, touching-``gap``) in our probability
        rasters, if the model has any: the vectorizer splits touching buildings along their maximum."""
        bands = tuple(i + 1 for i, name in enumerate(self.outputs) if name in SEPARATORS)
        return bands or None

    @classmethod
    def load(cls, path: str | Path) -> ModelCard:
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelNotFoundError(f"model card not found: {path}") from None
        except (OSError, ValueError) as exc:
            raise ModelIntegrityError(f"model card {path} is not valid JSON ({exc}); fix or replace it") from None
        missing = [k for k in REQUIRED if k not in raw]
        if missing:
            raise ModelIntegrityError(f"model card {path} lacks {', '.join(missing)}; see models/README.md for the format")
        problem = card_field_problem(raw)
        if problem:
            raise ModelIntegrityError(f"model card {path}: {problem}; fix the card")
        lo, hi = raw["gsd_valid_m"]
        return cls(
            name=raw["name"], path=path.resolve(), architecture=raw["architecture"], weights=raw["weights"],
            sha256=raw["sha256"].lower(), input=raw["input"], gsd_m=float(raw["gsd_m"]),
            gsd_valid_m=(float(lo), float(hi)), tile_size=int(raw["tile_size"]), overlap=int(raw["overlap"]),
            threshold=float(raw["threshold"]), outputs=tuple(raw.get("outputs", ["building"])), raw=raw,
        )

    def verify_weights(self) -> None:
        """Raise :class:`ModelIntegrityError` unless the weights file hashes to ``sha256``."""
        p = self.weights_path
        if not p.is_file():
            raise ModelNotFoundError(f"weights for model {self.name!r} not found at {p}; put the weights file there (for a shipped model: reinstall geoseg) or fix the card's 'weights'")
        digest = file_sha256(p)
        if digest != self.sha256:
            raise ModelIntegrityError(
                f"weights {p.name} have sha256 {digest[:12]}..., the card says {self.sha256[:12]}...; "
                "the file is corrupt or was replaced: reinstall it or update the card"
            )

    def summary(self) -> dict[str, Any]:
        keys = ("name", "description", "architecture", "outputs", "gsd_m", "gsd_valid_m", "tile_size", "overlap",
                "threshold", "input", "training", "metrics", "license", "attribution", "sha256", "weights_encoding")
        return {k: self.raw[k] for k in keys if k in self.raw}


_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]
