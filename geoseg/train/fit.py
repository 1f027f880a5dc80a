"""The training loop: resumable, checkpointed, logged per epoch (JSON lines)."""

from __future__ import annotations

import functools
import json
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geoseg.errors import Cancelled, ConfigError, InputError, OutputError
from geoseg.models.normalize import default_normalization, normalize
from geoseg.progress import Progress
from geoseg.train.checkpoint import init_from, load_checkpoint, resume, save_checkpoint, training_files
from geoseg.train.chips import ChipSampler, worker_batches
from geoseg.train.experiment import entry_bands, glob_rasters
from geoseg.train.losses import total_loss
from geoseg.train.regions import load_region
from geoseg.train.validation import val_sets, validate


@contextmanager
def deterministic_kernels(on: bool):
    """Repeatable PyTorch kernels while the block runs (``train.deterministic``), the process's settings restored
    after it. CPU runs already repeat with a seed; GPU runs then do too, somewhat slower (cuDNN autotuning off,
    deterministic algorithms where PyTorch has them, a warning where it has none)."""
    import os

    import torch

    if not on:
        yield
        return
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
             torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs this to be deterministic
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[:2]
        torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])


def one_cycle(opt, lr: float, total_steps: int):
    """Warm up over the first 10 % of the steps, then anneal (cosine) to zero.

    Runs under 20 steps (smoke tests) take the first steps of a 20-step cycle: PyTorch's OneCycleLR divides by
    zero for 10 steps (a warm-up ending at step 0) and gives a single step a learning rate of zero.
    """
    import torch

    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(total_steps, 20), pct_start=0.1)


def amp(device: str, precision: str):
    """``(autocast dtype or None, GradScaler or None)`` for a training device and precision (``auto``: see
    :func:`geoseg.engine.device.resolve_precision`; fp16 on CUDA gets a gradient scaler)."""
    import torch

    from geoseg.engine.device import resolve_precision

    precision = resolve_precision(precision, device)
    if precision == "fp32":
        return None, None
    if device == "cuda" and (precision == "fp16" or not torch.cuda.is_bf16_supported()):
        return torch.float16, torch.amp.GradScaler("cuda")
    return torch.bfloat16, None


def train_step(model, opt, scaler, batch, weights, device: str, dtype, loss: str = "bce_dice"):
    """One optimiser step of ``model`` on ``batch = (x, target, valid)`` (tensors on ``device``), or on a list of
    such batches whose gradients are averaged (gradient accumulation: the step of one batch of their total size,
    in the memory of one), under autocast ``dtype`` (None: fp32), with the gradient ``scaler`` if any, the
    building channel scored by ``loss`` (a key of :data:`geoseg.train.losses.LOSSES`); returns the mean loss (detached)."""
    import torch

    batches = batch if isinstance(batch, list) else [batch]
    opt.zero_grad(set_to_none=True)
    total = 0.0
    for x, y, v in batches:
        with torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(x)
        value = total_loss(logits, y, v, weights, loss) / len(batches)
        (scaler.scale(value) if scaler is not None else value).backward()
        total = total + value.detach()
    if scaler is not None:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()
    return total


def set_train_mode(model, freeze_bn: bool = False) -> None:
    """``model.train()``; with ``freeze_bn`` every BatchNorm layer stays in eval mode: it normalises with the
    running statistics it started with and does not update them (its scale and shift still learn). Fine-tunes
    on small batches (a CPU's 2-4 chips) otherwise replace well-estimated statistics with noisy ones."""
    import torch

    model.train()
    if freeze_bn:
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()


