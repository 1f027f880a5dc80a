"""Checkpoints and starting weights: ``last.pt``/``best.pt`` written whole or not at all, resumed with their
optimiser and schedule; a model or encoder started from another model's weights."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

from geoseg.errors import ConfigError, InputError

HEADS = ("head.", "segmentation_head.")  # output layers: may differ in size when fine-tuning


def source_state(source: str) -> dict:
    """Float weights of a registered model (name or card path), a safetensors file (fp16 or int8
    storage) or a training checkpoint (``*.pt``, e.g. another run's ``last.pt``)."""
    import torch
    from safetensors.torch import load_file

    from geoseg.models.weights import decode_state

    src = str(source)
    if src.endswith((".pt", ".safetensors")) and not Path(src).is_file():
        raise ConfigError(f"weights to start from not found: {src}; train that run first or fix the path")
    if src.endswith(".pt"):
        return decode_state(torch.load(src, weights_only=False, map_location="cpu")["model"])
    if src.endswith(".safetensors"):
        return decode_state(load_file(src))
    from geoseg.models.registry import get_card

    card = get_card(src)
    card.verify_weights()
    return decode_state(load_file(str(card.weights_path)))


def init_from(model, source: str, whole: bool) -> None:
    """Start ``model`` from ``source``'s weights: the encoder only, or (``whole``) every layer;
    an output head of another size keeps the leading outputs both share (building, border)
    and starts the others fresh."""
    prefix = "" if whole else "encoder."
    own = model.state_dict()
    src = {k: v for k, v in source_state(source).items() if k.startswith(prefix) and k in own}
    state = {k: v for k, v in src.items() if own[k].shape == v.shape}
    if whole:  # a head with more or fewer outputs (e.g. + gap): keep the outputs both have
        for k, v in src.items():
            if k not in state and k.startswith(HEADS) and own[k].shape[1:] == v.shape[1:]:
                n = min(v.shape[0], own[k].shape[0])
                state[k] = own[k].clone()
                state[k][:n] = v[:n]
    missing = [k for k in own if k.startswith(prefix) and k not in state and not (whole and k.startswith(HEADS))]
    if not state or missing:
        what = "model" if whole else "encoder"
        hint = f" ({len(missing)} missing or mismatched tensors, e.g. {missing[0]})" if missing else ""
        raise ConfigError(f"{source}: {what} does not match the architecture being trained{hint}")
    model.load_state_dict(state, strict=False)
    fresh = sorted({k.split(".")[0] for k in own if k.startswith(prefix) and k not in src})
    print(f"{'model' if whole else 'encoder'} initialised from {source} ({len(state)} tensors"
          + (f"; new: {', '.join(fresh)})" if fresh else ")"), flush=True)


RESUMABLE_CHANGES = ("train.epochs", "train.steps_per_epoch", "train.workers", "train.threads", "train.device",
                     "train.precision", "train.checkpoint_every_s", "train.cache_tiles", "train.deterministic",
                     "train.val_chip_size", "data.val", "name")  # how long, where and how fast, how it is scored


def changed_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two configs, except :data:`RESUMABLE_CHANGES`: what a resumed run
    would otherwise mix (other data, chips, learning rate, loss...) while its card records only the new config."""
    out = []
    for key in sorted(set(old) | set(new), key=str):
        path = f"{prefix}{key}"
        if path in RESUMABLE_CHANGES or path in ("train.init_model", "train.init_encoder"):  # used by a fresh run only
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += changed_keys(a, b, f"{path}.")
        elif a != b:
            out.append(path)
    return out


def checkpoint_config(ck: dict) -> dict[str, Any]:
    """``ck``'s config; runs of configs without ``architecture.classes`` before 2026-12-02 built one output."""
    cfg = ck["config"]
    return {**cfg, "architecture": {"classes": 1, **cfg["architecture"]}}


def _arch(cfg: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(cfg["architecture"].items()))


def save_checkpoint(path: Path, state: dict) -> None:
    """``torch.save`` to a temporary name, then rename: a kill never leaves half a checkpoint."""
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path) -> dict | None:
    """The checkpoint at ``path`` (on the CPU; loading it into a model moves it), or None if there is none."""
    import pickle

    import torch

    if not path.exists():
        return None
    try:
        return torch.load(path, weights_only=False, map_location="cpu")
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError, OSError) as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise InputError(f"{path} is not a readable checkpoint ({reason}); it may be truncated: move it away to "
                         "start over, or give a new --out") from None


def resume(last: Path, ck: dict | None, cfg: dict[str, Any], model, opt, sched, steps: int) -> tuple[int, float, dict | None]:
    """Load ``ck`` (``last``'s checkpoint, None for a fresh run) into the model, optimiser and schedule: ``(first
    epoch to run, best score, the unfinished epoch's progress or None)``."""
    if ck is None:
        return 0, -math.inf, None  # any first score is better: best.pt after the first epoch, validated or not
    old = checkpoint_config(ck)
    if old["architecture"] != cfg["architecture"]:
        raise ConfigError(f"{last} is a run of another architecture ({_arch(old)}, this config asks for "
                          f"{_arch(cfg)}); give a new --out, or resume with that run's config")
    changed = changed_keys(old, cfg)
    if changed:
        raise ConfigError(f"{last} was started with another config ({', '.join(changed[:4])}"
                          f"{' ...' if len(changed) > 4 else ''} changed); give a new --out, or resume with that run's "
                          "config (only " + ", ".join(RESUMABLE_CHANGES) + " may change)")
    old_files, files = ck.get("data_files"), training_files(cfg)
    if old_files is not None and old_files != files:
        added, gone = sorted(set(files) - set(old_files)), sorted(set(old_files) - set(files))
        raise ConfigError(f"{last} was started on other training rasters: its raster_glob now matches "
                          f"{len(added)} new and misses {len(gone)} earlier file(s) ({', '.join((added + gone)[:2])}"
                          f"{' ...' if len(added) + len(gone) > 2 else ''}); restore them, or give a new --out")
    model.load_state_dict(ck["model"]), opt.load_state_dict(ck["opt"])
    start, partial = ck["epoch"] + 1, ck.get("partial")
    best = float(ck["best"])
    if ck["config"]["data"].get("val") != cfg["data"].get("val"):  # scores of other sets (or IoU against -loss)
        print("data.val changed: best.pt is chosen afresh from this epoch on", flush=True)
        best = -math.inf
    same_steps = ck["config"]["train"]["steps_per_epoch"] == steps
    if partial is not None and not same_steps:
        print("steps_per_epoch changed: the unfinished epoch starts over", flush=True)
        partial = None
    epochs = int(cfg["train"]["epochs"])
    if ck["config"]["train"]["epochs"] == epochs and same_steps:
        sched.load_state_dict(ck["sched"])
    else:  # the schedule was lengthened or shortened: follow the new one from here
        print(f"schedule changed to {epochs} epochs at epoch {start + 1}", flush=True)
        with warnings.catch_warnings():  # replaying the schedule without optimiser steps is what is meant here
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
            for _ in range(min(start * steps + (partial["step"] if partial else 0), epochs * steps)):
                sched.step()
    at = f"epoch {start + 1}, step {partial['step']}" if partial else f"epoch {start + 1}"
    print(f"resumed at {at}", flush=True)
    return start, best, partial


def training_files(cfg: dict[str, Any]) -> list[str]:
    """The training rasters ``cfg`` names, its ``raster_glob`` entries expanded (what a run trained on)."""
    from geoseg.train.fit import expand_globs

    return [str(d["raster"]) for d in expand_globs(cfg["data"]["train"])]
