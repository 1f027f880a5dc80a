"""``--runtime onnx``: the same engine with ONNX Runtime doing the forward pass (geoseg.engine.onnx_runtime).

The per-pixel reference model is exported for real (torch.onnx) into a cache folder under tmp_path and run by
ONNX Runtime; its probabilities and footprints must equal the PyTorch run's. Skips without the onnx extra.
"""

import json
import sys

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from geoseg.config import SegmentConfig, VectorizeConfig
from geoseg.engine.segment import segment
from geoseg.errors import ConfigError
from tests.conftest import SAMPLES, scene, write_raster

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

RECTS = [(30, 30, 90, 100), (120, 150, 140, 170), (20, 200, 60, 280)]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("GEOSEG_CACHE_DIR", str(folder))
    return folder


def cfg(card, **kw):
    return SegmentConfig(model=str(card), vectorize=VectorizeConfig(min_area_m2=10, split_touching=False), **kw)


def run(tmp_path, card, name, **kw):
    src = tmp_path / "in.tif"
    if not src.exists():
        write_raster(src, scene((200, 300), RECTS, seed=3))
    res = segment(str(src), tmp_path / f"{name}.gpkg", tmp_path / f"{name}.tif", cfg(card, **kw))
    with rasterio.open(tmp_path / f"{name}.tif") as ds:
        return res.footprints, ds.read(), ds.tags()


def test_onnx_runtime_gives_the_torch_runs_outputs(tmp_path, pixel_card_2out, cache):
    fp_t, prob_t, _ = run(tmp_path, pixel_card_2out, "torch")
    fp_o, prob_o, tags = run(tmp_path, pixel_card_2out, "onnx", runtime="onnx", tta="flip")
    exported = list((cache / "onnx").glob("pixel-test-2-*.onnx"))
    assert len(exported) == 1, "the model is exported once into the cache"
    assert np.abs(prob_t.astype(int) - prob_o.astype(int)).max() <= 1  # uint8 probabilities, rounding only
    assert len(fp_t) == len(fp_o) == len(RECTS)
    assert fp_t.union_all().symmetric_difference(fp_o.union_all()).area < 1e-6 * fp_t.union_all().area
    assert json.loads(tags["settings"])["runtime"] == "onnx"


def test_the_cached_export_is_reused_and_a_damaged_one_replaced(tmp_path, pixel_card, cache):
    from geoseg.engine.onnx_runtime import onnx_module
    from geoseg.models.registry import get_card

    card = get_card(str(pixel_card))
    path = onnx_module(card, threads=1).path
    stamp = path.stat().st_mtime_ns
    assert onnx_module(card, threads=1).path == path and path.stat().st_mtime_ns == stamp  # not exported again
    path.write_bytes(b"not an onnx file")
    module = onnx_module(card, threads=1)
    assert path.stat().st_size > 100, "a damaged cached file is exported again"
    import torch

    x = torch.full((1, 3, 32, 32), 0.5)
    assert torch.allclose(module(x), torch.full((1, 1, 32, 32), 8.0 * 0.5), atol=1e-3)  # logit = gain * mean


@pytest.mark.parametrize("kw, words", [({"device": "cuda"}, "runs on the CPU"),
                                       ({"precision": "bf16"}, "runs in fp32"),
                                       ({"precision": "fp16"}, "runs in fp32")])
def test_what_onnx_runtime_cannot_do_is_a_config_error_before_any_work(tmp_path, pixel_card, cache, kw, words):
    with pytest.raises(ConfigError, match=words):
        run(tmp_path, pixel_card, "bad", runtime="onnx", **kw)
    assert not (tmp_path / "bad.gpkg").exists() and not (cache / "onnx").exists()


@pytest.mark.parametrize("native", [True, False])
def test_onnx_on_a_cpu_with_native_bf16_warns_that_torch_is_faster(pixel_card, cache, monkeypatch, native):
    """The CPU's bf16 support cannot be switched here, so the probe is replaced by each answer in turn."""
    import warnings

    from geoseg.engine import device
    from geoseg.engine.onnx_runtime import onnx_module
    from geoseg.engine.predictor import Predictor
    from geoseg.errors import PrecisionWarning
    from geoseg.models.registry import get_card

    card = get_card(str(pixel_card))
    module = onnx_module(card, threads=1)
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: native)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        p = Predictor(module, card, runtime="onnx")
    told = [str(w.message) for w in seen if issubclass(w.category, PrecisionWarning)]
    assert (len(told) == 1 and "--runtime torch" in told[0]) if native else seen == []
    assert (p.device, p.precision, p.channels_last) == ("cpu", "fp32", False)