def train_regions(dcfg: dict[str, Any], tcfg: dict[str, Any], n_bands: int = 3) -> list:
    """The training rasters: read tile by tile on the fly (``source = "tiles"``, the default)
    or loaded whole into memory once (``source = "memory"``, fastest for small regions).

    An entry may give its own ``base_gsd_m`` (default: ``data.base_gsd_m``) and ``chip_gsd_m = [lo, hi]``, the chip
    GSDs it serves: e.g. one entry per zoom level of a place, so that fine chips come from sharp imagery.
    ``n_bands`` bands (the model's ``in_channels``) are read from each: an entry's ``bands`` (1-based), else those
    ``geoseg segment`` would pick."""
    source = tcfg.get("source", "tiles")
    if source not in ("tiles", "memory"):
        raise ValueError(f"train.source must be 'tiles' or 'memory', not {source!r}")
    from geoseg.train.tiles import TiledRegion

    regions = []
    for d in expand_globs(dcfg["train"]):
        base = float(d.get("base_gsd_m", dcfg["base_gsd_m"]))
        span = tuple(float(g) for g in d["chip_gsd_m"]) if "chip_gsd_m" in d else None
        if source == "memory":
            regions.append(load_region(d["raster"], d["labels"], base, d.get("name"), span, n_bands, entry_bands(d),
                                       d.get("aoi")))
            continue
        largest_crop = math.ceil(tcfg["chip_size"] * max(span or tcfg["gsd_range"]) / base)
        tile = int(tcfg.get("tile_size", max(512, largest_crop)))
        regions.append(TiledRegion(d["raster"], d["labels"], base, tile, d.get("name"),
                                   cache_tiles=int(tcfg.get("cache_tiles", 8)), chip_gsd_m=span, n_bands=n_bands,
                                   bands=entry_bands(d), aoi=d.get("aoi")))
    return regions


def expand_globs(entries: list[dict]) -> list[dict]:
    """Each entry with ``raster_glob`` becomes one entry per matching file (sorted), with the same labels and
    settings and the name ``<name>/<file stem>``: many tiles of one area can share one label file."""
    out = []
    for d in entries:
        if "raster_glob" not in d:
            out.append(d)
            continue
        files = glob_rasters(d["raster_glob"], "training raster_glob")
        rest = {k: v for k, v in d.items() if k != "raster_glob"}
        out.extend({**rest, "raster": f, "name": f"{d.get('name', d['raster_glob'])}/{Path(f).stem}"} for f in files)
    return out


