"""Accuracy against ground resolution: run a model at several GSDs and score each run."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, is_dataclass
from pathlib import Path

MODES = ("model", "imagery")


def gsd_sweep(raster: str, truth: str, gsds: list[float], model: str = "default", progress=None,
              base_config=None, breakdown: bool = False, keep_dir: str | Path | None = None,
              mode: str = "model", ceiling: bool = False, aoi: str | None = None, iou_threshold: float = 0.5,
              name: str | None = None) -> list[dict]:
    """For each GSD, score ``model`` against ``truth`` on ``raster`` seen at that GSD.

    ``mode="model"``: resample ``raster`` to the GSD (on the fly) and run the model *there*: how the
    network itself copes with each resolution (the scale-invariance test).
    ``mode="imagery"``: first write ``raster`` as imagery captured at the GSD (averaged onto a metric grid,
    :func:`geoseg.io.degrade.write_at_gsd`), then segment that as ``geoseg segment`` would: at the model
    card's GSD unless ``base_config.gsd_m`` says otherwise. This is what a user with imagery of that GSD gets.
    A GSD finer than the raster's own adds no detail; such rows say ``"finer_than_source": true``. GSDs must be
    finite, positive and at most :data:`MAX_UPSAMPLE` times finer than the raster's (a :class:`ConfigError`
    before any run otherwise).

    Either way the result is brought back to the input grid and scored there, objects matched at
    ``iou_threshold`` (each row records it). Tiles are the model card's
    unless ``base_config`` sets them (likewise the footprint threshold, ``base_config.vectorize``);
    each row records the tile size, overlap, test-time augmentation, threshold and the GSD the model ran at.
    Only the truth around ``raster`` is read; when none of it lies on the raster's valid area (inside ``aoi``),
    a warning says so once, before the runs (as :func:`geoseg.evaluate.run.evaluate` warns); a warning the runs
    repeat is shown once.

    ``keep_dir``: keep each run's footprints and probability raster there
    (``<name>_<gsd>m.gpkg`` and ``..._prob.tif``, in imagery mode also the degraded input
    ``..._input.tif``; rows name them in ``pred`` and ``prob``); ``name`` is the card's name unless given
    (:func:`run_names` tells apart cards that share one),
    so they can be looked at or re-scored (e.g. ``geoseg vectorize``) without running the model again.
    It also makes a sweep resumable: each finished run leaves its row (``..._row.json``), and a rerun with
    the same inputs, model and settings reuses those rows and runs only the rest.

    ``ceiling``: each row also gives the scores of a perfect model on the grid the run used
    (:mod:`geoseg.evaluate.ceiling`): ``ceiling_iou``, ``ceiling_f1`` and ``ceiling_obj_f1``, the most any network
    can score there with these outlines and this metric. In ``keep_dir`` the oracle's raster and footprints are
    ``<name>_<gsd>m_oracle.tif`` / ``.gpkg``.

    ``aoi``: score only inside these polygons (the area where the truth is complete; see
    :func:`geoseg.evaluate.run.evaluate`).

    ``progress`` sees each run's stages named ``"<name> @ <gsd> m: <stage>"``; cancelling it stops
    the sweep (:class:`geoseg.errors.Cancelled`) within the run in progress."""
    from geoseg.config import SegmentConfig
    from geoseg.engine.plan import check_run_gsd
    from geoseg.errors import ConfigError
    from geoseg.evaluate.run import check_truth_on
    from geoseg.georef import ground_gsd_m
    from geoseg.io.raster import inspect_raster
    from geoseg.models.registry import get_card
    from geoseg.progress import NullProgress

    if mode not in MODES:
        raise ConfigError(f"unknown sweep mode {mode!r}; use one of {', '.join(MODES)}")
    if not 0.0 < iou_threshold <= 1.0:
        raise ConfigError(f"object-match IoU {iou_threshold} is out of range; give a value above 0 and at most 1")
    check_gsds(gsds)
    cfg = base_config or SegmentConfig(model=model)
    card = get_card(model)
    if mode == "imagery":
        check_run_gsd(card, cfg)  # before any imagery is made
    grid = inspect_raster(raster, card.bands, cfg.bands).grid
    source_gsd = ground_gsd_m(grid)
    _check_fineness(gsds, source_gsd, grid.shape_yx, raster)
    with each_warning_once():
        check_truth_on(raster, truth, aoi)  # a missing truth or aoi fails now, not after the first run
        _warn_outside_range(card, gsds, mode)
        if keep_dir is not None:
            from geoseg.io.atomic import check_output_dir

            check_output_dir(Path(keep_dir), f"--keep {keep_dir}")
            Path(keep_dir).mkdir(parents=True, exist_ok=True)
        else:
            remove_stale_runs()  # the temporary folders of killed sweeps, once per sweep
        run = _Sweep(raster, truth, model, card, cfg, mode, breakdown, keep_dir, ceiling, aoi, iou_threshold,
                     name or card.name, progress or NullProgress())
        return run.all(gsds, source_gsd)


class _Sweep:
    """One model's runs over the GSDs, each kept (and reused) in ``keep_dir`` if given."""

    def __init__(self, raster, truth, model, card, cfg, mode, breakdown, keep_dir, ceiling, aoi, iou_threshold,
                 name, progress) -> None:
        self.raster, self.truth, self.model, self.card, self.cfg, self.mode = raster, truth, model, card, cfg, mode
        self.breakdown, self.keep_dir, self.ceiling, self.aoi = breakdown, keep_dir, ceiling, aoi
        self.iou_threshold, self.name, self.progress = iou_threshold, name, progress

    def all(self, gsds, source_gsd: float) -> list[dict]:
        from geoseg.errors import Cancelled, set_resume

        rows = []
        try:
            for g in gsds:
                rows.append(self.one(g, source_gsd))
        except BaseException as exc:  # Cancelled, Ctrl-C, a termination: say what a rerun reuses
            if isinstance(exc, Cancelled) or not isinstance(exc, Exception):
                set_resume(exc, _what_is_kept(len(rows), len(gsds), self.keep_dir))
            raise
        return rows

    def one(self, g: float, source_gsd: float) -> dict:
        from geoseg.progress import Prefixed, check_cancel

        check_cancel(self.progress)
        label = Prefixed(self.progress, f"{self.name} @ {gsd_text(g)} m: ")
        keep = self.keep_dir is not None
        with _run_dir(self.keep_dir) as folder:
            stem = Path(folder) / (f"{self.name}_{gsd_text(g)}m" if keep else "b")
            key = _key(self.raster, self.truth, _card_id(self.card), self.mode, g, self.cfg, self.breakdown,
                       {"iou_threshold": self.iou_threshold}, *(("ceiling",) if self.ceiling else ()),
                       *((_file_id(self.aoi),) if self.aoi else ()))
            row = _kept(stem.with_name(stem.name + "_row.json"), key) if keep else None
            if row is not None:
                label.update(1, 1, "kept from an earlier run")
                return row
            row = _run_one(self.raster, self.truth, g, self.model, self.card, self.cfg, self.mode, self.breakdown,
                           stem, keep, label, self.ceiling, self.aoi, self.iou_threshold)
            row.update(source_gsd_m=round(source_gsd, 4), finer_than_source=g < 0.99 * source_gsd)
            if keep:
                _keep(stem.with_name(stem.name + "_row.json"), key, row)
            return row


