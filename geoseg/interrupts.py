"""Signals that arrive while outputs are being committed wait until the commit is whole.

The CLI turns SIGTERM (the QGIS plugin's cancel) and Ctrl-C into exceptions that unwind a run and remove its temporary
files. Raised between two renames, such an exception would leave a shapefile's parts from two runs, or a new
probability raster beside the old footprints. Inside :func:`uninterrupted` the CLI's handlers (:func:`deliver`) keep
the exception and raise it once the block has finished.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

_depth = 0
_pending: BaseException | None = None


@contextmanager
def uninterrupted() -> Iterator[None]:
    """A block that a signal delivered through :func:`deliver` does not interrupt; its exception follows the block."""
    global _depth, _pending
    _depth += 1
    try:
        yield
    except BaseException:  # the block's own error unwinds the run: it is the one to report
        _depth -= 1
        if _depth == 0:
            _pending = None
        raise
    _depth -= 1
    if _depth == 0 and _pending is not None:  # the block finished: now the interruption
        exc, _pending = _pending, None
        raise exc


def deliver(make: Callable[[], BaseException]) -> None:
    """Raise ``make()`` now, or after the current :func:`uninterrupted` block (call it from a signal handler)."""
    global _pending
    if _depth:
        if _pending is None:
            _pending = make()
        return
    raise make()
