"""Temp-then-rename output helpers: outputs are whole or absent, never half-written."""

from __future__ import annotations

import errno
import os
import shutil
import threading
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from geoseg.errors import GeosegError, OutputError, OutputFormatError


def check_writable_dir(path: Path) -> None:
    parent = path.resolve().parent
    if not parent.is_dir():
        raise OutputError(f"cannot write {path}: folder {parent} does not exist; create it or choose another output path")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"cannot write {path}: folder {parent} is not writable; choose another output path")


def check_output_dir(folder: Path, what: str) -> None:
    """An :class:`OutputError` unless ``folder`` is, or could be created as, a writable folder (``what`` names it in
    the message, e.g. ``"--export models/"``). Creates nothing: call it before the work."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{what} is a file, not a folder; give a folder")
    existing = next(p for p in (folder.absolute(), *folder.absolute().parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise OutputError(f"{what} cannot be created or written ({existing} is not a writable folder); choose another")


def check_not_an_input(outputs: dict[str, str | Path | None], inputs: dict[str, str | Path | None]) -> None:
    """An :class:`OutputError` when an output path names one of the inputs (keys name them in the message, e.g.
    ``{"--prob": "p.tif"}``): writing it would replace the user's data. Also two outputs on one path."""
    def same(a, b) -> bool:
        a, b = Path(a), Path(b)
        try:
            return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
        except OSError:
            return False

    items = [(k, v) for k, v in outputs.items() if v is not None]
    for i, (oname, out) in enumerate(items):
        for iname, path in [*((k, v) for k, v in inputs.items() if v is not None), *items[i + 1:]]:
            if same(out, path):
                what = "also an output" if any(iname == k for k, _ in items) else "an input"
                raise OutputFormatError(f"{oname} {out} is {iname}, {what}: writing it would replace that file; "
                                  "write to another path")


def temp_path_for(path: Path) -> Path:
    """The temporary file ``path`` is written to first (hidden, beside it, named after this process): also removes
    those a killed run left (see :func:`remove_stale_temps`)."""
    remove_stale_temps(path)
    return path.parent / f".{path.stem}.tmp-{os.getpid()}{path.suffix}"


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove the temporary files of ``path`` (``.STEM.tmp-PID...``, with their sidecars: ``.aux.xml``, a shapefile's
    ``.dbf``, a GeoPackage's journal) whose process no longer runs: a run killed outright (SIGKILL, the OOM killer, a
    power cut) cannot clean up, and its PID names them, so no later run would. Those of live processes stay."""
    path = Path(path)
    prefix = f".{path.stem}.tmp-"
    removed = []
    try:
        names = [p for p in path.parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return removed
    for p in names:
        digits = p.name[len(prefix):].split(".", 1)[0]
        if digits.isdigit() and int(digits) != os.getpid() and not process_alive(int(digits)):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


def process_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill would terminate it there: assume it runs
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # another user's process, or the platform cannot say: leave its files alone
        return True
    return True


@contextmanager
def atomic_output(path: Path):
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds (at the end of
    the enclosing :func:`deferred_commits` block, if there is one)."""
    path = Path(path)
    tmp = temp_path_for(path)

    def discard() -> None:
        for leftover in (tmp, tmp.with_name(tmp.name + ".aux.xml")):
            leftover.unlink(missing_ok=True)

    queued = False
    try:
        yield tmp
        queued = commit(lambda: os.replace(tmp, path), discard)
    finally:
        if not queued:
            discard()


_queue: list[tuple[Callable[[], None], Callable[[], None]]] | None = None  # commits waiting for deferred_commits


def commit(rename: Callable[[], None], discard: Callable[[], None]) -> bool:
    """Run ``rename`` (an output's final rename(s)) now, uninterrupted by signals, or queue it until the end of the
    enclosing :func:`deferred_commits` block. True if queued: the temporary files must then stay."""
    from geoseg.interrupts import uninterrupted

    if _queue is not None:
        _queue.append((rename, discard))
        return True
    with uninterrupted():
        rename()
    return False


@contextmanager
def deferred_commits():
    """Commit every output written in the block together, at its end, uninterrupted by signals: a run with two
    outputs (footprints and probabilities) replaces both or neither. On failure the queued ones are discarded."""
    from geoseg.interrupts import uninterrupted

    global _queue
    outer, queued = _queue, []
    _queue = queued
    try:
        yield
    except BaseException:
        for _, discard in queued:
            discard()
        raise
    finally:
        _queue = outer
    with uninterrupted():
        for i, (rename, _) in enumerate(queued):
            try:
                rename()
            except BaseException:
                for _, discard in queued[i:]:
                    discard()
                raise


