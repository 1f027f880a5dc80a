"""Test-time augmentation: predict on flipped/rotated copies of a batch and average.

``flip`` uses the four flips (identity, left-right, up-down, both); ``d4`` adds their
transposes: the eight symmetries of the square (every 90-degree rotation and mirror).
Each copy's output is mapped back to the input's orientation before averaging, so
the result is exactly invariant to those symmetries of the input. Arrays are
``(N, C, Y, X)`` torch tensors; a transpose swaps Y and X, which fully convolutional
models accept as long as both are multiples of 32 (the predictor pads to that).

Scales add multi-scale inference: each scale ``s`` resizes the batch to ``s`` times its
size (0.5: half the pixels per side, i.e. the model sees twice the GSD), runs every
symmetry there and resizes the output back. All passes are averaged with equal weight.
"""

from __future__ import annotations

from typing import Literal

TTA = Literal["none", "flip", "d4"]
MODES: dict[str, int] = {"none": 1, "flip": 4, "d4": 8}  # mode -> forward passes per tile

_FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))


SCALE_RANGE = (0.125, 4.0)  # zoom factors a pass may use


def check_scales(scales) -> tuple[float, ...]:
    """Validated zoom factors: finite, in :data:`SCALE_RANGE`, repeats dropped, order kept (1.0 when empty)."""
    import math

    from geoseg.errors import ConfigError

    out: list[float] = []
    for s in scales or (1.0,):
        try:
            s = float(s)
        except (TypeError, ValueError):
            raise ConfigError(f"test-time scale {s!r} is not a number; give zoom factors such as 1,0.5") from None
        lo, hi = SCALE_RANGE
        if not (math.isfinite(s) and lo <= s <= hi):
            raise ConfigError(f"test-time scale {s:g} is outside {lo:g}-{hi:g}; give zoom factors such as 1,0.5 "
                              "(0.5: the model also sees the tile at twice the GSD)")
        if s not in out:
            out.append(s)
    return tuple(out)


def passes(mode: str, scales=(1.0,)) -> float:
    """Forward-pass cost per tile, in units of one plain pass (a pass at scale ``s`` costs ``s**2``)."""
    return MODES[check_mode(mode)] * sum(s * s for s in check_scales(scales))


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


def averaged(model, x, mode: str, scales=(1.0,)):
    """Mean of ``sigmoid(model(t(x)))`` mapped back by ``t^-1`` over the mode's symmetries ``t`` and
    the ``scales`` (float32, the shape of the model's output on ``x``)."""
    total, n = None, 0
    for s in check_scales(scales):
        for p in _at_scale(model, x, mode, s):
            total, n = (p if total is None else total + p), n + 1
    return total / n


def _at_scale(model, x, mode: str, s: float):
    """Probabilities of each symmetry of ``x`` resized by ``s``, brought back to ``x``'s size."""
    import torch
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    xs = x
    if s != 1.0:  # area-average when shrinking (as a coarser camera would), bilinear when enlarging
        size = (max(1, round(h * s)), max(1, round(w * s)))
        xs = F.interpolate(x, size=size, mode="area") if s < 1 else F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    sh, sw = xs.shape[-2:]
    ph, pw = (-sh) % 32, (-sw) % 32
    if ph or pw:
        xs = F.pad(xs, (0, pw, 0, ph), mode="reflect" if ph < sh and pw < sw else "replicate")
    for dims, transpose in transforms(mode):
        p = torch.sigmoid(inverse(model(forward(xs, dims, transpose)), dims, transpose).float())[..., :sh, :sw]
        if s != 1.0:
            p = F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False)
        yield p
