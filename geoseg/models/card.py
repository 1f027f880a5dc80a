"""Model cards: a model's self-description (JSON), loaded without importing torch."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geoseg.errors import ModelCardNotFoundError, ModelIntegrityError, ModelNotFoundError

REQUIRED = ("name", "architecture", "weights", "sha256", "input", "gsd_m", "gsd_valid_m", "tile_size", "overlap", "threshold")
OPTIONAL = ("outputs", "weights_encoding", "border_cut", "description", "training", "train_command", "train_cwd",
            "card_defaults_from", "data", "metrics", "throughput_mps", "license", "attribution")
FIELDS = frozenset(REQUIRED + OPTIONAL)  # every field a card holds (models/README.md); the card fields a caller adds


SEPARATORS = ("border", "gap")  # outputs that mark where touching buildings meet


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _whole(v: Any, least: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= least


def _text(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _short(v: Any, limit: int = 60) -> str:
    """``repr(v)`` cut to one short line, for messages about a whole block of a card."""
    text = " ".join(repr(v).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


SHA256 = re.compile(r"[0-9a-fA-F]{64}")
THROUGHPUT_KEYS = ("cpu", "cpu_fp32", "cuda")  # the measured speeds engine/plan.py reads (MP/s)
ARCH_EXAMPLE = '{"name": "unet", "encoder": "resnet18", "in_channels": 3, "classes": 2}'


def _architecture_problem(arch: Any) -> str | None:
    """What :func:`geoseg.models.arch.build_module` cannot build from ``arch`` (types only: the names of
    architectures and encoders are checked where torch is loaded)."""
    if not isinstance(arch, dict):
        return f"architecture must be an object such as {ARCH_EXAMPLE}, not {_short(arch)}"
    for key in ("name", "encoder"):
        if key in arch and not _text(arch[key]):
            return f"architecture.{key} must be a name (text), not {_short(arch[key])}"
    for key in ("in_channels", "classes", "aspp_mid", "aspp_out"):
        if key in arch and not _whole(arch[key], 1):
            return f"architecture.{key} must be a whole number >= 1, not {_short(arch[key])}"
    for key in ("decoder_channels", "rates"):
        v = arch.get(key)
        if key in arch and not (isinstance(v, list) and v and all(_whole(x, 1) for x in v)):
            return f"architecture.{key} must be a list of whole numbers >= 1, not {_short(v)}"
    return None


def _input_problem(inp: Any, bands: int) -> str | None:
    """What is wrong with the ``input`` block for a model of ``bands`` input channels."""
    example = '{"normalization": {"mean": [127.5, ...], "std": [127.5, ...]}}'
    if not isinstance(inp, dict):
        return f"input must be an object such as {example}, not {_short(inp)}"
    norm = inp.get("normalization")
    shape = f'{{"mean": [...], "std": [...]}} with one number per band ({bands} bands, in 0-255 units)'
    if "normalization" not in inp:
        return f"input.normalization is missing; give {shape}"
    if not (isinstance(norm, dict) and "mean" in norm and "std" in norm):
        return f"input.normalization must be {shape}, not {_short(norm)}"
    for key in ("mean", "std"):
        v = norm[key]
        if not (isinstance(v, list) and len(v) == bands and all(_number(x) for x in v)):
            return f"input.normalization.{key} must list {bands} numbers, one per band (architecture.in_channels), not {_short(v)}"
    if not all(x > 0 for x in norm["std"]):
        return f"input.normalization.std must be > 0 for every band, not {_short(norm['std'])}"
    if "bands" in inp:
        v = inp["bands"]
        if not (isinstance(v, list) and len(v) == bands and all(_text(x) for x in v)):
            return f"input.bands must name the {bands} bands in order (e.g. [\"red\", \"green\", \"blue\"]), not {_short(v)}"
    return None


def card_field_problem(raw: dict[str, Any]) -> str | None:
    """What is wrong with the card fields present in ``raw`` (types and ranges), or None.

    Only the fields present are checked, so the same check serves a whole card and the fields a training run
    adds on export (``geoseg train --card``); fields that depend on each other (``outputs`` and
    ``architecture.classes``, ``input.normalization`` and ``architecture.in_channels``) are compared when both are
    there."""
    if not isinstance(raw, dict):
        return f"a model card must be a JSON object of fields (name, architecture, weights, ...), not {_short(raw)}"
    if "name" in raw and not _text(raw["name"]):
        return f"name must be the model's name (text), not {_short(raw['name'])}"
    if "weights" in raw and not _text(raw["weights"]):
        return f"weights must be the path of the weights file (text, relative to the card), not {_short(raw['weights'])}"
    if "sha256" in raw and not (isinstance(raw["sha256"], str) and SHA256.fullmatch(raw["sha256"])):
        return f"sha256 must be the weights file's SHA-256 (64 hex digits, as sha256sum prints it), not {_short(raw['sha256'])}"
    arch = raw.get("architecture")
    if "architecture" in raw:
        problem = _architecture_problem(arch)
        if problem:
            return problem
    arch = arch if isinstance(arch, dict) else {}
    if "input" in raw:
        problem = _input_problem(raw["input"], arch.get("in_channels", 3))
        if problem:
            return problem
    if "outputs" in raw:
        v = raw["outputs"]
        if not (isinstance(v, list) and v and all(_text(x) for x in v)):
            return f"outputs must list the model's output names, e.g. [\"building\", \"border\"], not {_short(v)}"
        if "architecture" in raw and len(v) != arch.get("classes", 1):
            return (f"outputs lists {len(v)} names but architecture.classes is {arch.get('classes', 1)} "
                    "(one name per output channel)")
    if "gsd_m" in raw and not (_number(raw["gsd_m"]) and raw["gsd_m"] > 0):
        return f"gsd_m must be a GSD in metres > 0, not {_short(raw['gsd_m'])}"
    if "gsd_valid_m" in raw:
        v = raw["gsd_valid_m"]
        if not (isinstance(v, list) and len(v) == 2 and all(_number(x) and x > 0 for x in v) and v[0] <= v[1]):
            return f"gsd_valid_m must be [finest, coarsest] in metres, both > 0, not {_short(v)}"
        g = raw.get("gsd_m")
        if _number(g) and not v[0] * (1 - 1e-9) <= g <= v[1] * (1 + 1e-9):  # the engine would run it outside its range
            return (f"gsd_m {g:g} lies outside gsd_valid_m [{v[0]:g}, {v[1]:g}] (the GSD the model runs at must be one it "
                    "is valid for); give a gsd_m inside the range, or widen gsd_valid_m")
    t = raw.get("tile_size")
    if "tile_size" in raw and not (_whole(t, 32) and t % 32 == 0):
        return f"tile_size must be a multiple of 32 pixels, not {_short(t)}"
    if "overlap" in raw:
        o = raw["overlap"]
        if not (_whole(o) and (not _whole(t) or 2 * o < t)):
            return f"overlap must be whole pixels >= 0 and under half the tile size, not {_short(o)}"
    if "threshold" in raw and not (_number(raw["threshold"]) and 0 < raw["threshold"] < 1):
        return f"threshold must be a probability above 0 and below 1, not {_short(raw['threshold'])}"
    if "border_cut" in raw and not (_number(raw["border_cut"]) and 0 < raw["border_cut"] <= 1):
        return f"border_cut must be a probability above 0, at most 1, not {_short(raw['border_cut'])}"
    if "throughput_mps" in raw:
        v = raw["throughput_mps"]
        bad = not isinstance(v, dict) or any(k in v and not (_number(v[k]) and v[k] > 0) for k in THROUGHPUT_KEYS)
        if bad:
            return (f"throughput_mps must be an object of measured speeds in megapixels per second > 0 "
                    f"({', '.join(THROUGHPUT_KEYS)}), not {_short(v)}")
    if "metrics" in raw and not isinstance(raw["metrics"], dict):  # `geoseg models list` reads metrics.val_iou
        return f"metrics must be an object, not {_short(raw['metrics'])}"
    return None


def card_extra_problem(extra: dict[str, Any]) -> str | None:
    """What is wrong with card fields a caller adds to an exported card (``geoseg train --card``): a field no card
    holds (a misspelt ``licence`` would be written and ignored) named with the nearest known one, or what
    :func:`card_field_problem` finds."""
    import difflib

    if isinstance(extra, dict):
        for key in extra:
            if key not in FIELDS:
                near = difflib.get_close_matches(str(key), sorted(FIELDS), n=1)
                hint = f"did you mean {near[0]}?" if near else "see models/README.md for the card fields"
                return f"{key} is not a model card field ({hint}); fix or remove it"
    return card_field_problem(extra)


def _whole_card_problem(raw: dict[str, Any]) -> str | None:
    """Checks that only make sense on a whole card (:func:`card_field_problem` also checks parts of one)."""
    classes = raw["architecture"].get("classes", 1)
    if "outputs" not in raw and classes != 1:
        return (f"outputs is missing, and architecture.classes is {classes}: list one name per output channel, "
                "e.g. [\"building\", \"border\"]")
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
        """The card at ``path``: a one-line :class:`ModelNotFoundError` when there is no such file, a one-line
        :class:`ModelIntegrityError` naming the field when the card is not one the engine can run (nothing
        else is read, so a bad card fails before any work)."""
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelCardNotFoundError(f"model card not found: {path}; check the path, or run `geoseg models list` "
                                     "for the installed models and pass one's name") from None
        except IsADirectoryError:
            raise ModelIntegrityError(f"model card {path} is a folder, not a card file (*.json); pass the card file in it") from None
        except (OSError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelIntegrityError(f"model card {path} is not valid JSON ({first}); fix or replace it") from None
        if not isinstance(raw, dict):
            raise ModelIntegrityError(f"model card {path}: {card_field_problem(raw)}; fix the card")
        missing = [k for k in REQUIRED if k not in raw]
        if missing:
            raise ModelIntegrityError(f"model card {path} lacks {', '.join(missing)}; see models/README.md for the format")
        problem = card_field_problem(raw) or _whole_card_problem(raw)
        if problem:
            raise ModelIntegrityError(f"model card {path}: {problem}; fix the card")
        lo, hi = raw["gsd_valid_m"]
        return cls(
            name=raw["name"], path=path.resolve(), architecture=raw["architecture"], weights=raw["weights"],
            sha256=raw["sha256"].lower(), input=raw["input"], gsd_m=float(raw["gsd_m"]),
            gsd_valid_m=(float(lo), float(hi)), tile_size=int(raw["tile_size"]), overlap=int(raw["overlap"]),
            threshold=float(raw["threshold"]), outputs=tuple(raw.get("outputs", ["building"])), raw=raw,
        )

    def weights_problem(self) -> str | None:
        """Why the weights cannot be used that is found without reading them (the file is missing), or None;
        cheap enough for ``geoseg plan``, which does not hash them."""
        p = self.weights_path
        if not p.is_file():
            return (f"weights for model {self.name!r} not found at {p}; put the weights file there (for a shipped model: "
                    "reinstall geoseg) or fix the card's 'weights'")
        return None

    def verify_weights(self) -> None:
        """Raise :class:`ModelIntegrityError` unless the weights file hashes to ``sha256``."""
        problem = self.weights_problem()
        if problem:
            raise ModelNotFoundError(problem)
        p = self.weights_path
        try:
            digest = file_sha256(p)
        except OSError as exc:
            raise ModelIntegrityError(f"cannot read weights {p} ({exc.strerror or exc}); check the file and its "
                                      "permissions") from None
        if digest != self.sha256:
            raise ModelIntegrityError(
                f"weights {p.name} have sha256 {digest[:12]}..., the card says {self.sha256[:12]}...; "
                "the file is corrupt or was replaced: reinstall it or update the card"
            )

    def summary(self) -> dict[str, Any]:
        keys = ("name", "description", "architecture", "outputs", "gsd_m", "gsd_valid_m", "tile_size", "overlap",
                "threshold", "border_cut", "input", "training", "train_command", "card_defaults_from", "data", "metrics",
                "throughput_mps", "license", "attribution", "weights", "sha256", "weights_encoding")
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
