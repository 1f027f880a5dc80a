"""One run at a time per output: an advisory lock that the OS drops when the process ends.

Two runs writing the same footprints or the same training folder would interleave their work files and
checkpoints. The second one stops at once with a one-line error instead. A killed run holds nothing (the lock
goes with its process), so rerunning it resumes as before.
"""

from __future__ import annotations

import contextlib
import os
from contextlib import contextmanager
from pathlib import Path

from geoseg.errors import OutputError


def lock_path_for(output: Path) -> Path:
    """The lock file of ``output``: hidden, beside it."""
    return output.parent / f".{output.name}.geoseg-lock"


def _try_lock(f) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _lock_error(path: Path, exc: OSError) -> OutputError:
    reason = exc.strerror or str(exc) or type(exc).__name__
    return OutputError(f"cannot create the lock file {path}: {reason[:1].lower() + reason[1:]}; "
                       "remove it or choose another output")


def _locked(path: Path, what: str):
    """The lock file ``path``, open and locked by this process. A holder removes the file as it ends: a file
    locked just after that is no longer the one at ``path``, so it is opened again (two runs held "the" lock
    at once before 2026-12-02)."""
    for _ in range(100):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            f = open(path, "a+", encoding="utf-8", errors="replace")  # noqa: SIM115  (held open for the whole block)
        except OSError as exc:
            raise _lock_error(path, exc) from None
        if not _try_lock(f):
            f.seek(0)
            holder = f.read().strip() or "a process"
            f.close()
            raise OutputError(f"another geoseg run ({holder}) is writing {what}; wait for it to finish, stop it, "
                              "or choose another output")
        if _same_file(f, path):
            return f
        f.close()  # locked a file its holder had just removed: lock the one at path now
    raise OutputError(f"cannot lock {path}: it is removed and created again all the time; choose another output")


def _same_file(f, path: Path) -> bool:
    try:
        mine, there = os.fstat(f.fileno()), os.stat(path)
    except OSError:  # removed meanwhile
        return False
    return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)


@contextmanager
def output_locks(*outputs: Path | None):
    """:func:`run_lock` on each output given (None: skipped), for the whole block: a second run writing one of them
    stops at once."""
    with contextlib.ExitStack() as stack:
        for out in outputs:
            if out is not None:
                stack.enter_context(run_lock(lock_path_for(Path(out)), str(out)))
        yield


@contextmanager
def run_lock(path: Path, what: str):
    """Hold the lock file ``path`` for the block; :class:`OutputError` at once if another process holds it, or if
    the file cannot be created or written (a stale one of another user, an immutable one, a full disk, /proc).

    ``what`` names the output in the message ("footprints out.gpkg", "training folder runs/x")."""
    path = Path(path)
    f = _locked(path, what)
    try:
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
    except OSError as exc:  # e.g. an append-only file, a full disk
        with contextlib.suppress(OSError):  # close flushes again, and fails again
            f.close()  # drops the lock
        raise _lock_error(path, exc) from None
    try:
        yield
    finally:
        try:
            path.unlink()
        except OSError:
            pass
        f.close()
