"""The Python API (``geoseg.segment``, ``vectorize``, ``score``, ``gsd_sweep``, ``train_model``) agrees with the CLI."""

import json

import numpy as np
import rasterio

import geoseg
from tests.conftest import scene, write_raster
from tests.train.test_fit import experiment  # noqa: F401  (the tiny training experiment fixture)


def _row_of_two_houses(tmp_path, settings=None):
    """Two 20 x 40 px houses sharing a wall that only the border band shows (1 m pixels)."""
    prob = np.zeros((2, 60, 100), np.uint8)
    prob[0, 20:40, 10:90] = 230
    prob[1, 20:40, 49:51] = 255
    path = write_raster(tmp_path / "p.tif", prob)
    with rasterio.open(path, "r+") as ds:
        ds.descriptions = ("building", "border")
        if settings is not None:
            ds.update_tags(settings=json.dumps(settings))
    return path


def test_vectorize_splits_along_the_border_band_as_the_cli_does(tmp_path):
    import geoseg.footprints.raster  # the engine imports it; it must not shadow geoseg.vectorize()

    path = _row_of_two_houses(tmp_path)
    assert len(geoseg.vectorize(path)) == 2
    assert len(geoseg.vectorize(path, split_touching=False)) == 1
    assert len(geoseg.vectorize(path, min_part_m2=1000)) == 1  # each house is 800 m2: under 1000 m2 they join up
    out = tmp_path / "b.gpkg"
    geoseg.vectorize(path, output=str(out))
    assert out.exists()


def test_vectorize_takes_the_threshold_of_the_run_that_wrote_the_raster(tmp_path):
    path = _row_of_two_houses(tmp_path, settings={"vectorize": {"threshold": 0.95}})
    assert len(geoseg.vectorize(path)) == 0  # 230/255 = 0.90 < 0.95
    assert len(geoseg.vectorize(path, threshold=0.5)) == 2  # an explicit threshold wins


def test_vectorize_takes_the_border_cut_of_the_run_that_wrote_the_raster(tmp_path):
    prob = np.zeros((2, 60, 100), np.uint8)
    prob[0, 20:40, 10:90] = 230
    prob[1, 20:40, 49:51] = 40  # a faint wall: 0.16
    path = write_raster(tmp_path / "p.tif", prob)
    with rasterio.open(path, "r+") as ds:
        ds.descriptions = ("building", "border")
    assert len(geoseg.vectorize(path)) == 1  # the default cut, 0.5, ignores it
    with rasterio.open(path, "r+") as ds:
        ds.update_tags(settings=json.dumps({"vectorize": {"threshold": 0.5, "border_cut": 0.1}}))
    assert len(geoseg.vectorize(path)) == 2  # as the run that wrote it split
    assert len(geoseg.vectorize(path, border_cut=0.5)) == 1  # an explicit cut wins


def test_segment_returns_the_footprints_it_writes(tmp_path, pixel_card):
    src = write_raster(tmp_path / "in.tif", scene(rects=[(40, 40, 90, 120), (120, 160, 170, 260)]))
    out = tmp_path / "b.gpkg"
    gdf = geoseg.segment(str(src), str(pixel_card), output=str(out))
    import geopandas as gpd

    assert len(gdf) == 2 and len(gpd.read_file(out)) == 2


def test_segment_uses_and_records_the_cards_threshold_and_border_cut(tmp_path, pixel_card_2out):
    import shutil

    cards = tmp_path / "cards"
    shutil.copytree(pixel_card_2out.parent, cards)
    card = cards / pixel_card_2out.name
    raw = json.loads(card.read_text())
    src = write_raster(tmp_path / "in.tif", scene(rects=[(40, 40, 90, 120)]))
    for cut in (None, 0.2):
        if cut is not None:
            card.write_text(json.dumps({**raw, "border_cut": cut}))
        prob = tmp_path / f"p_{cut}.tif"
        geoseg.segment(str(src), str(card), prob=str(prob))
        with rasterio.open(prob) as ds:
            written = json.loads(ds.tags()["settings"])["vectorize"]
        assert written["border_cut"] == (0.5 if cut is None else cut) and written["threshold"] == raw["threshold"]