# --- failed writes: one line that says why (disk full, ...) and what to do, and no raw GDAL/libtiff lines ---

_ADVICE = {errno.ENOSPC: "free space or write elsewhere", errno.EDQUOT: "free space (disk quota) or write elsewhere",
           errno.EFBIG: "the file system or a ulimit caps file sizes; write elsewhere",
           errno.EROFS: "the file system is read-only; write elsewhere",
           errno.EACCES: "check its permissions or write elsewhere", errno.EPERM: "check its permissions or write elsewhere"}
PROBE_BYTES = 1 << 16


def _errno_in_chain(exc: BaseException) -> int | None:
    """The errno of the first OSError in ``exc``'s cause/context chain that has one (rasterio's errors carry none)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and isinstance(exc.errno, int) and exc.errno:
            return exc.errno
        exc = exc.__cause__ or exc.__context__
    return None


def _probe_errno(tmp: Path | None) -> int | None:
    """Why the OS refuses to write ``tmp`` (the temporary file a failed write left): GDAL reports only "write error",
    so append a little to it and take the OS's errno (ENOSPC, EDQUOT, EFBIG, EIO, ...). None: the probe was written.
    ``tmp`` is discarded afterwards, so the probe harms nothing."""
    if tmp is None or not os.path.exists(tmp):
        return None
    try:
        with open(tmp, "ab") as f:
            f.write(b"\0" * PROBE_BYTES)
            f.flush()
    except OSError as exc:
        return exc.errno
    return None


def _gdal_message(exc: BaseException) -> str:
    """The innermost message of ``exc``'s chain (GDAL's own reason, not rasterio's "See previous exception"), one line."""
    inner, seen = exc, set()
    while (nxt := inner.__cause__ or inner.__context__) is not None and id(nxt) not in seen:
        seen.add(id(inner))
        inner = nxt
    text = " ".join(str(inner).split()) or type(inner).__name__
    return text.rstrip(".")


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def write_failure(what: str, exc: BaseException, tmp: Path | None = None, min_free: int | None = None) -> OutputError:
    """A one-line :class:`OutputError` for a failed write of ``what`` (a path, or words such as "the work folder
    X"): ``"cannot write WHAT: no space left on device; free space or write elsewhere"``.

    The reason is the OS's errno when the exception chain carries one; else the errno of a probe write to ``tmp``
    (the temporary file being written: call this before it is removed); else "no space left on device" when
    ``min_free`` is given and ``tmp``'s folder has fewer bytes free than that (for writers that free what they
    wrote on failure, such as SQLite rolling back: the probe then finds room); else GDAL's message."""
    code = _errno_in_chain(exc) or _probe_errno(tmp)
    if not code and min_free is not None and tmp is not None:
        free = _free_bytes(Path(tmp).absolute().parent)
        code = errno.ENOSPC if free is not None and free < min_free else None
    if code:
        reason = os.strerror(code)
        reason = reason[:1].lower() + reason[1:]
        return OutputError(f"cannot write {what}: {reason}; {_ADVICE.get(code, 'check the disk or write elsewhere')}")
    return OutputError(f"cannot write {what}: {_gdal_message(exc)}; check the disk or write elsewhere")


def _write_exceptions() -> tuple[type[BaseException], ...]:
    try:
        from rasterio._err import CPLE_BaseError
        from rasterio.errors import RasterioError
    except ImportError:  # pragma: no cover - rasterio is a dependency
        return (OSError,)
    return (OSError, RasterioError, CPLE_BaseError)


@contextmanager
def write_errors(what: str, tmp: Path | None = None):
    """Turn a failed write in the block (``OSError``, rasterio's and GDAL's errors) into :func:`write_failure`'s
    :class:`OutputError`. Wrap only writes: a read error is not the output's fault. ``tmp`` is the temporary
    file being written, probed for the OS's reason; removing it stays the caller's job (e.g. :func:`atomic_output`)."""
    try:
        yield
    except GeosegError:
        raise
    except _write_exceptions() as exc:
        raise write_failure(what, exc, tmp) from exc


