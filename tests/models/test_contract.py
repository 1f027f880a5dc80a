"""One model contract for every architecture geoseg builds (forward shape, any size divisible
by 32, save/load round trip through safetensors, TorchScript export, fp16 on CUDA)."""

import pytest
import torch

from geoseg.models.arch import build_module
from geoseg.models.scinet import DenseASPP, SciNet

ARCHS = {
    "unet-resnet18": {"name": "unet", "encoder": "resnet18", "in_channels": 3, "classes": 2},
    "scinet-resnet18": {"name": "scinet", "encoder": "resnet18", "in_channels": 3, "classes": 2},
}


@pytest.fixture(scope="module", params=sorted(ARCHS))
def arch(request):
    torch.manual_seed(0)
    return ARCHS[request.param], build_module(ARCHS[request.param]).eval()


@pytest.mark.parametrize("shape_yx", [(64, 64), (96, 160)])
def test_forward_shape_for_any_size_divisible_by_32(arch, shape_yx):
    spec, model = arch
    with torch.no_grad():
        out = model(torch.randn(2, 3, *shape_yx))
    assert out.shape == (2, spec["classes"], *shape_yx)


def test_save_load_round_trip(arch, tmp_path):
    from safetensors.torch import load_file, save_file

    spec, model = arch
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "w.safetensors"))
    again = build_module(spec).eval()
    again.load_state_dict(load_file(str(tmp_path / "w.safetensors")))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))


def test_torchscript_trace_export(arch, tmp_path):
    _, model = arch
    x = torch.randn(1, 3, 64, 64)
    traced = torch.jit.trace(model, x)
    traced.save(str(tmp_path / "m.pt"))
    loaded = torch.jit.load(str(tmp_path / "m.pt"))
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-5)


@pytest.mark.gpu
def test_fp16_on_cuda(arch):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    _, model = arch
    model = model.cuda().half()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64, device="cuda", dtype=torch.half))
    assert out.dtype == torch.half and torch.isfinite(out).all()


def test_dense_aspp_wiring():
    aspp = DenseASPP(320, mid=256, out=128, rates=(3, 6, 12, 18))
    assert aspp.out_channels == 320 + 4 * 128
    for i, (layer, rate) in enumerate(zip(aspp.layers, (3, 6, 12, 18))):
        conv1, conv3 = layer[0], layer[3]
        assert conv1.in_channels == 320 + i * 128 and conv1.out_channels == 256 and conv1.kernel_size == (1, 1)
        assert conv3.out_channels == 128 and conv3.dilation == (rate, rate) and conv3.padding == (rate, rate)
    x = torch.randn(1, 320, 8, 8)
    y = aspp.eval()(x)
    assert y.shape == (1, 832, 8, 8)
    assert torch.equal(y[:, :320], x), "the input passes through the dense concatenation unchanged"


def test_scinet_keeps_output_stride_16_and_decodes_the_h16_skip_without_upsampling():
    net = SciNet("resnet18", classes=1).eval()
    feats = net.encoder(torch.randn(1, 3, 128, 128))
    assert [f.shape[-1] for f in feats] == [128, 64, 32, 16, 8, 8], "last stage must stay at H/16"
    assert net.aspp.out_channels == 512 + 4 * 128
    first = net.decoder.blocks[0]
    assert first.conv1[0].in_channels == net.aspp.out_channels + feats[4].shape[1]
    assert [b.conv2[0].out_channels for b in net.decoder.blocks] == [256, 128, 64, 32, 16]
    with pytest.raises(RuntimeError, match="divisible by 32"):
        net(torch.randn(1, 3, 100, 100))
