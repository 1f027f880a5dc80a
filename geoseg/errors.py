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


class ModelNotFoundError(GeosegError, LookupError):
    """No model of that name or path."""


class ModelIntegrityError(GeosegError, ValueError):
    """Weights do not match the sha256 in their model card, or the card is invalid."""


class OutputError(GeosegError, OSError):
    """An output path cannot be written or has an unknown extension."""


class ConfigError(GeosegError, ValueError):
    """An option has an invalid value."""


class Cancelled(GeosegError, RuntimeError):
    """The run was cancelled; rerun the same command to resume."""


class GsdWarning(UserWarning):
    """The raster's ground resolution is outside the model's valid range."""


class BandWarning(UserWarning):
    """The raster's bands were adapted to what the model expects (e.g. 1 band replicated)."""


class LabelWarning(UserWarning):
    """Labels (training labels, evaluation truth) that look wrong for their raster, e.g. none lies on it."""


class PrecisionWarning(UserWarning):
    """The asked-for precision is emulated on this hardware (e.g. bf16 on a CPU without AVX512-BF16/AMX) and slow."""
