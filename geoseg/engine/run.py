"""The prediction pass: column blocks x tile rows -> model -> streaming blend -> chunks in a work directory."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from geoseg.engine.plan import Plan
from geoseg.engine.prefetch import prefetch_rows
from geoseg.engine.stitch import RowStitcher
from geoseg.engine.workdir import WorkDir
from geoseg.errors import OutputError
from geoseg.io.raster import RasterInfo
from geoseg.progress import Progress, check_cancel
from geoseg.tiling import ColumnBlock, column_blocks, read_spans
from geoseg.window import PixelWindow


@dataclass
class RunStats:
    tiles_predicted: int = 0
    tiles_empty: int = 0
    tiles_reused: int = 0
    chunks_written: int = 0
    chunks_reused: int = 0
    pixels_read: int = 0  # working-grid pixels read from the raster (an aoi's run reads only what its tiles need)
    any_valid: bool = False
    seconds: dict[str, float] = field(default_factory=lambda: {"read_wait": 0.0, "predict": 0.0, "stitch": 0.0, "write": 0.0})


def chunk_windows(plan: Plan) -> dict[tuple[int, int], PixelWindow]:
    """Every output chunk: rows finished after a tile row x the columns a block owns."""
    out = {}
    for b in column_blocks(plan.tiles, plan.block_width):
        for r in range(plan.tiles.n_rows):
            rows = plan.tiles.final_rows_after(r)
            out[(r, b.index)] = PixelWindow(rows.row_off, b.owned[0], rows.height, b.owned[1] - b.owned[0])
    return out


def predict_rows(info: RasterInfo, plan: Plan, predictor, blend: str, work: WorkDir, progress: Progress) -> RunStats:
    """Predict every chunk not already in ``work``, block by block; return what was done."""
    stats, chunks = RunStats(), chunk_windows(plan)
    blocks = column_blocks(plan.tiles, plan.block_width)
    stats.chunks_reused, stats.any_valid = _check_reused(work, chunks)
    n_rows = plan.tiles.n_rows
    total = sum(_n_run(plan, b, range(n_rows)) for b in blocks)  # tiles to predict, counting the shared ones twice
    before = 0  # tiles of the blocks already handled
    progress.update(0, total, "predict")  # at once: the first row of tiles takes a while
    for block in blocks:
        todo = [r for r in range(n_rows) if not work.done((r, block.index))]
        if todo:
            start = plan.tiles.first_row_touching(chunks[(todo[0], block.index)].row_off)
            counter = (before + _n_run(plan, block, range(start)), total)
            shared = set(blocks[block.index + 1].tile_cols) if block.index + 1 < len(blocks) else set()
            consumed = set(blocks[block.index - 1].tile_cols) & set(block.tile_cols) if block.index else set()
            _run_block(info, plan, predictor, blend, work, progress, block, start, chunks, stats, counter, shared,
                       consumed)
        before += _n_run(plan, block, range(n_rows))
        if not todo:  # a block finished in an earlier run: its rows said nothing
            progress.update(before, total, "predict")
    return stats


def _n_run(plan: Plan, block: ColumnBlock, rows) -> int:
    """How many of ``block``'s tiles in tile rows ``rows`` have pixels to keep."""
    return sum(plan.runs((r, c)) for r in rows for c in block.tile_cols)


def _spans(plan: Plan, block: ColumnBlock, rows: list[int]) -> dict[int, list[tuple[int, int]]] | None:
    """The columns to read per tile row: those of the tiles with pixels to keep (None: whole rows, no aoi)."""
    if plan.run_tiles is None:
        return None
    return {r: read_spans(plan.tiles, r, [c for c in block.tile_cols if plan.runs((r, c))], block.read_cols) for r in rows}