MAX_UPSAMPLE = 8  # a sweep GSD may be at most this many times finer than the raster's own


def check_gsds(gsds) -> None:
    """A one-line :class:`ConfigError` unless ``gsds`` is a non-empty list of finite GSDs above 0 (metres)."""
    import math
    from numbers import Real

    from geoseg.errors import ConfigError

    bad = [g for g in gsds if isinstance(g, bool) or not isinstance(g, Real) or not math.isfinite(g) or g <= 0]
    if not len(gsds) or bad:
        what = f"{', '.join(map(str, bad))} is not a GSD" if bad else "no GSD given"
        raise ConfigError(f"{what}; give GSDs in metres, each > 0 and finite, e.g. [0.15, 0.3, 0.6]")


def _check_fineness(gsds, source_gsd: float, shape_yx, raster: str) -> None:
    """A one-line :class:`ConfigError` for a GSD over :data:`MAX_UPSAMPLE` times finer than the raster's: it adds
    no detail, only pixels (a typo for 0.1, or millimetres for metres, would plan a work grid of billions)."""
    from geoseg.errors import ConfigError

    finest = min(gsds)
    if finest >= source_gsd / MAX_UPSAMPLE:
        return
    h, w = (round(n * source_gsd / finest) for n in shape_yx)
    raise ConfigError(f"sweep GSD {finest:g} m is over {MAX_UPSAMPLE} times finer than {raster}'s "
                      f"{source_gsd:.3g} m: a {w} x {h} px work grid that adds no detail; give GSDs in metres, "
                      f"each at least {source_gsd / MAX_UPSAMPLE:.3g}")