def _houses(tmp_path):
    import geopandas as gpd
    from shapely.geometry import box

    rects = [(21, 23, 99, 98), (141, 119, 219, 221)]
    raster = write_raster(tmp_path / "in.tif", scene((240, 240), rects))
    geoms = [box(500000 + c0, 5000000 - r1, 500000 + c1, 5000000 - r0) for r0, c0, r1, c1 in rects]
    gpd.GeoDataFrame(geometry=geoms, crs=32633).to_file(tmp_path / "t.gpkg")
    return raster, tmp_path / "t.gpkg"


def test_score_and_gsd_sweep_agree_with_geoseg_evaluate(tmp_path, pixel_card):
    from click.testing import CliRunner

    from geoseg.cli.main import cli

    raster, truth = _houses(tmp_path)
    geoseg.segment(str(raster), str(pixel_card), output=str(tmp_path / "b.gpkg"))
    got = geoseg.score(str(tmp_path / "b.gpkg"), str(truth), raster=str(raster))
    r = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "b.gpkg"), "--truth", str(truth), "--raster", str(raster), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout) == json.loads(json.dumps(got))
    assert got["obj_tp"] == 2 and got["iou"] > 0.9
    rows = geoseg.gsd_sweep(str(raster), str(truth), [1, 5], str(pixel_card), tile_size=64, overlap=16)
    r = CliRunner().invoke(cli, ["evaluate", str(raster), "--truth", str(truth), "--gsd-sweep", "1,5", "-m", str(pixel_card),
                                 "--tile-size", "64", "--overlap", "16", "--json"])
    assert [x["gsd_m"] for x in rows] == [1.0, 5.0] and rows[1]["iou"] < rows[0]["iou"]
    assert [x["iou"] for x in rows] == [x["iou"] for x in json.loads(r.stdout)]


def test_train_model_trains_exports_and_refuses_a_bad_card_file_before_training(tmp_path, experiment):  # noqa: F811
    import pytest
    import tomllib

    from geoseg.errors import ConfigError

    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    cfg["train"].update(epochs=1, steps_per_epoch=2)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        geoseg.train_model(cfg, str(tmp_path / "run"), export_dir=str(tmp_path / "m"), card_extra=str(tmp_path / "bad.json"))
    assert not (tmp_path / "run").exists()
    out = geoseg.train_model(cfg, str(tmp_path / "run"), export_dir=str(tmp_path / "m"), card_extra={"gsd_m": 0.3})
    assert out["best"].is_file() and json.loads(out["card"].read_text())["gsd_m"] == 0.3
    assert callable(geoseg.score) and callable(geoseg.train_model), "submodule imports do not shadow the API"


def test_segment_and_plan_take_an_aoi(tmp_path, pixel_card):
    import geopandas as gpd
    from shapely.geometry import box

    src = write_raster(tmp_path / "in.tif", scene((200, 300), [(20, 20, 60, 60), (120, 200, 160, 260)]))
    aoi = tmp_path / "aoi.geojson"
    gpd.GeoDataFrame(geometry=[box(500000, 4999900, 500100, 5000000)], crs="EPSG:32633").to_file(aoi)
    assert len(geoseg.segment(str(src), model=str(pixel_card))) == 2
    gdf = geoseg.segment(str(src), model=str(pixel_card), aoi=str(aoi))
    assert [tuple(map(round, g.bounds)) for g in gdf.geometry] == [(500020, 4999940, 500060, 4999980)]
    desc = geoseg.plan(str(src), model=str(pixel_card), aoi=str(aoi), aoi_margin_m=0)
    assert desc["aoi_area_m2"] == 100 * 100 and desc["work_shape_yx"] == [160, 160]  # 3 tiles of 64 (overlap 16)


def test_vectorize_takes_an_aoi(tmp_path, pixel_card):
    import geopandas as gpd
    from shapely.geometry import box

    src = write_raster(tmp_path / "in.tif", scene((200, 300), [(20, 20, 60, 60), (120, 200, 160, 260)]))
    geoseg.segment(str(src), model=str(pixel_card), prob=str(tmp_path / "p.tif"))
    aoi = tmp_path / "aoi.geojson"
    gpd.GeoDataFrame(geometry=[box(500000, 4999900, 500100, 5000000)], crs="EPSG:32633").to_file(aoi)
    assert len(geoseg.vectorize(str(tmp_path / "p.tif"))) == 2
    gdf = geoseg.vectorize(str(tmp_path / "p.tif"), aoi=str(aoi), dst_crs="EPSG:4326")
    assert len(gdf) == 1 and gdf.crs.to_epsg() == 4326
    assert [tuple(map(round, g.bounds)) for g in gdf.to_crs(32633).geometry] == [(500020, 4999940, 500060, 4999980)]


