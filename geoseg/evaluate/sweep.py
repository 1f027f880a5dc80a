"""Accuracy against ground resolution: run a model at several GSDs and score each run."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path


def gsd_sweep(raster: str, truth: str, gsds: list[float], model: str = "default", progress=None,
              base_config=None, breakdown: bool = False, keep_dir: str | Path | None = None) -> list[dict]:
    """For each GSD: resample ``raster`` to it (on the fly), run ``model`` there, bring the
    result back to the input grid and score it against ``truth``. Tiles are the model card's
    unless ``base_config`` sets them (likewise the footprint threshold, ``base_config.vectorize``);
    each row records the tile size, overlap, test-time augmentation and threshold used.

    ``keep_dir``: keep each run's footprints and probability raster there
    (``<card name>_<gsd>m.gpkg`` and ``..._prob.tif``; rows name them in ``pred`` and ``prob``),
    so they can be looked at or re-scored (e.g. ``geoseg vectorize``) without running the model again.

    ``progress`` sees each run's stages named ``"<card name> @ <gsd> m: <stage>"``; cancelling it stops
    the sweep (:class:`geoseg.errors.Cancelled`) within the run in progress."""
    from dataclasses import replace

    from geoseg.config import SegmentConfig
    from geoseg.engine.segment import segment
    from geoseg.evaluate.run import evaluate
    from geoseg.models.registry import get_card
    from geoseg.progress import NullProgress, Prefixed, check_cancel

    cfg = base_config or SegmentConfig(model=model)
    progress = progress or NullProgress()
    card = get_card(model)
    rows = []
    if keep_dir is not None:
        Path(keep_dir).mkdir(parents=True, exist_ok=True)
    for g in gsds:
        check_cancel(progress)
        with _run_dir(keep_dir) as folder:
            stem = f"{card.name}_{g:g}m" if keep_dir is not None else "b"
            out, prob = Path(folder) / f"{stem}.gpkg", (Path(folder) / f"{stem}_prob.tif" if keep_dir is not None else None)
            res = segment(raster, out, prob, replace(cfg, model=model, gsd_m=g, allow_any_gsd=True),
                          Prefixed(progress, f"{card.name} @ {g:g} m: "), return_footprints=False)
            tiles = res.plan.tiles
            scores = evaluate(str(out), truth, raster=raster, breakdown=breakdown)
            scores["threshold"] = cfg.vectorize.threshold if cfg.vectorize.threshold is not None else card.threshold
            if prob is not None:
                scores["prob"] = str(prob)
            rows.append({"model": card.name, "gsd_m": g, "tile_size": tiles.tile_size, "overlap": tiles.overlap, "tta": cfg.tta, **scores})
    return rows


def _run_dir(keep_dir):
    """Where one sweep run writes: ``keep_dir`` itself, or a temporary folder removed afterwards."""
    if keep_dir is not None:
        return contextlib.nullcontext(str(keep_dir))
    return tempfile.TemporaryDirectory(prefix="geoseg-sweep-")


def plot_sweep(rows_by_model: dict[str, list[dict]], path: str | Path, metric: str = "iou") -> Path:
    """PNG of ``metric`` against GSD (log axis), one line per model."""
    try:
        import matplotlib
    except ImportError:
        from geoseg.errors import ConfigError

        raise ConfigError("--plot needs matplotlib: pip install 'geoseg[plot]' (or matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for name, rows in rows_by_model.items():
        ax.plot([r["gsd_m"] for r in rows], [r[metric] for r in rows], marker="o", label=curve_label(name, rows))
    ax.set_xscale("log")
    ax.set_xlabel("ground sample distance (m)")
    ax.set_ylabel(metric)
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def curve_label(requested: str, rows: list[dict]) -> str:
    """How a swept model is named in plots and tables: its card name (``default (unet-...)`` for an alias),
    never a long path to a card."""
    name = rows[0].get("model", requested) if rows else requested
    if name == requested or requested.endswith(".json") or "/" in requested:
        return name
    return f"{requested} ({name})"


def write_json(rows: list[dict], path: str | Path) -> None:
    Path(path).write_text(json.dumps(rows, indent=2) + "\n")
