"""Device and precision choice (torch imported lazily)."""

from __future__ import annotations

import warnings

from geoseg.errors import ConfigError, PrecisionWarning

SLOW_BF16 = ("this CPU has no native bf16 (AVX512-BF16 or AMX), so bf16 autocast is emulated and many times slower "
             "than fp32; use precision auto or fp32")


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is available; use --device cpu or auto")
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {device!r}; use auto, cpu or cuda")
    return device


def cpu_flags_bf16() -> bool | None:
    """Native bf16 from the CPU flags, without importing torch (Linux ``/proc/cpuinfo``; None where unknown)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:
        pass
    return None


def cpu_has_bf16() -> bool:
    import torch

    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool((probe and probe()) or (amx and amx()))


def resolve_precision(precision: str, device: str) -> str:
    """``auto``: bf16 autocast on CPUs with native bf16 and on CUDA GPUs that have it, fp16 on other GPUs, else
    fp32. An explicit bf16 on a CPU that would emulate it is honoured with a :class:`PrecisionWarning`."""
    import torch

    if precision == "auto":
        if device == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_has_bf16() else "fp32"
    if precision == "fp16" and device == "cpu":
        raise ConfigError("--precision fp16 is for CUDA; on CPU use bf16 or fp32")
    if precision not in ("fp32", "bf16", "fp16"):
        raise ConfigError(f"unknown precision {precision!r}; use auto, fp32, bf16 or fp16")
    if precision == "bf16" and device == "cpu" and not cpu_has_bf16():
        warnings.warn(SLOW_BF16, PrecisionWarning, stacklevel=2)
    return precision


def uses_channels_last(device: str, precision: str) -> bool:
    """Whether a forward pass runs in channels_last memory format: on CUDA, in fp32, and in bf16 on a CPU with
    native bf16, where it measured 2.4x faster than contiguous (Sci-Net-R18, docs/benchmarks.md). Emulated bf16
    on a CPU without it stays contiguous, as measured before."""
    return device == "cuda" or precision == "fp32" or (precision == "bf16" and cpu_has_bf16())