def test_segment_takes_the_footprint_options_the_cli_has(tmp_path, pixel_card):
    """geoseg.segment(..., threshold=0.5) and min_area_m2=/regularize= raised TypeError: only vectorize=VectorizeConfig
    reached them."""
    import pytest

    src = write_raster(tmp_path / "in.tif", scene((100, 120), [(10, 10, 40, 60), (60, 70, 70, 80)]))
    both = geoseg.segment(str(src), str(pixel_card), min_area_m2=1.0)
    big = geoseg.segment(str(src), str(pixel_card), min_area_m2=500.0, regularize=True)
    assert len(both) == 2 and len(big) == 1 and big["reg_status"].iloc[0] in (0, 1)
    assert len(geoseg.segment(str(src), str(pixel_card), threshold=0.999)) == 0
    with pytest.raises(TypeError, match=r"unknown option\(s\) min_area; .*footprint options: .*min_area_m2"):
        geoseg.segment(str(src), str(pixel_card), min_area=25)


def test_vectorize_to_a_file_refuses_its_own_aoi_and_records_the_full_provenance(tmp_path):
    import geopandas as gpd
    import pytest
    from shapely.geometry import box

    from geoseg.errors import OutputError
    from geoseg.io.vector import read_metadata

    path = _row_of_two_houses(tmp_path, settings={"vectorize": {"threshold": 0.5}})
    with rasterio.open(path, "r+") as ds:
        ds.update_tags(model="m", model_sha256="ab" * 32, geoseg_version="0.1.0")
        bounds = ds.bounds
    aoi = tmp_path / "aoi.gpkg"
    gpd.GeoDataFrame(geometry=[box(*bounds)], crs="EPSG:32633").to_file(aoi)
    with pytest.raises(OutputError, match="is --aoi, an input"):
        geoseg.vectorize(path, output=str(aoi), aoi=str(aoi))
    assert len(gpd.read_file(aoi)) == 1, "the aoi file is untouched"
    geoseg.vectorize(path, output=str(tmp_path / "v.gpkg"), aoi=str(aoi))
    meta = read_metadata(tmp_path / "v.gpkg")
    assert meta["model"] == "m" and meta["model_sha256"] == "ab" * 32 and "vectorized_by" in meta
    assert json.loads(meta["vectorize"])["threshold"] == 0.5 and meta["aoi"] == str(aoi)


def test_gsd_sweep_takes_the_clis_ceiling_breakdown_and_iou_options(tmp_path, pixel_card):
    raster, truth = _houses(tmp_path)
    rows = geoseg.gsd_sweep(str(raster), str(truth), [4], str(pixel_card), ceiling=True, breakdown=True,
                            iou_threshold=0.99, tile_size=64, overlap=16)
    row = rows[0]
    assert {"ceiling_iou", "ceiling_obj_f1", "fp_unmatched_share", "iou_matched"} <= set(row)
    assert row["iou_threshold"] == 0.99 and row["obj_tp"] == 0 and row["ceiling_obj_f1"] == 0.0, \
        "at 4 m no outline reaches IoU 0.99, the perfect model's neither"


def test_gsd_sweep_and_score_refuse_what_the_cli_refuses(tmp_path, pixel_card):
    import math

    import pytest

    from geoseg.errors import ConfigError

    raster, truth = _houses(tmp_path)
    for gsds in ([0], [-1], [math.inf], [math.nan]):
        with pytest.raises(ConfigError, match="not a GSD"):
            geoseg.gsd_sweep(str(raster), str(truth), gsds, str(pixel_card))
    with pytest.raises(ConfigError, match="breakdown scores pixels: give a raster"):
        geoseg.score(str(truth), str(truth), breakdown=True)
    assert "iou_matched" in geoseg.score(str(truth), str(truth), raster=str(raster), breakdown=True)
