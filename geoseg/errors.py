"""The geoseg exception tree.

Every error geoseg raises on purpose derives from :class:`GeosegError`. Leaf
classes also derive from the matching builtin so callers may catch either.
Messages are one line and say what to do next; the CLI prints them as-is and
exits with status 2.
"""

from __future__ import annotations


class GeosegError(Exception):
    """Root of all geoseg errors."""


class InputError(GeosegError, ValueError):
    """The input raster cannot be used as given."""


class RasterReadError(GeosegError, OSError):
    """A raster is missing, unreadable, corrupt or truncated."""


class InputNotFoundError(GeosegError, FileNotFoundError):
    """An input file (a vector file, an aoi, a model card given by path) does not exist."""


class RasterNotFoundError(RasterReadError, InputNotFoundError):
    """An input raster does not exist (a :class:`RasterReadError` and a ``FileNotFoundError``)."""


class VectorNotFoundError(InputError, InputNotFoundError):
    """A vector input (labels, truth, an aoi) does not exist (an :class:`InputError` and a ``FileNotFoundError``)."""


class ModelNotFoundError(GeosegError, LookupError):
    """No model of that name or path."""


class ModelCardNotFoundError(ModelNotFoundError, InputNotFoundError):
    """A model card given by path does not exist (a :class:`ModelNotFoundError` and a ``FileNotFoundError``)."""


class ModelIntegrityError(GeosegError, ValueError):
    """Weights do not match the sha256 in their model card, or the card is invalid."""


class OutputError(GeosegError, OSError):
    """An output path cannot be written or has an unknown extension."""


class OutputFormatError(OutputError, ValueError):
    """An output path geoseg will not write: an unknown extension, or one of the run's own inputs."""


class ConfigError(GeosegError, ValueError):
    """An option has an invalid value."""


class Cancelled(GeosegError, RuntimeError):
    """The run was cancelled (by a progress reporter); :func:`resume_of` says what a rerun reuses."""


def set_resume(exc: BaseException, what: str) -> None:
    """Record on an interruption (:class:`Cancelled`, ``KeyboardInterrupt``, a termination) what a rerun of the
    same command picks up, as a clause: ``"rerun the same command to resume from 3 of 8 rows of tiles"``, or
    ``"nothing was kept: ..."``. The CLI prints it after "interrupted"/"terminated"; a :class:`Cancelled`
    carries it in its message too."""
    exc.geoseg_resume = what  # an outer caller (a sweep around a run) knows more: its clause replaces the inner one
    if isinstance(exc, Cancelled) and exc.args:
        base = exc.__dict__.setdefault("geoseg_message", exc.args[0])
        exc.args = (f"{base}; {what}", *exc.args[1:])


def resume_of(exc: BaseException) -> str | None:
    """What :func:`set_resume` recorded on ``exc`` (None: the raiser said nothing)."""
    return getattr(exc, "geoseg_resume", None)


class GsdWarning(UserWarning):
    """The raster's ground resolution is outside the model's valid range."""


class BandWarning(UserWarning):
    """The raster's bands were adapted to what the model expects (e.g. 1 band replicated)."""


class InputWarning(UserWarning):
    """The input raster looks unusable in part, e.g. a sample of it found no valid pixel."""


class LabelWarning(UserWarning):
    """Labels (training labels, evaluation truth) that look wrong for their raster, e.g. none lies on it."""


class ResumeWarning(UserWarning):
    """Part of an earlier run's saved state could not be read; that part is redone."""


class OutputWarning(UserWarning):
    """An output was written differently from what was asked, because its format cannot hold it (e.g. a CRS)."""


class PrecisionWarning(UserWarning):
    """The asked-for precision is emulated on this hardware (e.g. bf16 on a CPU without AVX512-BF16/AMX) and slow."""
