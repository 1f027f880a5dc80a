"""Test-time augmentation: predict on flipped/rotated copies of a batch and average.

``flip`` uses the four flips (identity, left-right, up-down, both); ``d4`` adds their
transposes: the eight symmetries of the square (every 90-degree rotation and mirror).
Each copy's output is mapped back to the input's orientation before averaging, so
the result is exactly invariant to those symmetries of the input. Arrays are
``(N, C, Y, X)`` torch tensors; a transpose swaps Y and X, which fully convolutional
models accept as long as both are multiples of 32 (the predictor pads to that).
"""

from __future__ import annotations

from typing import Literal

TTA = Literal["none", "flip", "d4"]
MODES: dict[str, int] = {"none": 1, "flip": 4, "d4": 8}  # mode -> forward passes per tile

_FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))


def check_mode(mode: str) -> str:
    from geoseg.errors import ConfigError

    if mode not in MODES:
        raise ConfigError(f"unknown test-time augmentation {mode!r}; use one of: {', '.join(MODES)}")
    return mode


def transforms(mode: str) -> list[tuple[tuple[int, ...], bool]]:
    """``(flip dims, transpose first)`` pairs for a mode, identity first."""
    pairs = [(dims, False) for dims in _FLIPS]
    if check_mode(mode) == "d4":
        pairs += [(dims, True) for dims in _FLIPS]
    return pairs[:MODES[mode]]


def forward(x, dims: tuple[int, ...], transpose: bool):
    """Apply one symmetry to an ``(N, C, Y, X)`` tensor: transpose Y/X (if asked), then flip ``dims``."""
    if transpose:
        x = x.transpose(-2, -1)
    return x.flip(dims) if dims else x


def inverse(y, dims: tuple[int, ...], transpose: bool):
    """Undo :func:`forward` on a model output of the same layout."""
    if dims:
        y = y.flip(dims)
    return y.transpose(-2, -1) if transpose else y


def averaged(model, x, mode: str):
    """Mean of ``sigmoid(model(t(x)))`` mapped back by ``t^-1`` over the mode's symmetries ``t`` (float32)."""
    import torch

    total = None
    pairs = transforms(mode)
    for dims, transpose in pairs:
        p = torch.sigmoid(inverse(model(forward(x, dims, transpose)), dims, transpose).float())
        total = p if total is None else total + p
    return total / len(pairs)
