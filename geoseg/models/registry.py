"""The model registry: model cards found on a search path, looked up by name or path.

Search order: ``$GEOSEG_MODEL_PATH`` (``os.pathsep``-separated folders), the cards
installed with the package (``geoseg/_models``), then the source tree's ``models/``.
"""

from __future__ import annotations

import os
from pathlib import Path

from geoseg.errors import ModelNotFoundError
from geoseg.models.card import ModelCard

ALIASES: dict[str, str] = {"default": "scinet-r18-h200"}  # docs/scinet_vs_unet.md, "Which model is the default"


def search_path() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get("GEOSEG_MODEL_PATH", "").split(os.pathsep) if p]
    pkg = Path(__file__).resolve().parent.parent
    dirs += [pkg / "_models", pkg.parent / "models"]
    return [d for d in dirs if d.is_dir()]


def available() -> dict[str, Path]:
    """Model name -> card path, first match on the search path wins."""
    return scan()[0]


def scan() -> tuple[dict[str, Path], dict[Path, str]]:
    """``(name -> card path, unreadable card path -> reason)`` over the search path: a card that does not load
    (bad JSON, a field of the wrong type...) is reported, not listed, and does not hide the others."""
    found: dict[str, Path] = {}
    broken: dict[Path, str] = {}
    for d in search_path():
        for card in sorted(d.glob("*.json")):
            if card.name.endswith(".geoseg.json"):
                continue
            try:
                name = ModelCard.load(card).name
            except Exception as exc:  # noqa: BLE001 - a broken card must not hide the others
                broken[card] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                continue
            found.setdefault(name, card)
    return found, broken


def get_card(name_or_path: str | os.PathLike) -> ModelCard:
    """The card for a registered name, an alias (``default``) or a card file path, checked as
    :meth:`ModelCard.load` checks it (a bad card is a one-line error here, before any work)."""
    if isinstance(name_or_path, os.PathLike):
        name_or_path = os.fspath(name_or_path)
    if not isinstance(name_or_path, str) or not name_or_path:
        from geoseg.errors import ConfigError

        raise ConfigError(f"model {name_or_path!r} is neither a model name nor a card path; give a name from "
                          "`geoseg models list` (or 'default') or a model card path (*.json)")
    p = Path(name_or_path)
    if p.suffix == ".json" and (p.is_file() or os.sep in name_or_path):
        return ModelCard.load(p)
    cards, broken = scan()
    name = ALIASES.get(name_or_path, name_or_path)
    if name not in cards:
        names = ", ".join(sorted(cards) + sorted(ALIASES)) or "(none installed)"
        skipped = "".join(f"; skipped unreadable card {p} ({why})" for p, why in broken.items())
        raise ModelNotFoundError(f"unknown model {name_or_path!r}; valid names: {names}; or pass a model card path "
                                 f"(*.json){skipped}")
    return ModelCard.load(cards[name])
