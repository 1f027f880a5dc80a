"""Export a training checkpoint as safetensors (fp16, or ``--int8`` storage) plus a model card (JSON).

The card's tile size defaults to the training chip size, its valid GSD range to the training
range; a fine-tune (``train.init_model``) inherits its threshold, border cut, GSD, license and
attribution from the model it started from. Fields given by the caller (``--card``) win."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from geoseg.io.atomic import atomic_output
from geoseg.models.card import file_sha256
from geoseg.models.normalize import default_normalization
from geoseg.train.regions import TARGETS


def inference_tiles(tcfg: dict[str, Any]) -> dict[str, int]:
    """Tile size and overlap the engine should use: the training chip size, because a model
    trained on small chips (DenseASPP's wide dilations above all) sees different context on
    larger tiles and loses recall there (docs/scinet_vs_unet.md, round 3)."""
    size = int(tcfg["chip_size"])
    return {"tile_size": size, "overlap": size // 4}


def card_defaults(cfg: dict[str, Any]) -> dict[str, Any]:
    """Card fields a run can be exported with when the caller gives none, so that the card loads.

    ``gsd_valid_m`` is the training GSD range and ``gsd_m`` its geometric middle. A run that started
    from a registered model (``init_model``, or ``init_encoder`` for the legal fields only) takes
    that model's license and attribution (its weights derive from them) and, for ``init_model``,
    its threshold, border cut and GSD (when inside the training range)."""
    lo, hi = (float(g) for g in cfg["train"].get("gsd_range", (cfg["data"]["base_gsd_m"],) * 2))
    out: dict[str, Any] = {"gsd_m": round((lo * hi) ** 0.5, 4), "gsd_valid_m": [lo, hi], "threshold": 0.5}
    source = cfg["train"].get("init_model") or cfg["train"].get("init_encoder")
    parent = _parent_card(source) if source else None
    if parent is None:
        return out
    raw = parent.raw
    taken = {k: raw[k] for k in ("license", "attribution") if k in raw}
    if "init_model" in cfg["train"]:
        taken.update({k: raw[k] for k in ("threshold", "border_cut") if k in raw})
        if lo <= parent.gsd_m <= hi:
            taken["gsd_m"] = parent.gsd_m
    if taken:
        out.update(taken, card_defaults_from=f"{parent.name}: {', '.join(taken)}")
    return out


def _parent_card(source: str):
    """The card of the registered model (name or card path) a run started from, or None for raw weights."""
    if str(source).endswith((".pt", ".safetensors")):
        return None
    from geoseg.errors import GeosegError
    from geoseg.models.registry import get_card

    try:
        return get_card(str(source))
    except GeosegError as exc:  # e.g. exported on another machine: nothing to inherit, say so
        print(f"warning: card defaults not inherited from {source}: {exc}", file=sys.stderr)
        return None


def card_fields(cfg: dict[str, Any], card_extra: dict[str, Any] | None) -> dict[str, Any]:
    """The card's tiles, GSDs, threshold... : defaults, then the caller's fields. A tile size given without an
    overlap gets a quarter of it (a quarter of the chip size could be half the tile or more: a card that would not
    load). A one-line :class:`ConfigError` for fields a card cannot hold."""
    from geoseg.errors import ConfigError
    from geoseg.models.card import card_field_problem

    extra = dict(card_extra or {})
    if "tile_size" in extra and "overlap" not in extra and isinstance(extra["tile_size"], int):
        extra["overlap"] = extra["tile_size"] // 4
    fields = {**inference_tiles(cfg["train"]), **card_defaults(cfg), **extra}
    problem = card_field_problem(fields)
    if problem:
        raise ConfigError(f"card fields: {problem}")
    return fields


def check_export_target(out_dir: Path, cfg: dict[str, Any]) -> None:
    """A one-line :class:`ConfigError` when ``out_dir`` already holds a model of this name that another run made
    (another config, or a shipped model): exporting would silently replace it. Re-exporting the same run is fine."""
    from geoseg.errors import ConfigError
    from geoseg.train.checkpoint import changed_keys

    card = Path(out_dir) / f"{cfg['name']}.json"
    if not card.is_file():
        return
    try:
        theirs = json.loads(card.read_text()).get("training", {}).get("config")
    except (ValueError, AttributeError):
        theirs = None
    if not isinstance(theirs, dict) or changed_keys(theirs, cfg):
        raise ConfigError(f"{card} is another model named {cfg['name']!r} (not trained with this config); exporting "
                          "would replace it: export to another folder, or give the experiment another name")


def read_checkpoint(checkpoint: Path) -> dict[str, Any]:
    """A ``geoseg train`` checkpoint (``*.pt``), or weights as ``NAME.safetensors`` beside a ``NAME.json`` holding
    ``config`` plus ``step`` and ``metrics`` (what ``scripts/train_pair.py`` writes)."""
    checkpoint = Path(checkpoint)
    if checkpoint.suffix == ".safetensors":
        from safetensors.torch import load_file

        side = json.loads(checkpoint.with_suffix(".json").read_text())
        from geoseg.models.weights import decode_state

        return {"model": decode_state(load_file(str(checkpoint))), "config": side["config"], "epoch": None,
                "step": side.get("step"), "metrics": side.get("metrics")}
    import torch

    return torch.load(checkpoint, weights_only=False, map_location="cpu")


def band_names(n_bands: int) -> list[str]:
    """The card's ``input.bands``: red, green, blue for a three-band model, else band_1 ... band_N in the order read."""
    return ["red", "green", "blue"] if n_bands == 3 else [f"band_{i + 1}" for i in range(n_bands)]


def export(checkpoint: Path, out_dir: Path, card_extra: dict[str, Any] | None = None, encoding: str = "fp16") -> Path:
    """Weights (``encoding``: ``fp16``, or ``int8`` storage for the large kernels, see
    ``geoseg/models/weights.py``) and their card in ``out_dir``; returns the card's path."""
    from safetensors.torch import save_file

    from geoseg.models.weights import encode_state

    ck = read_checkpoint(checkpoint)
    cfg = ck["config"]
    name = cfg["name"]
    n_bands = int(cfg["architecture"].get("in_channels", 3))
    fields = card_fields(cfg, card_extra)  # checked before anything is written
    check_export_target(out_dir, cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{name}.safetensors"
    with atomic_output(weights) as tmp:  # whole or absent, like every geoseg output
        save_file(encode_state(ck["model"], encoding), str(tmp), metadata={"name": name, "encoding": encoding})
        tmp.chmod(0o644)  # safetensors creates files readable by their owner only
        digest = file_sha256(tmp)
    card = {
        "name": name,
        "architecture": cfg["architecture"],
        "outputs": list(TARGETS[: int(cfg["architecture"].get("classes", 1))]),
        "weights": weights.name,
        "sha256": digest,
        "weights_encoding": encoding,
        "input": {"bands": band_names(n_bands), "normalization": cfg.get("normalization", default_normalization(n_bands)),
                  "dtype_rule": "uint8 as is; other dtypes: the 0.5th-99.5th percentile of all bands together mapped linearly to 0-255"},
        "training": {"config": cfg, "epoch": ck.get("epoch"), **({"step": ck["step"]} if ck.get("step") is not None else {}),
                     **({"unfinished_epoch": {k: ck["partial"][k] for k in ("epoch", "step")}} if ck.get("partial") else {}),
                     "val_metrics_during_training": ck.get("metrics")},
        **fields,
    }
    if not all(card.get(k) for k in ("license", "attribution")):
        print(f"warning: {name}'s card has no license or attribution; weights carry the terms of their training data "
              "(add them with --card, e.g. {\"license\": ..., \"attribution\": ...})", file=sys.stderr)
    path = out_dir / f"{name}.json"
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(card, indent=2) + "\n")
    return path


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--int8"]
    if len(args) not in (2, 3):
        sys.exit("usage: python -m geoseg.train.export CHECKPOINT OUT_DIR [CARD_FIELDS.json] [--int8]")
    from geoseg.errors import GeosegError
    from geoseg.train.run import card_extra_from

    try:
        extra = card_extra_from(args[2]) if len(args) == 3 else None
    except GeosegError as exc:
        sys.exit(f"error: {exc}")
    print(export(Path(args[0]), Path(args[1]), extra, "int8" if "--int8" in sys.argv else "fp16"))