def _epoch_seed(seed: int, epoch: int) -> int:
    """The sampling seed of one epoch (worker processes, with ``train.workers``, add 1, 2, ...)."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]) % 1_000_000 * 1000


def _steps(n: int, epoch: int, epochs: int, progress, done: int = 0):
    """Step indices ``done..n-1`` of one epoch, reported to ``progress`` (a :class:`geoseg.progress.Progress`, or
    None) as stage ``epoch E/N`` after each step; a reporter that says cancelled stops the epoch before its next
    step (:class:`Cancelled`; the steps taken are kept, see ``_Epochs.train``)."""
    stage = f"epoch {epoch + 1}/{epochs}"
    if progress is not None:
        progress.update(done, n, stage)
    for i in range(done, n):
        if progress is not None and progress.cancelled():
            raise Cancelled("cancelled; rerun the same command to resume from the last checkpoint")
        yield i
        if progress is not None:
            progress.update(i + 1, n, stage)


def fit(cfg: dict[str, Any], out_dir: Path, show_progress: bool | Progress = False, stop_after: int | None = None,
        stop_after_steps: int | None = None) -> Path:
    """Train ``cfg`` (a parsed experiment TOML) into ``out_dir``; resumes from ``out_dir/last.pt``.

    ``last.pt`` is written after every epoch, every ``train.checkpoint_every_s`` seconds (default 600) inside one,
    and when the run is interrupted, so a killed run loses at most that much. ``stop_after`` ends this call after
    that many epochs, ``stop_after_steps`` after that many steps (time-boxed sessions); rerun to continue.
    One run per ``out_dir`` at a time: a second stops at once (:mod:`geoseg.runlock`). ``show_progress``: True for
    a progress bar, or any :class:`geoseg.progress.Progress` (JSON lines, QGIS feedback), which may also cancel.
    """
    from geoseg.runlock import run_lock
    from geoseg.train.experiment import check_experiment, check_paths

    out_dir = Path(out_dir)
    check_experiment(cfg, resuming=(out_dir / "last.pt").exists())
    check_paths(cfg["data"])
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the run folder {out_dir} ({exc.strerror}); choose another --out") from None
    if show_progress is True:
        from geoseg.progress import BarProgress

        show_progress = BarProgress()
    progress = show_progress or None
    try:
        with run_lock(out_dir / ".geoseg-lock", f"training folder {out_dir}"), \
                deterministic_kernels(bool(cfg["train"].get("deterministic", False))):
            return _fit(cfg, out_dir, progress, stop_after, stop_after_steps)
    finally:
        getattr(progress, "close", lambda: None)()
        if created and not any(out_dir.iterdir()):  # stopped before it wrote anything (bad data): leave no trace
            out_dir.rmdir()


def _fit(cfg: dict[str, Any], out_dir: Path, show_progress: Progress | None, stop_after: int | None,
         stop_after_steps: int | None) -> Path:
    import torch

    from geoseg.engine.device import uses_channels_last
    from geoseg.models.arch import build_module

    out_dir.mkdir(parents=True, exist_ok=True)
    tcfg, dcfg = cfg["train"], cfg["data"]
    seed = int(tcfg.get("seed", 0))
    torch.manual_seed(seed)
    model = build_module(cfg["architecture"])  # a bad architecture stops the run before the data loads
    n_bands = int(cfg["architecture"].get("in_channels", 3))
    norm = cfg.get("normalization", default_normalization(n_bands))
    last = out_dir / "last.pt"
    ck = load_checkpoint(last)  # once: a finished run stops here, before its data loads
    if _finished(ck, cfg):
        print(f"{out_dir} finished its {tcfg['epochs']} epochs; nothing to train (raise train.epochs to go on)", flush=True)
        return out_dir / "best.pt"
    regions = train_regions(dcfg, tcfg, n_bands)
    if not any(r.has_buildings for r in regions):
        raise InputError("no label polygon lies on any training raster; check that each entry's labels cover its "
                         "raster (same place; any CRS is fine)")
    val = val_sets(dcfg.get("val", []), tcfg.get("val_chip_size", 192), n_bands)
    print(f"train regions: {[(r.name, round(r.valid_pixels / 1e6, 1)) for r in regions]} (Mpx valid); "
          f"val chips: {({k: len(v) for k, v in val.items()})}", flush=True)
    n_targets = int(cfg["architecture"].get("classes", 2))
    if not 1 <= n_targets <= 3:
        raise ValueError(f"architecture.classes must be 1 (building), 2 (+ border) or 3 (+ gap), not {n_targets}")
    sampler = ChipSampler.from_config(regions, tcfg, seed, n_targets)
    weights = [float(w) for w in tcfg.get("channel_weights", [1.0, 0.5, 0.5])[:n_targets]]
    if len(weights) < n_targets:
        raise ValueError(f"train.channel_weights needs {n_targets} values (building, border, gap), got {len(weights)}")
    device = tcfg.get("device", "cuda" if torch.cuda.is_available() else "cpu")
    if "threads" in tcfg:
        torch.set_num_threads(int(tcfg["threads"]))
    if ck is None:  # a fresh run: optionally start from trained weights
        if "init_model" in tcfg and "init_encoder" in tcfg:
            raise ConfigError("give train.init_model (fine-tune a whole model) or train.init_encoder, not both")
        if "init_model" in tcfg:
            init_from(model, tcfg["init_model"], whole=True)
        elif "init_encoder" in tcfg:
            init_from(model, tcfg["init_encoder"], whole=False)
    model = model.to(device)
    dtype, scaler = amp(device, tcfg.get("precision", "auto"))
    if uses_channels_last(device, {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]):
        model = model.to(memory_format=torch.channels_last)  # steps 1.4-1.9x faster in bf16 on a native-bf16 CPU
    opt = torch.optim.AdamW(model.parameters(), lr=float(tcfg["lr"]), weight_decay=1e-4)
    epochs, steps = int(tcfg["epochs"]), int(tcfg["steps_per_epoch"])
    sched = one_cycle(opt, float(tcfg["lr"]), epochs * steps)
    start, best, partial = resume(last, ck, cfg, model, opt, sched, steps)
    _repair_log(out_dir / "log.jsonl", ck)
    del ck
    model.train()
    run = _Epochs(cfg, out_dir, model, opt, sched, scaler, dtype, device, norm, weights, sampler, regions, n_targets,
                  show_progress, best, stop_after_steps)
    for epoch in range(start, epochs if stop_after is None else min(epochs, start + stop_after)):
        losses, t0 = run.train(epoch, partial)
        partial = None
        if len(losses) < steps:  # stop_after_steps: this call ends inside the epoch (its checkpoint is kept)
            break
        try:
            metrics = validate(model, val, norm, device, dtype)
        except BaseException:  # Ctrl-C, SIGTERM during validation: keep the epoch's steps; a rerun validates them
            run.keep(epoch, losses, t0, "interrupted in validation")
            raise
        rec = {"epoch": epoch, "loss": float(np.mean(losses)), "seconds": round(time.time() - t0, 1), **metrics}
        print(json.dumps(rec), flush=True)
        score = metrics.get("iou", -float(np.mean(losses)))
        if score > run.best:
            run.best = score
            save_checkpoint(out_dir / "best.pt", {"model": model.state_dict(), "epoch": epoch, "metrics": metrics,
                                                  "config": cfg, "data_files": run.files})
        # the checkpoint first, holding the epoch's log line: a kill between the two is repaired on resume
        save_checkpoint(last, {**run.state(), "epoch": epoch, "record": rec})
        with open(out_dir / "log.jsonl", "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        if run.left == 0:  # stop_after_steps ran out with this epoch
            break
    return out_dir / "best.pt"


def _repair_log(path: Path, ck: dict | None) -> None:
    """Make ``log.jsonl`` one line per epoch ``ck`` (the ``last.pt`` resumed from) finished: a kill after an epoch's
    checkpoint but before its log line (or, before 2026-12-02, after the line but before the checkpoint, which
    redid and re-logged the epoch) left it short or doubled."""
    if ck is None or not path.exists():
        return
    done = int(ck["epoch"])
    lines: dict[int, str] = {}
    for line in path.read_text().splitlines():
        try:
            epoch = int(json.loads(line)["epoch"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by the kill
        if epoch <= done:
            lines.setdefault(epoch, line)
    record = ck.get("record")
    if record is not None and int(record["epoch"]) == done:
        lines.setdefault(done, json.dumps(record))
    text = "".join(lines[e] + "\n" for e in sorted(lines))
    if text != path.read_text():
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)


def _finished(ck: dict | None, cfg: dict[str, Any]) -> bool:
    """Whether ``ck`` (a ``last.pt``) is of a run of ``cfg`` that has trained all its epochs: a rerun (e.g. to add
    ``--export``) then loads no data. A changed config is left to :func:`geoseg.train.checkpoint.resume` to refuse."""
    from geoseg.train.checkpoint import changed_keys, checkpoint_config

    if ck is None:
        return False
    done = ck.get("partial") is None and ck["epoch"] + 1 >= int(cfg["train"]["epochs"])
    old = checkpoint_config(ck)
    return done and old["architecture"] == cfg["architecture"] and not changed_keys(old, cfg)


@dataclass
class _Epochs:
    """The training steps of one epoch after another, with checkpoints inside an epoch (built once by :func:`fit`)."""

    cfg: dict
    out_dir: Path
    model: Any
    opt: Any
    sched: Any
    scaler: Any
    dtype: Any
    device: str
    norm: dict
    weights: list
    sampler: Any
    regions: list
    n_targets: int
    show: Progress | None
    best: float
    left: int | None  # steps this call may still take (stop_after_steps); None: no limit

    @functools.cached_property
    def files(self) -> list[str]:
        """The training rasters, globs expanded (a resume refuses other files)."""
        return training_files(self.cfg)

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict(), "sched": self.sched.state_dict(),
                "best": self.best, "config": self.cfg, "data_files": self.files}

    def _tensors(self, img, lab, valid) -> tuple:
        import torch

        x = normalize(torch.as_tensor(img).to(self.device), self.norm)
        return x, torch.as_tensor(lab).float().to(self.device), torch.as_tensor(valid).float()[:, None].to(self.device)

    def keep(self, epoch: int, losses: list[float], t0: float, reason: str) -> None:
        """Write ``last.pt`` inside ``epoch``: a rerun resumes at the step after ``losses``."""
        partial = {"epoch": epoch, "step": len(losses), "losses": list(losses), "seconds": time.time() - t0}
        save_checkpoint(self.out_dir / "last.pt", {**self.state(), "epoch": epoch - 1, "partial": partial})
        print(f"checkpoint at epoch {epoch + 1}, step {len(losses)} ({reason})", flush=True)

    def train(self, epoch: int, resumed: dict | None) -> tuple[list[float], float]:
        """The losses of ``epoch``'s steps (those ``resumed`` holds first) and the epoch's start time; fewer than
        ``steps_per_epoch`` losses when ``left`` ran out."""
        t, steps = self.cfg["train"], int(self.cfg["train"]["steps_per_epoch"])
        done = resumed["step"] if resumed else 0
        losses = list(resumed["losses"]) if resumed else []
        t0 = time.time() - (resumed["seconds"] if resumed else 0.0)
        workers = int(t.get("workers", 0))
        # chips drawn in this process or (train.workers > 0) in that many, reseeded per epoch: a resumed run draws
        # what an uninterrupted one draws
        epoch_seed = _epoch_seed(int(t.get("seed", 0)), epoch)
        stream = worker_batches(self.regions, t, self.n_targets, epoch_seed, workers) if workers else None
        if stream is None:
            self.sampler.reseed(epoch_seed)

        def draw():
            return next(stream) if stream is not None else self.sampler.batch(t["batch_size"])

        accumulate = int(t.get("accumulate", 1))  # batches per optimiser step
        for _ in range(done * accumulate if done < steps else 0):  # the steps a checkpoint holds: drawn, not used
            draw()
        set_train_mode(self.model, bool(t.get("freeze_bn", False)))  # validation ends in model.train(), unfreezing it
        every_s, saved = float(t.get("checkpoint_every_s", 600)), time.time()
        try:
            for _ in _steps(steps, epoch, int(t["epochs"]), self.show, done):
                batches = [self._tensors(*draw()) for _ in range(accumulate)]
                loss = train_step(self.model, self.opt, self.scaler, batches, self.weights, self.device, self.dtype,
                                  t.get("loss", "bce_dice"))
                self.sched.step()
                losses.append(float(loss))
                self.left = None if self.left is None else self.left - 1
                if len(losses) < steps and (self.left == 0 or time.time() - saved >= every_s):
                    self.keep(epoch, losses, t0, "stop" if self.left == 0 else f"every {every_s:g} s")
                    saved = time.time()
                    if self.left == 0:
                        break
        except BaseException:  # Ctrl-C, SIGTERM, a failure: keep the steps taken
            if done < len(losses) < steps:
                self.keep(epoch, losses, t0, "interrupted")
            raise
        return losses, t0  # this epoch's worker processes end with ``stream``
