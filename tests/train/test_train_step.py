"""One training step under each mixed precision, on raw tensors: no rasters, so it also runs on a lent GPU machine
without the geo wheels (scripts/gpu_r7.sh runs the gpu-marked tests of this file and of tests/models)."""

import pytest
import torch

from geoseg.models.arch import build_module
from geoseg.train.fit import amp, train_step


def _batch(device: str, n: int = 4, size: int = 64):
    """Bright squares (buildings) on darker noise, with building / border / gap targets and a full valid mask."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, size, size, generator=g) * 0.4 - 0.2
    y = torch.zeros(n, 3, size, size)
    for i in range(n):
        r, c = (int(v) for v in torch.randint(4, size - 28, (2,), generator=g))
        x[i, :, r:r + 24, c:c + 24] += 1.0
        y[i, 0, r:r + 24, c:c + 24] = 1
        y[i, 1, r:r + 24, c:c + 24] = 1
        y[i, 1, r + 2:r + 22, c + 2:c + 22] = 0  # the building's outline
    v = torch.ones(n, 1, size, size)
    return x.to(device).contiguous(memory_format=torch.channels_last), y.to(device), v.to(device)


def _losses(device: str, precision: str, steps: int, n: int = 4) -> tuple[list[float], object]:
    torch.manual_seed(0)
    model = build_module({"name": "scinet", "encoder": "resnet18", "in_channels": 3, "classes": 3})
    model = model.to(device).to(memory_format=torch.channels_last).train()
    dtype, scaler = amp(device, precision)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = _batch(device, n)
    losses = [float(train_step(model, opt, scaler, batch, [1.0, 0.5, 0.5], device, dtype)) for _ in range(steps)]
    return losses, scaler


def _assert_learns(losses: list[float]) -> None:
    assert all(torch.isfinite(torch.tensor(losses))), losses
    assert sum(losses[-3:]) / 3 < 0.9 * sum(losses[:3]) / 3, losses


def test_bf16_steps_on_the_cpu_lower_the_loss():
    losses, scaler = _losses("cpu", "bf16", 10, n=2)
    assert scaler is None
    _assert_learns(losses)


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_mixed_precision_steps_on_cuda_lower_the_loss(precision):
    """fp16 trains through a GradScaler (whose scale stays finite), bf16 without one."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    losses, scaler = _losses("cuda", precision, 30)
    assert (scaler is not None) == (precision == "fp16" or not torch.cuda.is_bf16_supported())
    if scaler is not None:
        assert 0 < scaler.get_scale() < float("inf")
    _assert_learns(losses)
