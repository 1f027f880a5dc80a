"""Helpers shared by the benchmark scripts (not part of the geoseg package)."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # so `tests.conftest` (the reference model) is importable
    sys.path.insert(0, str(REPO))

DEFAULT_DATA_DIR = Path(os.environ.get("GEOSEG_BENCH_DIR", "/tmp/geoseg-bench"))


def parse_size(spec: str) -> tuple[int, int]:
    """``"2048"``, ``"20k"`` (20000) or ``"2048x8192"`` (width x height) -> ``(width, height)``."""
    def one(s: str) -> int:
        s = s.strip().lower()
        return int(float(s[:-1]) * 1000) if s.endswith("k") else int(s)

    w, _, h = spec.lower().partition("x")
    return (one(w), one(h)) if h else (one(w), one(w))


def size_label(width: int, height: int) -> str:
    return f"{width}" if width == height else f"{width}x{height}"


def vectorizer_available() -> bool:
    try:
        import geoseg.footprints.raster
        import geoseg.io.vector  # noqa: F401
    except ImportError:
        return False
    return True


class StageTimer:
    """Wall time of named engine functions, by wrapping them for the duration of a ``with``."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._undo: list = []

    def wrap(self, module, attr: str, label: str) -> None:
        orig = getattr(module, attr)

        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return orig(*a, **k)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t0

        setattr(module, attr, timed)
        self._undo.append((module, attr, orig))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for module, attr, orig in reversed(self._undo):
            setattr(module, attr, orig)


def engine_stage_timer() -> StageTimer:
    """Times the parts of ``segment()`` that RunStats does not cover."""
    import geoseg.engine.segment as seg

    t = StageTimer()
    t.wrap(seg, "plan_for", "inspect_plan")  # inspecting the input (and reading an aoi) and planning the run
    t.wrap(seg, "_predictor", "load_model")
    t.wrap(seg, "write_probability", "write_prob")
    with contextlib.suppress(ImportError, AttributeError):
        import geoseg.footprints.raster as vr

        t.wrap(vr, "vectorize_raster", "vectorize")
    with contextlib.suppress(ImportError, AttributeError):
        import geoseg.io.vector as vv

        t.wrap(vv, "write_vectors", "write_vectors")
    return t


def environment(device: str | None = None, precision: str | None = None) -> dict:
    import rasterio
    import torch

    return {
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "host": platform.node(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(), "gdal": rasterio.__gdal_version__,
        "gdal_cachemax": os.environ.get("GDAL_CACHEMAX", "default (5% of RAM)"),
        "device": device, "precision": precision,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
    }


def print_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> None:
    """``columns``: (key, header, format spec)."""
    cells = [[h for _, h, _ in columns]]
    for r in rows:
        cells.append([("-" if r.get(k) is None else format(r[k], f)) for k, _, f in columns])
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    for j, line in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(line, widths)))
        if j == 0:
            print("  ".join("-" * w for w in widths))


def write_json(path: str | None, obj: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(obj, indent=2, default=str) + "\n")
        print(f"wrote {path}")