def gsd_text(g: float) -> str:
    """A GSD as kept file names and progress stages show it: as typed (``0.3``, ``2.5``, ``1``), never rounded
    onto another GSD's (15 significant digits)."""
    return format(g, ".15g")


@contextlib.contextmanager
def each_warning_once():
    """Within the block, a warning already shown (same text and category) is not shown again: a sweep's runs
    would repeat the same warnings (a single band replicated, no truth on the raster) once per GSD."""
    import warnings

    with warnings.catch_warnings():
        show, seen = warnings.showwarning, set()

        def once(message, category, filename, lineno, file=None, line=None):
            if (str(message), category) not in seen:
                seen.add((str(message), category))
                show(message, category, filename, lineno, file, line)

        warnings.showwarning = once
        yield


def run_names(models) -> dict[str, str]:
    """The name each of ``models`` (names or card paths) goes by in kept files, progress and plots: its card's
    name, and where cards share one (two exports of one experiment, a fine-tuned copy), that name and the first
    8 hex digits of its weights' sha256, or for the same weights its place in ``models`` (1, 2, ...)."""
    from geoseg.models.registry import get_card

    cards = {m: get_card(m) for m in models}
    names = {}
    for i, (m, card) in enumerate(cards.items(), start=1):
        same = [c for c in cards.values() if c.name == card.name]
        if len(same) == 1:
            names[m] = card.name
        elif sum(c.sha256 == card.sha256 for c in same) == 1:
            names[m] = f"{card.name}-{card.sha256[:8]}"
        else:
            names[m] = f"{card.name}-{i}"
    return names


def _what_is_kept(done: int, total: int, keep_dir) -> str:
    """What a rerun of an interrupted sweep reuses: with ``keep_dir``, every finished GSD and the finished tiles of
    the one in progress; without, nothing (its runs were in a temporary folder)."""
    if keep_dir is None:
        return "nothing was kept (add --keep DIR to make a sweep resumable)"
    return f"rerun the same command to resume: {done} of {total} GSDs are done and kept in {keep_dir}"