def _loaded_libraries(stem: str) -> list[str]:
    """Paths of the shared libraries named ``stem*.so*`` mapped into this process (for libtiff: GDAL's copy, maybe
    Pillow's too); empty where ``/proc/self/maps`` does not exist (not Linux)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            paths = {line.split(None, 5)[-1].strip() for line in f if stem in line}
    except OSError:
        return []
    return sorted(p for p in paths if p.startswith("/") and os.path.basename(p).startswith(stem) and ".so" in p)


_found: dict[str, list] = {}


def _functions(stem: str, name: str, restype, argtypes) -> list:
    """C function ``name`` of each loaded library ``stem`` (looked up until found once: libraries stay loaded).
    Loading the path of a library already mapped returns that very library, not a second copy."""
    import ctypes

    if _found.get((stem, name)):
        return _found[(stem, name)]
    fns = []
    for path in _loaded_libraries(stem):
        try:
            fn = getattr(ctypes.CDLL(path), name)
        except (OSError, AttributeError):
            continue
        fn.restype, fn.argtypes = restype, argtypes
        fns.append(fn)
    _found[(stem, name)] = fns
    return fns


def _tiff_setters() -> list:
    import ctypes

    return _functions("libtiff", "TIFFSetErrorHandler", ctypes.c_void_p, [ctypes.c_void_p])


_tiff_lock = threading.Lock()
_tiff_depth = 0
_tiff_saved: list[tuple[object, int | None]] = []


@contextmanager
def quiet_libtiff():
    """Keep libtiff's own error lines (``_tiffWriteProc: No space left on device.``) off stderr for the block.

    GDAL's GeoTIFF I/O layer reports a failed ``write()`` through libtiff's process-wide error handler, whose
    default prints to the terminal directly (neither ``CPL_LOG`` nor a CPL error handler sees it); GDAL raises
    its own error as well, which geoseg turns into one line. So the handler is unset for the block and restored
    after. Best effort: where libtiff cannot be found (not Linux), nothing changes."""
    global _tiff_depth
    with _tiff_lock:
        _tiff_depth += 1
        if _tiff_depth == 1:
            try:
                _tiff_saved[:] = [(fn, fn(None)) for fn in _tiff_setters()]
            except Exception:  # noqa: BLE001 - cosmetic only: never fail a write over it
                _tiff_saved.clear()
    try:
        yield
    finally:
        with _tiff_lock:
            _tiff_depth -= 1
            if _tiff_depth == 0:
                for fn, old in _tiff_saved:
                    fn(old)
                _tiff_saved.clear()


CE_FAILURE = 3


def _cpl_error_functions():
    """``(CPLErrorReset, CPLGetLastErrorType, CPLGetLastErrorMsg)`` of the loaded GDAL, or None (not found)."""
    import ctypes

    fns = [_functions("libgdal", name, restype, [])
           for name, restype in (("CPLErrorReset", None), ("CPLGetLastErrorType", ctypes.c_int),
                                 ("CPLGetLastErrorMsg", ctypes.c_char_p))]
    return tuple(f[0] for f in fns) if all(len(f) == 1 for f in fns) else None


@contextmanager
def gdal_failures(what: str, tmp: Path):
    """Like :func:`write_errors`, and also an :class:`OutputError` when GDAL signalled a failure in the block that
    rasterio only logged (its ``close()`` does that). Yields whether GDAL's error state can be read (its C library
    was found; not outside Linux)."""
    import rasterio

    cpl = _cpl_error_functions()
    with write_errors(what, tmp), rasterio.Env():  # rasterio's error handler: no "ERROR 1: ..." lines on stderr
        if cpl is not None:
            cpl[0]()  # thread-local: reset, so that only this block's failure counts
        yield cpl is not None
        if cpl is not None and cpl[1]() >= CE_FAILURE:
            raise rasterio.errors.RasterioIOError((cpl[2]() or b"write error").decode("utf-8", "replace"))


def close_checked(dataset, what: str, tmp: Path) -> None:
    """Close ``dataset`` (a rasterio dataset open for writing ``tmp``) and raise :func:`write_failure`'s
    :class:`OutputError` if GDAL failed to write it out.

    Most of a GeoTIFF reaches the disk when it is closed (GDAL's block cache, the tile index), and rasterio's
    ``close()`` only logs a failure there: on a full disk a truncated file would be renamed into place as if
    whole. Where GDAL's error state cannot be read, the file is opened again and its last block read instead."""
    import rasterio

    with gdal_failures(what, tmp) as checked:
        dataset.close()
        if not checked:
            with rasterio.open(tmp) as ds:  # a truncated file: no directory, or blocks past its end
                h, w = ds.block_shapes[0]
                r0, c0 = (ds.height - 1) // h * h, (ds.width - 1) // w * w
                ds.read(ds.count, window=rasterio.windows.Window(c0, r0, ds.width - c0, ds.height - r0))
