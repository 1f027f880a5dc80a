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
                  cols: tuple[int, int] | None = None, depth: int = 2, within=None) -> Iterator[tuple[int, PixelWindow, np.ndarray, np.ndarray]]:
    """Yield ``(row, window, uint8 (C,Y,X), valid (Y,X))`` per tile row (restricted to columns
    ``cols``); one super-window read per row so each source block is decoded about once.
    Errors in the reader re-raise in the consumer. ``within``: as :class:`WorkReader`'s."""
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
                    data, valid = reader.read(win)
                    q.put((r, win, data, valid))
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
