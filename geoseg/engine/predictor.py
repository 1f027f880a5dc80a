"""Batched forward passes: uint8 tiles in, float32 probabilities out."""

from __future__ import annotations

import numpy as np

from geoseg.engine.device import resolve_device, resolve_precision, uses_channels_last
from geoseg.engine.tta import averaged, check_mode, check_scales
from geoseg.models.card import ModelCard
from geoseg.models.normalize import normalize


class Predictor:
    """Runs a model on batches of ``uint8 (N, C, Y, X)`` tiles.

    Tiles are shipped as uint8 and normalised on the device. CUDA uses autocast
    (bf16/fp16) and channels_last; CPU uses bf16 autocast where supported, else fp32, both in
    channels_last (see :func:`uses_channels_last` and docs/benchmarks.md). Tiles
    whose sides are not multiples of 32 are reflect-padded and cropped back.
    ``tta`` averages the model over flipped/rotated copies and ``tta_scales`` over resized ones
    (see :mod:`geoseg.engine.tta`). ``runtime="onnx"``: ``module`` is an
    :class:`~geoseg.engine.onnx_runtime.OnnxModule`, run on the CPU in fp32.
    """

    def __init__(self, module, card: ModelCard, device: str = "auto", precision: str = "auto", batch_size: int = 8,
                 tta: str = "none", tta_scales=(1.0,), runtime: str = "torch"):
        import torch

        from geoseg.engine.onnx_runtime import check_runtime, warn_if_slower

        check_runtime(runtime, device, precision)
        if runtime == "onnx":
            warn_if_slower(precision)
        self.runtime = runtime
        self.device = "cpu" if runtime == "onnx" else resolve_device(device)
        self.precision = "fp32" if runtime == "onnx" else resolve_precision(precision, self.device)
        self.batch_size = max(1, int(batch_size))
        self.card = card
        self.tta = check_mode(tta)
        self.tta_scales = check_scales(tta_scales)
        self.module = module.to(self.device).eval()
        self._dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]
        self.channels_last = runtime == "torch" and uses_channels_last(self.device, self.precision)
        if self.channels_last:
            self.module = self.module.to(memory_format=torch.channels_last)

    def __call__(self, tiles_u8: np.ndarray) -> np.ndarray:
        out = [self._forward(tiles_u8[i:i + self.batch_size]) for i in range(0, len(tiles_u8), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.card.outputs)) + tiles_u8.shape[2:], np.float32)

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        h, w = batch.shape[-2:]
        ph, pw = (-h) % 32, (-w) % 32
        x = torch.from_numpy(np.ascontiguousarray(batch))
        if self.device == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        x = normalize(x, self.card.normalization)
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast(self.device, dtype=self._dtype or torch.float32, enabled=self._dtype is not None):
            probs = averaged(self.module, x, self.tta, self.tta_scales)[..., :h, :w]
        return probs.cpu().contiguous().numpy()
