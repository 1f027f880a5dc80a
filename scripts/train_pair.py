"""Train several experiment configs side by side on the same batches (a same-budget comparison).

    python scripts/train_pair.py CONFIG.toml [CONFIG.toml ...] --data .gpu/data --out runs/pair
        [--seconds S | --steps N] [--workers W] [--device cuda]

Each step draws one batch (``geoseg.train.chips.ChipSampler``, the sampler and albumentations pipeline of
``geoseg train``, run in ``W`` worker processes) and takes one optimiser step of every model on it, so data,
augmentations, step count and learning-rate schedule are identical; only the architecture differs. The
schedule (linear warm-up over 10 %, then cosine to zero) follows the step count (``--steps``) or elapsed
time (``--seconds``, for a fixed device lease; the steps done are logged so a rerun can use ``--steps``).
``--data`` is the folder ``scripts/gpu_pack.py`` wrote (regions, validation chips, init weights): no
rasterio or ``../shared`` needed. Models are validated every ``train.val_every_s`` seconds with the
loss and metrics of ``geoseg train``; each model's best weights (by validation IoU) are written as
safetensors ``OUT/NAME.safetensors`` plus ``OUT/NAME.json`` (step, metrics, config), the final step's as
``OUT/NAME.last.safetensors`` and ``.json``, and the log ``OUT/log.jsonl``. ``--encoding int8`` stores the
weights as the shipped models are (``geoseg.models.weights``: a ResNet-18 Sci-Net in 17.8 MB instead of 34.9),
small enough to come back from a lent GPU machine (``scripts/gpu_r7.sh``); ``--no-best`` keeps only the final weights.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np


def load_data(folder: Path):
    from gpu_pack import unjpeg

    from geoseg.train.regions import Region

    z = np.load(folder / "regions.npz")
    meta = json.loads(str(z["meta"]))
    n = len(meta["names"])
    gsds = meta["gsd_m"] if isinstance(meta["gsd_m"], list) else [meta["gsd_m"]] * n  # older packs: one base GSD
    spans = [tuple(s) if s else None for s in meta.get("chip_gsd_m", [None] * n)]
    regions = [Region(name, unjpeg(z[f"{i}_image"]), z[f"{i}_label"], z[f"{i}_valid"], gsds[i], spans[i])
               for i, name in enumerate(meta["names"])]
    v = np.load(folder / "val.npz")
    val = {}
    for key in sorted({k.split("|")[0] for k in v.files}):
        lab, valid = v[f"{key}|label"], v[f"{key}|valid"]
        n, s = lab.shape[0], lab.shape[-1]
        img = unjpeg(v[f"{key}|image"]).reshape(3, n, s, s).transpose(1, 0, 2, 3)
        val[key] = [(img[i], lab[i], valid[i]) for i in range(n)]
    return regions, val


def lr_factor(progress: float, warmup: float = 0.1) -> float:
    if progress < warmup:
        return 0.05 + 0.95 * progress / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - warmup) / (1 - warmup))))


SAMPLING_KEYS = ("chip_size", "gsd_range", "batch_size", "seed", "channel_weights", "lr", "init_encoder", "init_model")


def build(cfg, init: Path | None, device):
    import torch

    from geoseg.models.arch import build_module
    from geoseg.train.checkpoint import init_from

    model = build_module(cfg["architecture"])
    if init is not None:
        init_from(model, str(init), whole="init_model" in cfg["train"])
    model = model.to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=float(cfg["train"]["lr"]), weight_decay=1e-4)
    return model, opt


def save_best(out: Path, cfg, model, step, metrics, name: str | None = None, encoding: str = "fp16"):
    """``OUT/NAME.safetensors`` (``encoding``: fp16, or int8 storage) + ``OUT/NAME.json``; ``name`` defaults to
    the config's."""
    from safetensors.torch import save_file

    from geoseg.models.weights import encode_state

    name = name or cfg["name"]
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_file(encode_state(state, encoding), str(out / f"{name}.tmp"))
    (out / f"{name}.tmp").replace(out / f"{name}.safetensors")
    (out / f"{name}.json").write_text(json.dumps({"step": step, "metrics": metrics, "config": cfg}, indent=1))


def throughput(model, device, dtype, size=512, batch=16, reps=10) -> float:
    """Forward passes per second of ``batch`` tiles of ``size`` px (inference mode, autocast ``dtype``)."""
    import torch

    model.eval()
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
        for _ in range(3):
            model(x)
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps):
            model(x)
        if device == "cuda":
            torch.cuda.synchronize()
    model.train()
    return batch * reps / (time.perf_counter() - t0)