def _run_one(raster, truth, g, model, card, cfg, mode, breakdown, stem: Path, keep: bool, progress,
             ceiling: bool = False, aoi: str | None = None, iou_threshold: float = 0.5) -> dict:
    """Segment ``raster`` at GSD ``g`` (``mode`` as in :func:`gsd_sweep`) into ``stem``.gpkg and score it."""
    from dataclasses import replace

    from geoseg.engine.segment import segment
    from geoseg.evaluate.run import evaluate
    from geoseg.io.degrade import write_at_gsd

    out, prob = stem.with_name(stem.name + ".gpkg"), (stem.with_name(stem.name + "_prob.tif") if keep else None)
    if mode == "model":
        src, run_cfg = raster, replace(cfg, model=model, gsd_m=g, allow_any_gsd=True, aoi=aoi)
    else:
        src = str(stem.with_name(stem.name + "_input.tif"))
        input_key = _key(raster, None, None, "input", g, cfg.bands, card.bands)
        if not (keep and Path(src).is_file() and _kept(Path(src + ".json"), input_key) is not None):
            write_at_gsd(raster, g, src, card.bands, cfg.bands, progress=progress)
            if keep:  # lets a resumed sweep reuse this input, and with it the finished tiles of its run
                _keep(Path(src + ".json"), input_key, {})
        run_cfg = replace(cfg, model=model, bands=None, aoi=aoi)  # the degraded input holds the chosen bands, in order
    res = segment(src, out, prob, run_cfg, progress, return_footprints=False)
    tiles = res.plan.tiles
    scores = evaluate(str(out), truth, raster=raster, breakdown=breakdown, aoi=aoi, iou_threshold=iou_threshold)
    scores["threshold"] = cfg.vectorize.threshold if cfg.vectorize.threshold is not None else card.threshold
    if not keep:  # the footprints were written to a temporary folder that is gone when the sweep returns
        scores["pred"] = None
    if prob is not None:
        scores["prob"] = str(prob)
    if ceiling:
        from geoseg.evaluate.ceiling import grid_ceiling

        progress.update(0, 1, "perfect model on the same grid")
        best = grid_ceiling(raster, truth, res.plan.work_grid, stem.with_name(stem.name + "_oracle"), aoi, iou_threshold)
        scores.update({f"ceiling_{k}": best[k] for k in ("iou", "f1", "obj_f1")})
        progress.update(1, 1, "perfect model on the same grid")
    return {"model": card.name, "gsd_m": g, "mode": mode, "run_gsd_m": res.plan.work_gsd_m,
            "tile_size": tiles.tile_size, "overlap": tiles.overlap, "tta": cfg.tta,
            **({} if tuple(cfg.tta_scales) == (1.0,) else {"tta_scales": list(cfg.tta_scales)}), **scores}


def _file_id(path: str | None) -> dict | None:
    if path is None:
        return None
    st = os.stat(path) if os.path.exists(path) else None
    return {"path": os.path.abspath(path), "size": st and st.st_size, "mtime": st and st.st_mtime_ns}


def _card_id(card) -> dict:
    """The model as a kept result depends on it: its weights and every card field (threshold, border cut, tile size,
    GSD, normalisation, ...), so a card edited between runs is not scored from the old card's rows."""
    return {"sha256": card.sha256, "card": card.raw}


def _key(raster, truth, model, mode, g, *settings) -> str:
    """What a kept result depends on: both files (path, size, mtime), the model (weights and card), mode, GSD,
    settings."""
    from geoseg.engine.workdir import fingerprint

    return fingerprint({"raster": _file_id(raster), "truth": _file_id(truth), "model": model, "mode": mode,
                        "gsd": g, "settings": [asdict(x) if is_dataclass(x) else x for x in settings]})


