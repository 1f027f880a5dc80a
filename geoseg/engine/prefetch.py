"""Read rows of tiles in a background thread, a bounded queue ahead of the model."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import numpy as np

from geoseg.grid import RasterGrid
from geoseg.io.raster import RasterInfo, WorkReader
from geoseg.tiling import TileGrid
from geoseg.window import PixelWindow

_DONE = object()


def prefetch_rows(info: RasterInfo, work: RasterGrid, tiles: TileGrid, rows: list[int],
                  cols: tuple[int, int] | None = None, depth: int = 2, within=None,
                  spans: dict[int, list[tuple[int, int]]] | None = None) -> Iterator[tuple[int, PixelWindow, np.ndarray, np.ndarray, int]]:
    """Yield ``(row, window, uint8 (C,Y,X), valid (Y,X), pixels read)`` per tile row (restricted to columns
    ``cols``); one super-window read per row so each source block is decoded about once.
    ``spans[row]``, where given, are the only columns of that row to read (:func:`geoseg.tiling.read_spans`): the
    rest of the window is zero and not valid. Errors in the reader re-raise in the consumer. ``within``: as
    :class:`WorkReader`'s."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work_fn() -> None:
        try:
            with WorkReader(info, work, within) as reader:
                for r in rows:
                    if stop.is_set():
                        return
                    win = tiles.row_read_window(r)
                    if cols is not None:
                        win = PixelWindow(win.row_off, cols[0], win.height, cols[1] - cols[0])
                    q.put((r, win, *_read(reader, win, None if spans is None else spans.get(r), len(info.bands))))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(exc)
        finally:
            q.put(_DONE)

    thread = threading.Thread(target=work_fn, name="geoseg-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get(timeout=0.1)
            except queue.Empty:
                pass
        thread.join()


def _read(reader: WorkReader, win: PixelWindow, spans, n_bands: int) -> tuple[np.ndarray, np.ndarray, int]:
    """``win`` from ``reader``, or only its columns ``spans`` (absolute ``[c0, c1)``), with the pixels read."""
    if spans is None:
        return *reader.read(win), win.height * win.width
    data = np.zeros((n_bands, *win.shape_yx), np.uint8)
    valid = np.zeros(win.shape_yx, bool)
    for c0, c1 in spans:
        part = PixelWindow(win.row_off, c0, win.height, c1 - c0)
        cut = slice(c0 - win.col_off, c1 - win.col_off)
        data[:, :, cut], valid[:, cut] = reader.read(part)
    return data, valid, win.height * sum(c1 - c0 for c0, c1 in spans)