def main() -> int:
    import torch

    from geoseg.models.normalize import DEFAULT_NORMALIZATION, normalize
    from geoseg.train.chips import chip_stream, worker_batches
    from geoseg.train.experiment import load_experiment
    from geoseg.train.fit import amp, set_train_mode, train_step
    from geoseg.train.validation import validate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="+", type=Path)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    budget = ap.add_mutually_exclusive_group()
    budget.add_argument("--seconds", type=float, help="training budget in seconds (default: train.max_seconds)")
    budget.add_argument("--steps", type=int, help="a fixed number of steps instead of a time budget")
    ap.add_argument("--workers", type=int, help="sampling processes (default: train.workers)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--encoding", choices=("fp16", "int8"), default="fp16", help="how the weights are stored")
    ap.add_argument("--no-best", action="store_true", help="write only the final weights, not the best check's")
    args = ap.parse_args()
    cfgs = [load_experiment(p) for p in args.configs]
    t0cfg = cfgs[0]["train"]
    for c in cfgs[1:]:
        if c["data"] != cfgs[0]["data"] or c.get("normalization") != cfgs[0].get("normalization") or any(c["train"].get(k) != t0cfg.get(k) for k in SAMPLING_KEYS):
            raise SystemExit(f"{c['name']}: data, normalization and {', '.join(SAMPLING_KEYS)} must match the first config")
    n_targets = int(cfgs[0]["architecture"].get("classes", 2))
    if any(int(c["architecture"].get("classes", 2)) != n_targets for c in cfgs):
        raise SystemExit("the configs must have the same outputs")
    seconds = args.seconds or (None if args.steps else float(t0cfg["max_seconds"]))
    workers = int(t0cfg.get("workers", 0)) if args.workers is None else args.workers
    device = args.device
    torch.manual_seed(int(t0cfg.get("seed", 0)))
    torch.backends.cudnn.benchmark = True
    args.out.mkdir(parents=True, exist_ok=True)
    regions, val = load_data(args.data)
    init = args.data / "init.safetensors"
    init = init if init.exists() and ("init_encoder" in t0cfg or "init_model" in t0cfg) else None
    runs = [(c, *build(c, init, device), amp(device, t0cfg.get("precision", "auto"))[1]) for c in cfgs]
    dtype = amp(device, t0cfg.get("precision", "auto"))[0]
    weights = [float(w) for w in t0cfg.get("channel_weights", [1.0, 0.5, 0.5])[:n_targets]]
    seed_base = int(t0cfg.get("seed", 0)) * 1000  # worker i samples with seed_base + i + 1 (as in the H200 run)
    if workers:
        it = worker_batches(regions, t0cfg, n_targets, seed_base, workers)
    else:
        it = chip_stream(regions, t0cfg, n_targets, seed_base)
    log = open(args.out / "log.jsonl", "a")  # noqa: SIM115 (open for the whole run)

    def emit(rec):
        log.write(json.dumps(rec) + "\n")
        log.flush()
        print(json.dumps(rec), flush=True)

    emit({"event": "start", "device": device, "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
          "workers": workers, "seconds": seconds, "steps": args.steps, "dtype": str(dtype),
          "models": [c["name"] for c in cfgs], "val_chips": {k: len(v) for k, v in val.items()}})
    best = {c["name"]: -1.0 for c in cfgs}
    losses = {c["name"]: [] for c in cfgs}
    norm = cfgs[0].get("normalization", DEFAULT_NORMALIZATION)
    val_every = float(t0cfg.get("val_every_s", 60))
    step, wait, start = 0, 0.0, None
    last_val = 0.0
    while True:
        tw = time.perf_counter()
        img, lab, vm = next(it)
        if start is None:  # the clock starts with the first batch (workers warmed up)
            start = time.perf_counter()
        wait += time.perf_counter() - tw
        elapsed = time.perf_counter() - start
        progress = step / args.steps if args.steps else elapsed / seconds
        done = progress >= 1.0
        if done or elapsed - last_val >= val_every:
            last_val = elapsed
            for cfg, model, _, _ in runs:
                m = validate(model, val, norm, device, dtype)
                name = cfg["name"]
                rec = {"model": name, "step": step, "seconds": round(elapsed, 1), "data_wait_s": round(wait, 1),
                       "loss": round(float(torch.stack(losses[name]).mean()), 4) if losses[name] else None, **m}
                losses[name] = []
                if m.get("iou", -1) > best[name]:
                    best[name] = m["iou"]
                    if not args.no_best:
                        save_best(args.out, cfg, model, step, m, encoding=args.encoding)
                        rec["saved"] = True
                if done:  # the final weights too, whichever scored best
                    save_best(args.out, cfg, model, step, m, name=f"{name}.last", encoding=args.encoding)
                emit(rec)
        if done:
            break
        x = normalize(img.to(device, non_blocking=True), norm).contiguous(memory_format=torch.channels_last)
        y = lab.to(device, non_blocking=True).float()
        v = vm.to(device, non_blocking=True).float()[:, None]
        f = lr_factor(progress)
        for cfg, model, opt, scaler in runs:
            for g in opt.param_groups:
                g["lr"] = float(cfg["train"]["lr"]) * f
            set_train_mode(model, bool(cfg["train"].get("freeze_bn", False)))  # validation ends in model.train()
            losses[cfg["name"]].append(train_step(model, opt, scaler, (x, y, v), weights, device, dtype,
                                                  cfg["train"].get("loss", "bce_dice")))
        step += 1
    train_s = time.perf_counter() - start
    for cfg, model, _, _ in runs:
        emit({"model": cfg["name"], "event": "end", "steps": step, "chips": step * int(t0cfg["batch_size"]),
              "train_seconds": round(train_s, 1), "data_wait_s": round(wait, 1),
              "best_val_iou": round(best[cfg["name"]], 4),
              "forward_tiles_per_s_512": round(throughput(model, device, dtype), 1) if device == "cuda" else None})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
