"""Test-time augmentation: exact symmetry of the averaged prediction, wiring through the engine and CLI."""

import json

import numpy as np
import pytest
import rasterio
import torch
from click.testing import CliRunner

import geoseg
from geoseg.cli.main import cli
from geoseg.config import SegmentConfig
from geoseg.engine import tta
from geoseg.engine.predictor import Predictor
from geoseg.engine.segment import segment
from geoseg.errors import ConfigError
from geoseg.models.registry import get_card
from tests.conftest import SAMPLES


def _lopsided_model():
    """A real convolution whose 5x5 kernels have no symmetry: its output turns wrong if a copy is mapped back wrongly."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 5, padding=2), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 5, padding=2))


@pytest.mark.parametrize("mode", ["none", "flip", "d4"])
def test_every_transform_is_undone_by_its_inverse(mode):
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    pairs = tta.transforms(mode)
    assert len(pairs) == tta.MODES[mode] and pairs[0] == ((), False)
    images = set()
    for dims, transpose in pairs:
        y = tta.forward(x, dims, transpose)
        assert torch.equal(tta.inverse(y, dims, transpose), x)
        images.add(y.numpy().tobytes())
    assert len(images) == len(pairs), "the transforms must all differ"


def _predict(mode, tiles):
    card = get_card("default")
    return Predictor(_lopsided_model(), card, device="cpu", precision="fp32", tta=mode)(tiles)


def test_d4_prediction_is_exactly_rotation_and_mirror_equivariant():
    tiles = np.random.default_rng(1).integers(0, 255, size=(2, 3, 64, 96), dtype=np.uint8)
    base = _predict("d4", tiles)
    rot = _predict("d4", np.ascontiguousarray(np.rot90(tiles, 1, axes=(2, 3))))
    np.testing.assert_allclose(rot, np.rot90(base, 1, axes=(2, 3)), atol=1e-5)
    mirrored = _predict("d4", np.ascontiguousarray(tiles[..., ::-1]))
    np.testing.assert_allclose(mirrored, base[..., ::-1], atol=1e-5)
    plain = _predict("none", tiles)  # without TTA the same model is far from equivariant: the test can fail
    plain_rot = _predict("none", np.ascontiguousarray(np.rot90(tiles, 1, axes=(2, 3))))
    assert np.abs(plain_rot - np.rot90(plain, 1, axes=(2, 3))).max() > 1e-3


def test_flip_prediction_is_mirror_equivariant_and_keeps_odd_tile_shapes():
    tiles = np.random.default_rng(2).integers(0, 255, size=(1, 3, 50, 70), dtype=np.uint8)  # padded to 64x96 inside
    base = _predict("flip", tiles)
    assert base.shape == (1, 3, 50, 70)
    flipped = _predict("flip", np.ascontiguousarray(tiles[..., ::-1, :]))
    # reflect padding sits on the bottom/right, so flipped tiles see other padding: compare away from the pad
    np.testing.assert_allclose(flipped[..., 8:-8, :40], base[..., ::-1, :][..., 8:-8, :40], atol=1e-5)


def test_unknown_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="d4"):
        tta.check_mode("rot")
    with pytest.raises(ConfigError):
        segment(str(SAMPLES / "banepa_z20_crop_3857.tif"), None, "x.tif", SegmentConfig(tta="rot"))


def test_segment_with_flip_tta_changes_and_agrees_with_the_plain_run(tmp_path):
    src = SAMPLES / "banepa_z20_crop_3857.tif"
    for mode in ("none", "flip"):
        r = CliRunner().invoke(cli, ["segment", str(src), "--prob", str(tmp_path / f"{mode}.tif"), "--tta", mode,
                                     "--progress", "none"])
        assert r.exit_code == 0, r.output
    with rasterio.open(tmp_path / "none.tif") as a, rasterio.open(tmp_path / "flip.tif") as b:
        pa, pb = a.read(1).astype(int), b.read(1).astype(int)
    assert np.abs(pa - pb).max() > 10, "--tta flip must change the probabilities"
    assert (pa >= 128).sum() > 500
    # copies mapped back wrongly would put buildings where the plain run has none (measured here: 0.93)
    assert np.corrcoef(pa.ravel(), pb.ravel())[0, 1] > 0.85


def test_plan_time_estimate_scales_with_the_passes(tmp_path):
    src = str(SAMPLES / "banepa_z20_crop_3857.tif")
    est = {}
    for mode in ("none", "d4"):
        r = CliRunner().invoke(cli, ["plan", src, "--tta", mode, "--json"])
        assert r.exit_code == 0, r.output
        est[mode] = json.loads(r.output)["est_model_seconds"]
    assert est["none"] and est["d4"] == pytest.approx(8 * est["none"], rel=0.05)
    bad = CliRunner().invoke(cli, ["segment", src, "--prob", str(tmp_path / "p.tif"), "--tta", "rot"])
    assert bad.exit_code == 2 and not (tmp_path / "p.tif").exists()


def _pointwise_model():
    """A per-pixel model (1x1 convolutions): what it sees at a coarser scale differs only where pixels mix."""
    torch.manual_seed(3)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1))


def test_scales_are_checked_and_repeats_dropped():
    assert tta.check_scales([1, 0.5, 1.0]) == (1.0, 0.5)
    assert tta.check_scales(()) == (1.0,)
    for bad in (0, -1, float("nan"), float("inf"), 5, 0.1, "x"):
        with pytest.raises(ConfigError, match="1,0.5"):
            tta.check_scales([1, bad])
    assert tta.passes("flip", (1, 0.5)) == pytest.approx(4 * 1.25)


def test_a_coarser_pass_is_brought_back_onto_the_tile_in_register():
    x = torch.zeros(1, 3, 64, 96)
    x[..., 32:] = 1.0  # a vertical edge between columns 31 and 32, off the centre (a symmetric error would hide there)
    model = _pointwise_model()
    with torch.inference_mode():
        fine = tta.averaged(model, x, "none", (1.0,))
        coarse = tta.averaged(model, x, "none", (0.5,))
    assert coarse.shape == fine.shape == (1, 2, 64, 96)
    # away from the edge both see the same pixels: identical
    torch.testing.assert_close(coarse[..., :28], fine[..., :28])
    torch.testing.assert_close(coarse[..., 36:], fine[..., 36:])
    # at the edge the coarse pass is blurred but centred on it: halfway between the two sides at 31.5
    lo, hi = fine[0, 0, 0, 0].item(), fine[0, 0, 0, -1].item()
    assert abs(lo - hi) > 1e-3
    mid = (lo + hi) / 2
    row = coarse[0, 0, 0]
    assert min(row[31].item(), row[32].item()) < mid < max(row[31].item(), row[32].item())
    assert (row[31] - mid).abs().item() == pytest.approx((row[32] - mid).abs().item(), abs=1e-5)


def test_multi_scale_is_the_mean_of_its_scales_and_keeps_odd_tile_shapes():
    tiles = np.random.default_rng(4).integers(0, 255, size=(2, 3, 50, 70), dtype=np.uint8)
    card = get_card("default")

    def run(scales, mode="none"):
        return Predictor(_lopsided_model(), card, device="cpu", precision="fp32", tta=mode, tta_scales=scales)(tiles)

    one, half, both = run((1.0,)), run((0.5,)), run((1.0, 0.5))
    assert both.shape == one.shape == (2, 3, 50, 70)
    assert np.abs(half - one).max() > 1e-3, "the coarser pass must see something else"
    np.testing.assert_allclose(both, (one + half) / 2, atol=1e-5)
    np.testing.assert_allclose(run((1.0, 0.5), "flip"), (run((1.0,), "flip") + run((0.5,), "flip")) / 2, atol=1e-5)
    assert run((2.0,)).shape == one.shape


def test_tta_scales_through_the_cli(tmp_path):
    src = str(SAMPLES / "banepa_z20_crop_3857.tif")
    for name, extra in (("one", []), ("two", ["--tta-scales", "1,0.5"])):
        r = CliRunner().invoke(cli, ["segment", src, "--prob", str(tmp_path / f"{name}.tif"), "--progress", "none", *extra])
        assert r.exit_code == 0, r.output
    with rasterio.open(tmp_path / "one.tif") as a, rasterio.open(tmp_path / "two.tif") as b:
        pa, pb = a.read(1).astype(int), b.read(1).astype(int)
        settings = json.loads(b.tags()["settings"])
    assert settings["tta_scales"] == [1.0, 0.5]
    assert np.abs(pa - pb).max() > 10 and np.corrcoef(pa.ravel(), pb.ravel())[0, 1] > 0.85
    plans = {}
    for scales in ("1", "1,0.5", "1,2"):
        r = CliRunner().invoke(cli, ["plan", src, "--json", "--tta-scales", scales])
        assert r.exit_code == 0, r.output
        plans[scales] = json.loads(r.output)
    est = {k: v["est_model_seconds"] for k, v in plans.items()}
    assert est["1"] and est["1,0.5"] == pytest.approx(1.25 * est["1"], rel=0.05)
    assert est["1,2"] == pytest.approx(5 * est["1"], rel=0.05)
    assert geoseg.plan(src, tta_scales=[1, 0.5])["est_model_seconds"] == est["1,0.5"]  # the Python API takes them too
    # a pass at twice the size needs four times the activations
    assert plans["1,2"]["est_peak_memory_mb"] > plans["1,0.5"]["est_peak_memory_mb"] == plans["1"]["est_peak_memory_mb"]
    for bad in ("1,9", "1,x"):
        r = CliRunner().invoke(cli, ["segment", src, "--prob", str(tmp_path / "bad.tif"), "--tta-scales", bad])
        assert r.exit_code == 2 and "1,0.5" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "bad.tif").exists()
    r = CliRunner().invoke(cli, ["evaluate", src, "--truth", src, "--tta-scales", "1,0.5"])
    assert r.exit_code == 2 and "--gsd-sweep" in r.output
