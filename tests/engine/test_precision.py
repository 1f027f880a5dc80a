"""bf16 autocast on CPU must not change the footprints of the shipped model (IoU vs fp32 >= 0.995)."""

import pytest

from geoseg.config import SegmentConfig
from geoseg.engine.device import cpu_has_bf16
from geoseg.engine.plan import make_plan
from geoseg.engine.predictor import Predictor
from geoseg.io.raster import WorkReader, inspect_raster
from geoseg.models.loading import load_module
from geoseg.models.registry import get_card
from tests.conftest import SAMPLES


@pytest.mark.skipif(not cpu_has_bf16(), reason="CPU without bf16 support: auto precision is fp32 anyway")
def test_bf16_matches_fp32_on_a_sample_tile():
    card = get_card("default")
    info = inspect_raster(str(SAMPLES / "banepa_z20_crop_3857.tif"))
    plan = make_plan(info, card, SegmentConfig())
    with WorkReader(info, plan.work_grid) as r:
        data, valid = r.read(plan.work_grid.full_window)
    h, w = (s - s % 32 for s in data.shape[1:])
    tile = data[None, :, :h, :w]
    module = load_module(card)
    p32 = Predictor(module, card, "cpu", "fp32")(tile)[0, 0] >= card.threshold
    p16 = Predictor(module, card, "cpu", "bf16")(tile)[0, 0] >= card.threshold
    v = valid[:h, :w]
    inter, union = (p32 & p16 & v).sum(), ((p32 | p16) & v).sum()
    assert union > 500, "the sample tile should contain buildings"
    assert inter / union >= 0.995


def test_auto_precision_follows_the_hardware():
    from geoseg.engine.device import resolve_precision

    assert resolve_precision("auto", "cpu") == ("bf16" if cpu_has_bf16() else "fp32")


def test_bf16_on_a_cpu_that_emulates_it_warns_and_auto_training_avoids_it():
    """On CPUs without AVX512-BF16/AMX, PyTorch emulates bf16 matmuls: a Sci-Net training step ran many times slower
    than fp32 on such a CPU (docs/training.md). Asking for it still works, with a warning; auto picks fp32 there."""
    import warnings

    import torch

    from geoseg.errors import PrecisionWarning
    from geoseg.train.fit import amp

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert amp("cpu", "bf16") == (torch.bfloat16, None)
    assert any(issubclass(w.category, PrecisionWarning) for w in seen) == (not cpu_has_bf16())
    dtype, scaler = amp("cpu", "auto")
    assert (dtype is torch.bfloat16) == cpu_has_bf16() and scaler is None
    assert amp("cpu", "fp32") == (None, None)


def test_the_cpu_flags_agree_with_torch_about_native_bf16():
    """``geoseg plan`` reads /proc/cpuinfo instead of importing torch; both must say the same."""
    from geoseg.engine.device import cpu_flags_bf16

    flags = cpu_flags_bf16()
    if flags is None:
        pytest.skip("no /proc/cpuinfo here")
    assert flags == cpu_has_bf16()


@pytest.mark.parametrize("native, precision, device, expected", [
    (True, "auto", "auto", 1.0), (True, "fp32", "cpu", 0.2), (True, "bf16", "cpu", 1.0),
    (False, "auto", "auto", 0.2), (False, "fp32", "cpu", 0.2), (False, "bf16", "cpu", None),
    (False, "auto", "cuda", 9.0),
])
def test_the_plan_estimate_uses_the_throughput_measured_for_this_hardware(monkeypatch, native, precision, device,
                                                                          expected):
    from types import SimpleNamespace

    from geoseg.engine import device as device_mod
    from geoseg.engine.plan import throughput

    monkeypatch.setattr(device_mod, "cpu_flags_bf16", lambda: native)  # stands in for the other kind of CPU
    card = SimpleNamespace(raw={"throughput_mps": {"cpu": 1.0, "cpu_fp32": 0.2, "cuda": 9.0}})
    assert throughput(card, SegmentConfig(precision=precision, device=device)) == expected


@pytest.mark.parametrize("precision, tolerance", [
    ("fp32", 1e-4),
    # bf16 keeps ~3 significant digits: the layouts' kernels round differently (max 0.012 seen on an AMD EPYC with
    # native bf16, 0.0 on an Intel Xeon); the mean difference stays far smaller
    pytest.param("bf16", 3e-2, marks=pytest.mark.skipif(not cpu_has_bf16(), reason="emulated bf16 stays contiguous")),
])
def test_cpu_runs_channels_last_and_matches_a_contiguous_forward(precision, tolerance):
    import copy

    import numpy as np
    import torch

    from geoseg.models.normalize import normalize

    card = get_card("default")
    module = load_module(card)
    plain = copy.deepcopy(module).eval()
    tiles = np.random.default_rng(0).integers(0, 256, (2, 3, 96, 160), dtype=np.uint8)
    predictor = Predictor(module, card, "cpu", precision)
    conv = next(p for p in predictor.module.parameters() if p.dim() == 4 and p.shape[-1] > 1)
    assert predictor.channels_last
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    out = predictor(tiles)
    assert out.flags.c_contiguous and out.shape == (2, len(card.outputs), 96, 160)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        ref = torch.sigmoid(plain(normalize(torch.from_numpy(tiles), card.normalization)).float()).numpy()
    assert np.abs(out - ref).max() < tolerance and np.abs(out - ref).mean() < tolerance / 10


@pytest.mark.parametrize("device, precision, native, expected", [
    ("cuda", "bf16", False, True), ("cuda", "fp16", False, True), ("cpu", "fp32", False, True),
    ("cpu", "bf16", True, True), ("cpu", "bf16", False, False),
])
def test_channels_last_on_cuda_fp32_and_native_bf16_only(monkeypatch, device, precision, native, expected):
    import geoseg.engine.device as device_mod
    from geoseg.engine.device import uses_channels_last

    monkeypatch.setattr(device_mod, "cpu_has_bf16", lambda: native)  # stands in for the other kind of CPU
    assert uses_channels_last(device, precision) is expected