def _run_block(info, plan: Plan, predictor, blend, work: WorkDir, progress, block: ColumnBlock, start: int,
               chunks, stats: RunStats, counter: tuple[int, int], shared: set[int], consumed: set[int]) -> None:
    """Stream the tile rows of one column block from ``start``; tiles in ``shared`` columns
    (needed by the next block too) are kept in the work folder; kept ones are reused, and those of ``consumed``
    columns (kept by the previous block) are removed once the rows they feed are written, so the work folder holds
    the kept tiles of about one block border, not of all (3 MB a tile of 512 px and 3 outputs)."""
    tiles = plan.tiles
    stitcher = RowStitcher(tiles, plan.n_channels, blend, cols=block.read_cols, top=chunks[(start, block.index)].row_off)
    done, total = counter
    rows = list(range(start, tiles.n_rows))
    dropped = 0  # kept tiles of ``consumed`` columns in rows above this are removed
    t_wait = time.perf_counter()
    for r, win, data, valid, n_read in prefetch_rows(info, plan.work_grid, tiles, rows, cols=block.read_cols,
                                                     within=plan.region, spans=_spans(plan, block, rows)):
        stats.seconds["read_wait"] += time.perf_counter() - t_wait
        stats.pixels_read += n_read
        check_cancel(progress)
        row_tiles = [tiles.tile(r, c) for c in block.tile_cols]
        kept = {t.index[1]: p for t in row_tiles if (p := work.load_edge(t.index)) is not None}
        fresh = _predict_row(row_tiles, win, data, valid, predictor, stitcher, stats, kept, plan.runs)
        for col in shared:
            if fresh.get(col) is not None:
                work.save_edge((r, col), fresh[col])
        t0 = time.perf_counter()
        probs, ok = stitcher.flush(chunks[(r, block.index)])
        if not work.done((r, block.index)):
            work.write_chunk((r, block.index), chunks[(r, block.index)], probs, ok)
            stats.chunks_written += 1
        # a rerun restarts at the first tile row touching the first unwritten chunk: rows above it are not read again
        needed_from = tiles.first_row_touching(chunks[(r + 1, block.index)].row_off) if r + 1 < tiles.n_rows else r + 1
        for r_done in range(dropped, needed_from):
            for col in consumed:
                work.drop_edge((r_done, col))
        dropped = max(dropped, needed_from)
        stats.seconds["write"] += time.perf_counter() - t0
        done += sum(plan.runs(t.index) for t in row_tiles)
        progress.update(done, total, "predict")
        t_wait = time.perf_counter()


def _predict_row(row_tiles, win: PixelWindow, data, valid, predictor, stitcher: RowStitcher, stats: RunStats,
                 kept: dict[int, np.ndarray], runs) -> dict[int, np.ndarray | None]:
    """Predict each tile of a row (or reuse ``kept[tile col]``) into the stitcher; returns fresh ``{tile col: probs}``.
    Tiles for which ``runs(index)`` is false were not read (the plan found no pixel of theirs to keep)."""
    live, batch, out = [], [], {}
    for tile in row_tiles:
        rel = tile.read.relative_to(win).slices()
        v = valid[rel]
        if not runs(tile.index) or not v.any():
            v = np.zeros_like(v)
            stitcher.add(tile, None, v)
            stats.tiles_empty += 1
            out[tile.index[1]] = None
        elif tile.index[1] in kept:
            stitcher.add(tile, kept[tile.index[1]], v)
            stats.tiles_reused += 1
            stats.any_valid = True
        else:
            live.append((tile, v))
            batch.append(data[(slice(None), *rel)])
    if not live:
        return out
    stats.any_valid = True
    t0 = time.perf_counter()
    probs = predictor(np.stack(batch))
    t1 = time.perf_counter()
    for (tile, v), p in zip(live, probs):
        stitcher.add(tile, p, v)
        out[tile.index[1]] = p
    stats.seconds["predict"] += t1 - t0
    stats.seconds["stitch"] += time.perf_counter() - t1
    stats.tiles_predicted += len(live)
    return out


def _check_reused(work: WorkDir, chunks: dict[tuple[int, int], PixelWindow]) -> tuple[int, bool]:
    """``(finished chunks kept, whether one has a valid pixel)``. A finished chunk that does not read back whole
    (0 bytes or truncated by a crash or a full disk, wrong size) is removed, with one warning, and predicted again."""
    import warnings

    import rasterio

    from geoseg.errors import ResumeWarning

    kept, any_valid, bad = 0, False, []
    for i, w in chunks.items():
        if not work.done(i):
            continue
        path = work.chunk_path(i)
        try:
            with rasterio.open(path) as ds:
                if (ds.count, ds.height, ds.width) != (work.k + 1, w.height, w.width):
                    raise ValueError(f"{ds.count} bands of {ds.height}x{ds.width} pixels, expected "
                                     f"{work.k + 1} of {w.height}x{w.width}")
                valid = ds.read(ds.count)  # pixel-interleaved: this decodes every band, so a cut-off tile fails here
        except Exception as exc:  # noqa: BLE001 - any failure: the chunk is redone
            bad.append((path, " ".join(str(exc).split()) or type(exc).__name__))
            try:
                path.unlink(missing_ok=True)
            except OSError as err:
                raise OutputError(f"cannot remove the damaged {path} of an earlier run ({err.strerror or err}); "
                                  f"remove {work.path} and rerun") from None
            continue
        kept += 1
        any_valid = any_valid or bool(valid.any())
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        warnings.warn(f"{len(bad)} finished part(s) of the earlier run in {work.path} could not be read "
                      f"({bad[0][0].name}{more}: {bad[0][1]}); predicting them again", ResumeWarning, stacklevel=3)
    return kept, any_valid
