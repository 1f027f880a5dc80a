"""Export a training checkpoint as safetensors (fp16, or ``--int8`` storage) plus a model card (JSON).

The card's tile size defaults to the training chip size, its valid GSD range to the training
range; a fine-tune (``train.init_model``) inherits its threshold, border cut, GSD, license and
attribution from the model it started from. Fields given by the caller (``--card``) win.

``python -m geoseg.train.export CHECKPOINT OUT_DIR [CARD_FIELDS.json] [--int8]`` exports a chosen checkpoint; its
errors are one line and exit 2, as the ``geoseg`` command's are."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

from geoseg.cli.errors import handle_errors
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
    middle = min(max(round((lo * hi) ** 0.5, 4), lo), hi)  # rounded, yet inside the range (a card must be)
    out: dict[str, Any] = {"gsd_m": middle, "gsd_valid_m": [lo, hi], "threshold": 0.5}
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
        warnings.warn(f"card defaults not inherited from {source}: {exc}", UserWarning, stacklevel=3)
        return None


def card_fields(cfg: dict[str, Any], card_extra: dict[str, Any] | None) -> dict[str, Any]:
    """The card's tiles, GSDs, threshold... : defaults, then the caller's fields. A tile size given without an
    overlap gets a quarter of it (a quarter of the chip size could be half the tile or more: a card that would not
    load). A one-line :class:`ConfigError` for fields a card cannot hold, a field no card has (a misspelt
    ``licence``, with the nearest field named) and a ``gsd_m`` outside ``gsd_valid_m``."""
    from geoseg.errors import ConfigError
    from geoseg.models.card import card_extra_problem, card_field_problem

    problem = card_extra_problem(dict(card_extra or {}))
    if problem:
        raise ConfigError(f"card fields: {problem}")
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
    ``config`` plus ``step`` and ``metrics`` (what ``scripts/train_pair.py`` writes). A missing file, a folder or a
    file that is no such checkpoint is a one-line :class:`~geoseg.errors.InputError`."""
    from geoseg.errors import InputError, InputNotFoundError

    checkpoint = Path(checkpoint)
    if not checkpoint.exists():
        raise InputNotFoundError(f"checkpoint not found: {checkpoint}; check the path (a run folder holds best.pt and "
                                 "last.pt)")
    if checkpoint.is_dir():
        raise InputError(f"{checkpoint} is a folder; give the checkpoint in it (best.pt or last.pt)")
    if checkpoint.suffix == ".safetensors":
        return _read_safetensors(checkpoint)
    import torch

    try:
        ck = torch.load(checkpoint, weights_only=False, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - not a pickle, truncated, another program's file: torch says why its way
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise InputError(f"{checkpoint} is not a readable geoseg train checkpoint ({reason}); give a run's best.pt "
                         "or last.pt") from None
    if not (isinstance(ck, dict) and isinstance(ck.get("config"), dict) and "model" in ck):
        raise InputError(f"{checkpoint} is not a geoseg train checkpoint (it holds no model and config); give a run's "
                         "best.pt or last.pt")
    return ck


def _read_safetensors(checkpoint: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    from geoseg.errors import InputError
    from geoseg.models.weights import decode_state

    side_path = checkpoint.with_suffix(".json")
    try:
        side = json.loads(side_path.read_text())
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        raise InputError(f"{checkpoint} needs {side_path.name} beside it, holding the run's config ({reason}); give "
                         "the .safetensors that scripts/train_pair.py wrote, with its .json") from None
    if not (isinstance(side, dict) and isinstance(side.get("config"), dict)):
        raise InputError(f"{side_path} holds no run config; give the .json that scripts/train_pair.py wrote")
    try:
        state = load_file(str(checkpoint))
    except Exception as exc:  # noqa: BLE001 - safetensors' own error types
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise InputError(f"{checkpoint} is not readable safetensors ({reason}); give the file train_pair.py wrote") from None
    return {"model": decode_state(state), "config": side["config"], "epoch": None,
            "step": side.get("step"), "metrics": side.get("metrics")}


DEFAULT_CLASSES = 2  # what geoseg.train.experiment.fill_defaults writes into a config without architecture.classes


def n_outputs(arch: dict[str, Any], state: dict[str, Any]) -> int:
    """The model's number of outputs: ``architecture.classes``; for a checkpoint whose config lacks it (one made
    before configs got it written in), the output layer's size in the weights (the last 4-D kernel's first
    dimension, as build_module made it), else :data:`DEFAULT_CLASSES`."""
    if "classes" in arch:
        return int(arch["classes"])
    kernels = [v for v in state.values() if getattr(v, "ndim", 0) == 4]
    return int(kernels[-1].shape[0]) if kernels else DEFAULT_CLASSES


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
    arch = {**cfg["architecture"], "classes": n_outputs(cfg["architecture"], ck["model"])}  # stated: cards default to 1
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
        "architecture": arch,
        "outputs": list(TARGETS[: arch["classes"]]),
        "weights": weights.name,
        "sha256": digest,
        "weights_encoding": encoding,
        "input": {"bands": band_names(n_bands), "normalization": cfg.get("normalization", default_normalization(n_bands)),
                  "dtype_rule": "uint8 as is; other dtypes: the 0.5th-99.5th percentile of all bands together mapped linearly to 0-255"},
        "training": {"config": cfg, "epoch": ck.get("epoch"), **({"step": ck["step"]} if ck.get("step") is not None else {}),
                     **({"unfinished_epoch": {k: ck["partial"][k] for k in ("epoch", "step")}} if ck.get("partial") else {}),
                     "val_metrics_during_training": ck.get("metrics"),
                     **({"data_files": ck["data_files"]} if ck.get("data_files") else {})},  # raster_glob expanded
        **fields,
    }
    if not all(card.get(k) for k in ("license", "attribution")):  # the geoseg command shows it as `geoseg: warning: ...`
        warnings.warn(f"{name}'s card has no license or attribution; weights carry the terms of their training data "
                      "(add them with --card, e.g. {\"license\": ..., \"attribution\": ...})", UserWarning, stacklevel=2)
    path = out_dir / f"{name}.json"
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(card, indent=2) + "\n")
    return path


def _parser():
    import argparse

    parser = argparse.ArgumentParser(prog="python -m geoseg.train.export",
                                     description="Export a geoseg train checkpoint as weights + model card (JSON).")
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a run's best.pt or last.pt (or train_pair.py's "
                        "NAME.safetensors beside its NAME.json)")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder for NAME.safetensors and NAME.json")
    parser.add_argument("card_fields", metavar="CARD_FIELDS.json", nargs="?",
                        help="card fields to add (gsd_m, gsd_valid_m, tile_size, license, attribution, ...)")
    parser.add_argument("--int8", action="store_true", help="store the large kernels as int8 (half the size)")
    return parser


@handle_errors
def main(argv: list[str] | None = None) -> int:
    """The command line: a usage error prints the usage and exits 2; bad input prints one ``geoseg: error: ...`` line
    and exits 2, as the ``geoseg`` command does (:func:`geoseg.cli.errors.handle_errors`)."""
    from geoseg.io.atomic import check_output_dir
    from geoseg.train.run import card_extra_from

    args = _parser().parse_args(argv)
    extra = card_extra_from(args.card_fields) if args.card_fields else None
    out_dir = Path(args.out_dir)
    check_output_dir(out_dir, f"OUT_DIR {out_dir}")
    print(export(Path(args.checkpoint), out_dir, extra, "int8" if args.int8 else "fp16"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
