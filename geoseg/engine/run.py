"""The prediction pass: tile rows -> model -> streaming blend -> chunks in a work directory."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from geoseg.engine.plan import Plan
from geoseg.engine.prefetch import prefetch_rows
from geoseg.engine.stitch import RowStitcher
from geoseg.engine.workdir import WorkDir
from geoseg.io.raster import RasterInfo
from geoseg.progress import Progress, check_cancel


@dataclass
class RunStats:
    tiles_predicted: int = 0
    tiles_empty: int = 0
    chunks_written: int = 0
    chunks_reused: int = 0
    any_valid: bool = False
    seconds: dict[str, float] = field(default_factory=lambda: {"read_wait": 0.0, "predict": 0.0, "stitch": 0.0, "write": 0.0})


def predict_rows(info: RasterInfo, plan: Plan, predictor, blend: str, work: WorkDir, progress: Progress) -> RunStats:
    """Predict every tile row whose chunk is not already in ``work``; return what was done."""
    tiles, stats = plan.tiles, RunStats()
    chunks = [tiles.final_rows_after(r) for r in range(tiles.n_rows)]
    todo = [i for i in range(tiles.n_rows) if not work.done(i)]
    stats.chunks_reused = tiles.n_rows - len(todo)
    stats.any_valid = stats.chunks_reused > 0 and _reused_has_valid(work, tiles.n_rows)
    if not todo:
        return stats
    start = tiles.first_row_touching(chunks[todo[0]].row_off)
    stitcher = RowStitcher(tiles, plan.n_channels, blend)
    stitcher.top = chunks[start].row_off
    total = len(tiles)
    progress.update(start * tiles.n_cols, total, "predict")
    t_wait = time.perf_counter()
    for r, win, data, valid in prefetch_rows(info, plan.work_grid, tiles, list(range(start, tiles.n_rows))):
        stats.seconds["read_wait"] += time.perf_counter() - t_wait
        check_cancel(progress)
        _predict_row(tiles.row(r), win, data, valid, predictor, stitcher, stats)
        t0 = time.perf_counter()
        probs, ok = stitcher.flush(chunks[r])
        if not work.done(r):
            work.write_chunk(r, chunks[r], probs, ok)
            stats.chunks_written += 1
        stats.seconds["write"] += time.perf_counter() - t0
        progress.update((r + 1) * tiles.n_cols, total, "predict")
        t_wait = time.perf_counter()
    return stats


def _predict_row(row_tiles, win, data, valid, predictor, stitcher: RowStitcher, stats: RunStats) -> None:
    live, batch = [], []
    for tile in row_tiles:
        rel = tile.read.relative_to(win).slices()
        v = valid[rel]
        if v.any():
            live.append((tile, v))
            batch.append(data[(slice(None), *rel)])
        else:
            stitcher.add(tile, None, v)
            stats.tiles_empty += 1
    if not live:
        return
    stats.any_valid = True
    t0 = time.perf_counter()
    probs = predictor(np.stack(batch))
    t1 = time.perf_counter()
    for (tile, v), p in zip(live, probs):
        stitcher.add(tile, p, v)
    stats.seconds["predict"] += t1 - t0
    stats.seconds["stitch"] += time.perf_counter() - t1
    stats.tiles_predicted += len(live)


def _reused_has_valid(work: WorkDir, n: int) -> bool:
    import rasterio

    for i in range(n):
        if work.done(i):
            with rasterio.open(work.chunk_path(i)) as ds:
                if ds.read(ds.count).any():
                    return True
    return False
