"""How model weights are stored on disk: fp16, or int8 with one scale per output channel for the
large convolution kernels ("int8 storage") and fp16 for the rest.

int8 storage halves a ResNet-18 Sci-Net (34.9 -> 17.8 MB); on held-out data its pixel IoU stayed within 0.0005
of the fp16 weights (models/README.md). It is a storage format only: the loader dequantizes to float32 and
inference runs exactly as with fp16 weights. A quantized kernel ``K`` is stored as int8 under ``K``
with its float32 scales (shape ``(out_channels,)``) under ``K + SCALE_SUFFIX``; ``K = q * scale``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

SCALE_SUFFIX = ".int8_scale"
ENCODINGS = ("fp16", "int8")
INT8_MIN_WEIGHTS = 65_536  # kernels at least this large go to int8 (98% of a ResNet-18 Sci-Net's weights)


def encode_state(state: dict[str, torch.Tensor], encoding: str = "fp16") -> dict[str, torch.Tensor]:
    """Tensors to write to a safetensors file: every float tensor as fp16, and with ``int8`` the
    convolution kernels of at least ``INT8_MIN_WEIGHTS`` weights as int8 plus per-channel scales."""
    if encoding not in ENCODINGS:
        from geoseg.errors import ConfigError

        raise ConfigError(f"unknown weights encoding {encoding!r}; use one of: {', '.join(ENCODINGS)}")
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        value = value.detach()
        if encoding == "int8" and _goes_int8(value):
            out[key], out[key + SCALE_SUFFIX] = _quantize(value.float())
        else:
            out[key] = (value.half() if value.is_floating_point() else value).contiguous()
    return out


def decode_state(stored: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """float32 weights from what :func:`encode_state` wrote (or any plain float state dict)."""
    out = {}
    for key, value in stored.items():
        if key.endswith(SCALE_SUFFIX):
            continue
        scale = stored.get(key + SCALE_SUFFIX)
        if scale is not None:
            out[key] = value.float() * scale.float().reshape(-1, *([1] * (value.ndim - 1)))
        else:
            out[key] = value.float() if value.is_floating_point() else value
    return out


def _goes_int8(value: torch.Tensor) -> bool:
    return value.is_floating_point() and value.ndim == 4 and value.numel() >= INT8_MIN_WEIGHTS


def _quantize(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel int8: ``scale = max|w| / 127`` over each output channel."""
    import torch

    scale = weight.abs().amax(dim=tuple(range(1, weight.ndim))) / 127.0
    scale = scale.clamp_min(1e-12)
    q = (weight / scale.reshape(-1, *([1] * (weight.ndim - 1)))).round().clamp(-127, 127)
    return q.to(torch.int8).contiguous(), scale.contiguous()
