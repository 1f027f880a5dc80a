"""Input normalisation, applied on the model's device to uint8 batches."""

from __future__ import annotations

from typing import Any

DEFAULT_NORMALIZATION = {"mean": [127.5, 127.5, 127.5], "std": [127.5, 127.5, 127.5]}


def default_normalization(n_bands: int = 3) -> dict[str, list[float]]:
    """0-255 mapped to -1..1 on each of ``n_bands`` bands (the default when a config sets none)."""
    return {"mean": [127.5] * n_bands, "std": [127.5] * n_bands}


def normalize(batch_u8, norm: dict[str, Any], dtype=None):
    """``(N, C, Y, X)`` uint8 tensor -> float tensor ``(x - mean) / std`` (mean/std in 0-255 units)."""
    import torch

    dtype = dtype or torch.float32
    c = batch_u8.shape[1]
    mean = torch.tensor(norm["mean"][:c], dtype=torch.float32, device=batch_u8.device).view(1, c, 1, 1)
    std = torch.tensor(norm["std"][:c], dtype=torch.float32, device=batch_u8.device).view(1, c, 1, 1)
    return ((batch_u8.float() - mean) / std).to(dtype)
