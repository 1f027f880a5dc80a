"""Temp-then-rename output helpers: outputs are whole or absent, never half-written."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from geoseg.errors import OutputError


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
                raise OutputError(f"{oname} {out} is {iname}, {what}: writing it would replace that file; "
                                  "write to another path")


def temp_path_for(path: Path) -> Path:
    return path.parent / f".{path.stem}.tmp-{os.getpid()}{path.suffix}"


@contextmanager
def atomic_output(path: Path):
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    tmp = temp_path_for(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".aux.xml")):
            if leftover.exists():
                leftover.unlink()
