"""The Python API (``geoseg.segment``/``geoseg.vectorize``) agrees with the CLI."""

import json

import numpy as np
import rasterio

import geoseg
from tests.conftest import scene, write_raster


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
