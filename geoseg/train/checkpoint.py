"""Checkpoints and starting weights: ``last.pt``/``best.pt`` written whole or not at all, resumed with their
optimiser and schedule; a model or encoder started from another model's weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from geoseg.errors import ConfigError

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


def _arch(cfg: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(cfg["architecture"].items()))


def save_checkpoint(path: Path, state: dict) -> None:
    """``torch.save`` to a temporary name, then rename: a kill never leaves half a checkpoint."""
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def resume(last: Path, cfg: dict[str, Any], model, opt, sched, steps: int, device) -> tuple[int, float, dict | None]:
    """Load ``last`` (if any) into the model, optimiser and schedule: ``(first epoch to run, best score, the
    unfinished epoch's progress or None)``."""
    import torch

    if not last.exists():
        return 0, -1.0, None
    ck = torch.load(last, weights_only=False, map_location=device)
    if ck["config"]["architecture"] != cfg["architecture"]:
        raise ConfigError(f"{last} is a run of another architecture ({_arch(ck['config'])}, this config asks for "
                          f"{_arch(cfg)}); give a new --out, or resume with that run's config")
    model.load_state_dict(ck["model"]), opt.load_state_dict(ck["opt"])
    start, partial = ck["epoch"] + 1, ck.get("partial")
    same_steps = ck["config"]["train"]["steps_per_epoch"] == steps
    if partial is not None and not same_steps:
        print("steps_per_epoch changed: the unfinished epoch starts over", flush=True)
        partial = None
    epochs = int(cfg["train"]["epochs"])
    if ck["config"]["train"]["epochs"] == epochs and same_steps:
        sched.load_state_dict(ck["sched"])
    else:  # the schedule was lengthened or shortened: follow the new one from here
        print(f"schedule changed to {epochs} epochs at epoch {start}", flush=True)
        for _ in range(min(start * steps + (partial["step"] if partial else 0), epochs * steps)):
            sched.step()
    at = f"epoch {start + 1}, step {partial['step']}" if partial else f"epoch {start + 1}"
    print(f"resumed at {at}", flush=True)
    return start, float(ck["best"]), partial