def test_an_unknown_runtime_names_the_valid_ones():
    with pytest.raises(ConfigError, match="torch.*onnx"):
        SegmentConfig(runtime="tensorrt")


def test_without_onnxruntime_the_error_says_what_to_install(tmp_path, pixel_card, cache, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the extra were not installed: import fails
    with pytest.raises(ConfigError, match=r"pip install 'geoseg\[onnx\]'"):
        run(tmp_path, pixel_card, "none", runtime="onnx")


def test_cli_runtime_onnx_and_its_one_line_error(tmp_path, pixel_card, cache):
    from geoseg.cli.main import cli

    src = write_raster(tmp_path / "in.tif", scene((200, 300), RECTS, seed=3))
    out = tmp_path / "b.gpkg"
    res = CliRunner().invoke(cli, ["segment", str(src), "-o", str(out), "-m", str(pixel_card), "--runtime", "onnx",
                                   "--min-area", "10", "--progress", "none"])
    assert res.exit_code == 0, res.output
    assert "3 buildings" in res.output and out.exists()
    res = CliRunner().invoke(cli, ["segment", str(src), "-o", str(tmp_path / "c.gpkg"), "-m", str(pixel_card),
                                   "--runtime", "onnx", "--precision", "bf16", "--progress", "none"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "--runtime onnx runs in fp32" in res.output and not (tmp_path / "c.gpkg").exists()


def test_an_unwritable_cache_folder_is_a_one_line_error(tmp_path, pixel_card, monkeypatch):
    from geoseg.cli.main import cli

    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should go")
    monkeypatch.setenv("GEOSEG_CACHE_DIR", str(blocker / "cache"))
    src = write_raster(tmp_path / "in.tif", scene((200, 300), RECTS, seed=3))
    res = CliRunner().invoke(cli, ["segment", str(src), "-o", str(tmp_path / "b.gpkg"), "-m", str(pixel_card),
                                   "--runtime", "onnx", "--progress", "none"])
    assert res.exit_code == 2 and "GEOSEG_CACHE_DIR" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "b.gpkg").exists()


def test_a_gsd_sweep_with_onnx_runtime_scores_as_with_torch(tmp_path, pixel_card, cache):
    import geopandas as gpd
    from affine import Affine
    from shapely.geometry import box

    from geoseg.cli.main import cli

    t = Affine(1.0, 0, 500000.0, 0, -1.0, 5000000.0)  # write_raster's default grid (UTM 33N, 1 m)
    src = write_raster(tmp_path / "in.tif", scene((200, 300), RECTS, seed=3), transform=t)
    truth = tmp_path / "truth.geojson"
    boxes = [box(*(t @ (c0, r1)), *(t @ (c1, r0))) for r0, c0, r1, c1 in RECTS]
    gpd.GeoDataFrame(geometry=boxes, crs="EPSG:32633").to_file(truth)
    rows = {}
    for runtime in ("torch", "onnx"):
        res = CliRunner().invoke(cli, ["evaluate", str(src), "--truth", str(truth), "--gsd-sweep", "1,2", "-m",
                                       str(pixel_card), "--json", "--runtime", runtime, "--progress", "none"])
        assert res.exit_code == 0, res.output
        rows[runtime] = json.loads(res.stdout)
    assert [r["gsd_m"] for r in rows["onnx"]] == [1.0, 2.0] and rows["onnx"][0]["iou"] > 0.9
    for a, b in zip(rows["torch"], rows["onnx"], strict=True):
        assert abs(a["iou"] - b["iou"]) < 1e-3 and a["n_pred"] == b["n_pred"]
    assert list((cache / "onnx").glob("*.onnx")), "the sweep ran through ONNX Runtime"
    res = CliRunner().invoke(cli, ["evaluate", str(src), "--truth", str(truth), "--runtime", "onnx"])
    assert res.exit_code == 2 and "--gsd-sweep runs only" in res.output


@pytest.mark.slow
def test_the_default_model_through_onnx_runtime_matches_torch_on_the_sample_tile(tmp_path, cache):
    src = SAMPLES / "banepa_z20_crop_3857.tif"
    a = segment(str(src), tmp_path / "t.gpkg", None, SegmentConfig()).footprints
    b = segment(str(src), tmp_path / "o.gpkg", None, SegmentConfig(runtime="onnx")).footprints
    assert len(a) > 10
    inter = a.union_all().intersection(b.union_all()).area
    assert inter / a.union_all().union(b.union_all()).area >= 0.995
