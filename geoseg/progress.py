"""Progress reporting and cancellation, shared by the library, the CLI and the QGIS plugin.

The library calls ``progress.update(done, total, stage)`` and checks
``progress.cancelled()``; raising :class:`geoseg.errors.Cancelled` is the
library's job, not the reporter's.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Protocol, TextIO, runtime_checkable

from geoseg.errors import Cancelled


@runtime_checkable
class Progress(Protocol):
    def update(self, done: int, total: int, stage: str) -> None: ...

    def cancelled(self) -> bool: ...


class NullProgress:
    """Reports nothing, never cancels."""

    def update(self, done: int, total: int, stage: str) -> None:
        pass

    def cancelled(self) -> bool:
        return False


class Prefixed:
    """Another reporter, with ``prefix`` before every stage name (e.g. which model and GSD of a sweep)."""

    def __init__(self, progress: Progress, prefix: str) -> None:
        self.progress, self.prefix = progress, prefix

    def update(self, done: int, total: int, stage: str) -> None:
        self.progress.update(done, total, self.prefix + stage)

    def cancelled(self) -> bool:
        return self.progress.cancelled()


def check_cancel(progress: Progress) -> None:
    """Raise :class:`Cancelled` if ``progress`` says so. What a rerun can reuse is the caller's to say
    (:func:`geoseg.errors.set_resume`): only the caller knows what it kept."""
    if progress.cancelled():
        raise Cancelled("cancelled")


class _Eta:
    def __init__(self) -> None:
        self.stage: str | None = None
        self.t0 = time.monotonic()
        self.d0 = 0

    def eta(self, done: int, total: int, stage: str) -> float | None:
        if stage != self.stage:
            self.stage, self.t0, self.d0 = stage, time.monotonic(), done
            return None
        rate = (done - self.d0) / max(1e-9, time.monotonic() - self.t0)
        return (total - done) / rate if rate > 0 else None


class JsonProgress:
    """One JSON object per line: ``{"stage", "done", "total", "eta_s"}`` (for programs driving the CLI)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._eta = _Eta()

    def update(self, done: int, total: int, stage: str) -> None:
        eta = self._eta.eta(done, total, stage)
        rec = {"stage": stage, "done": done, "total": total, "eta_s": None if eta is None else round(eta, 1)}
        self.stream.write(json.dumps(rec) + "\n")
        self.stream.flush()

    def cancelled(self) -> bool:
        return False


class LineProgress:
    """Plain lines for logs (stderr not a terminal: nohup, cron, a batch job): ``geoseg: STAGE: DONE/TOTAL``
    when a stage starts, at most every ``every_s`` seconds while it runs (with its percentage and ETA), and once when
    it ends, with the time it took. A log of a long run stays readable, where a bar's redraws would fill it."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 30.0) -> None:
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self._eta = _Eta()
        self._stage: str | None = None
        self._said = self._t0 = 0.0
        self._ended = False

    def update(self, done: int, total: int, stage: str) -> None:
        now = time.monotonic()
        eta = self._eta.eta(done, total, stage)
        if stage != self._stage:
            self._stage, self._t0, self._ended = stage, now, False
            if done < total:
                self._say(f"{stage}: {done}/{total}", now)
                return
        if self._ended:
            return
        if done >= total:  # a stage with nothing to do (0/0) ends at once
            self._ended = True
            self._say(f"{stage}: {done}/{total} in {now - self._t0:.1f} s", now)
        elif now - self._said >= self.every_s:
            left = "" if eta is None else f", about {eta:.0f} s left"
            self._say(f"{stage}: {done}/{total} ({100 * done / max(1, total):.0f}%{left})", now)

    def _say(self, text: str, now: float) -> None:
        self.stream.write(f"geoseg: {text}\n")
        self.stream.flush()
        self._said = now

    def cancelled(self) -> bool:
        return False


class BarProgress:
    """A tqdm progress bar per stage, on stderr."""

    def __init__(self) -> None:
        self._bar = None
        self._stage: str | None = None

    def update(self, done: int, total: int, stage: str) -> None:
        from tqdm import tqdm

        if stage != self._stage:
            self.close()
            self._stage = stage
            self._bar = tqdm(total=total, desc=stage, unit="step", dynamic_ncols=True, leave=True)
        assert self._bar is not None
        self._bar.total = total
        self._bar.n = done
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def cancelled(self) -> bool:
        return False