def _kept(path: Path, key: str) -> dict | None:
    """The row kept at ``path`` if it was made with ``key``; None when absent, unreadable or stale."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data.get("row") if isinstance(data, dict) and data.get("key") == key else None


def _keep(path: Path, key: str, row: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"key": key, "row": row}, indent=1))
    tmp.replace(path)


TEMP_PREFIX = "geoseg-sweep-"


def _run_dir(keep_dir):
    """Where one sweep run writes: ``keep_dir`` itself, or a temporary folder removed afterwards (named with this
    process's PID, so that the folders of a killed sweep are removed by the next one: see :func:`remove_stale_runs`)."""
    if keep_dir is not None:
        return contextlib.nullcontext(str(keep_dir))
    return tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{os.getpid()}-")


def remove_stale_runs(root: str | Path | None = None) -> list[Path]:
    """Remove the temporary run folders (``geoseg-sweep-PID-*``) of sweeps whose process no longer runs."""
    import shutil

    from geoseg.io.atomic import process_alive

    root = Path(root or tempfile.gettempdir())
    removed = []
    try:
        found = [p for p in root.iterdir() if p.name.startswith(TEMP_PREFIX) and p.is_dir()]
    except OSError:
        return removed
    for p in found:
        pid = p.name[len(TEMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


PLOT_EXTENSIONS = (".png", ".svg", ".pdf")


def check_plot_output(path: str | Path) -> None:
    """One-line errors, before any sweep runs, for a plot that could not be written: a format other than
    PNG/SVG/PDF, a missing or read-only folder, or no matplotlib."""
    from geoseg.errors import ConfigError, OutputError
    from geoseg.io.atomic import check_writable_dir

    if Path(path).suffix.lower() not in PLOT_EXTENSIONS:
        raise OutputError(f"plot {path} must end in {', '.join(PLOT_EXTENSIONS)}")
    check_writable_dir(Path(path))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install 'geoseg[plot]' (or matplotlib)") from None


def plot_sweep(rows_by_model: dict[str, list[dict]], path: str | Path, metric: str = "iou", xlabel: str | None = None,
               names: dict[str, str] | None = None) -> Path:
    """A plot (PNG, SVG or PDF by ``path``'s extension) of ``metric`` against GSD (log axis), one line per model
    (labelled by :func:`curve_label`, with ``names`` from :func:`run_names` if given); rows
    with ``ceiling_<metric>`` add a dashed line for the perfect model on the same grids (once when several models
    share it). Written to a temporary file, then renamed."""
    from geoseg.io.atomic import atomic_output

    check_plot_output(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for name, rows in rows_by_model.items():
        ax.plot([r["gsd_m"] for r in rows], [r[metric] for r in rows], marker="o", label=curve_label(name, rows, (names or {}).get(name)))
    ceilings = {tuple((r["gsd_m"], r[f"ceiling_{metric}"]) for r in rows)
                for rows in rows_by_model.values() if rows and all(f"ceiling_{metric}" in r for r in rows)}
    for i, points in enumerate(sorted(ceilings)):
        ax.plot(*zip(*points), linestyle="--", color="0.4", marker=".",
                label=None if i else "perfect model, same grid")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel or "ground sample distance (m)")
    ax.set_ylabel(metric)
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_output(Path(path)) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    return Path(path)


def curve_label(requested: str, rows: list[dict], run_name: str | None = None) -> str:
    """How a swept model is named in plots and tables: its card name (``default (unet-...)`` for an alias),
    never a long path to a card; ``run_name`` (:func:`run_names`) tells apart cards that share a name."""
    name = run_name or (rows[0].get("model", requested) if rows else requested)
    if name == requested or requested.endswith(".json") or "/" in requested:
        return name
    return f"{requested} ({name})"


def write_json(rows: list[dict], path: str | Path) -> None:
    Path(path).write_text(json.dumps(rows, indent=2) + "\n")


def _warn_outside_range(card, gsds, mode: str) -> None:
    """Model mode runs the network at each GSD even outside its card's valid range (what a sweep is for); say so."""
    lo, hi = card.gsd_valid_m
    outside = [g for g in gsds if not lo <= g <= hi]
    if outside and mode == "model":
        import warnings

        from geoseg.errors import GsdWarning

        warnings.warn(f"{card.name} is valid for {lo:g}-{hi:g} m; the sweep runs it at {', '.join(f'{g:g}' for g in outside)} m "
                      "as well, beyond what its card promises", GsdWarning, stacklevel=3)
