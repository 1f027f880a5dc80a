"""`geoseg evaluate` on the edge cases an audit found: prediction rasters with nodata, empty inputs, multipart
predictions, a match at exactly the IoU threshold, CRS-less files and other raster formats."""

from __future__ import annotations

import json
import warnings

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from click.testing import CliRunner
from shapely.geometry import MultiPolygon, Polygon, box

from geoseg.cli.main import cli
from geoseg.errors import InputWarning, LabelWarning
from geoseg.evaluate.run import evaluate, is_raster_path
from tests.conftest import FIJI, scene, write_raster

X0, Y0 = 500000, 5000000
RECTS = [(10, 10, 30, 30), (10, 50, 30, 70), (50, 10, 70, 40)]


def b(r0, c0, r1, c1):
    return box(X0 + c0, Y0 - r1, X0 + c1, Y0 - r0)


def _truth(tmp_path, name="t.gpkg", geoms=None, crs=32633):
    gpd.GeoDataFrame(geometry=[b(*r) for r in RECTS] if geoms is None else geoms, crs=crs).to_file(tmp_path / name)
    return str(tmp_path / name)


def _mask_missing_one(tmp_path, name, **kwargs):
    """A 0/255 building mask that finds the first two buildings, misses the third and invents one."""
    m = np.zeros((100, 100), np.uint8)
    for r0, c0, r1, c1 in RECTS[:2]:
        m[r0:r1, c0:c1] = 255
    m[80:90, 80:90] = 255
    return str(write_raster(tmp_path / name, m, **kwargs))


def test_a_mask_whose_nodata_means_no_building_still_counts_the_buildings_it_misses(tmp_path):
    """gdal_rasterize -a_nodata 0 and QGIS write such masks: 0 there is a score, not a hole in the valid area."""
    truth = _truth(tmp_path)
    plain = evaluate(_mask_missing_one(tmp_path, "plain.tif"), truth)
    with pytest.warns(InputWarning, match="declares nodata 0.*gdal_edit.py -unsetnodata"):
        nd0 = evaluate(_mask_missing_one(tmp_path, "nd0.tif", nodata=0), truth)
    assert nd0["recall"] < 1 and nd0["n_truth"] == 3 and nd0["obj_fn"] == 1 and nd0["px_fn"] == 600
    assert {k: nd0[k] for k in ("iou", "px_tp", "px_fp", "px_fn", "obj_tp", "obj_fp")} == \
        {k: plain[k] for k in ("iou", "px_tp", "px_fp", "px_fn", "obj_tp", "obj_fp")}
    r = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "nd0.tif"), "--truth", truth, "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["n_truth"] == 3, r.output
    assert "geoseg: warning:" in r.stderr and "-unsetnodata" in r.stderr


def test_a_prediction_masks_own_mask_still_sets_its_valid_area(tmp_path):
    """With an internal mask the nodata value plays no part: what the mask hides does not count, and no warning."""
    truth = _truth(tmp_path)
    valid = np.ones((100, 100), bool)
    valid[45:, :] = False  # hides the missed building
    pred = _mask_missing_one(tmp_path, "masked.tif", nodata=0, mask=valid)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        s = evaluate(pred, truth)
    assert s["n_truth"] == 2 and s["recall"] == 1.0 and s["px_fp"] == 0


def test_a_probability_raster_in_another_gdal_format_is_scored(tmp_path):
    truth = _truth(tmp_path)
    m = np.zeros((100, 100), np.uint8)
    for r0, c0, r1, c1 in RECTS:
        m[r0:r1, c0:c1] = 230
    import rasterio

    pred = str(tmp_path / "p.img")  # ERDAS Imagine
    with rasterio.open(pred, "w", driver="HFA", width=100, height=100, count=1, dtype="uint8", crs="EPSG:32633",
                       transform=Affine(1, 0, X0, 0, -1, Y0)) as ds:
        ds.write(m, 1)
    assert is_raster_path(pred) and is_raster_path("x.JP2") and not is_raster_path("x.gpkg")
    s = evaluate(pred, truth)
    assert s["iou"] == 1.0 and s["obj_tp"] == 3 and s["threshold"] == 0.5


def test_nothing_to_find_and_nothing_found_scores_one_on_every_count(tmp_path):
    raster = str(write_raster(tmp_path / "r.tif", scene((100, 100))))
    empty = _truth(tmp_path, "empty.gpkg", [])
    for kwargs in ({"raster": raster}, {}):
        with pytest.warns(LabelWarning):  # there is nothing to find
            s = evaluate(empty, empty, **kwargs)
        assert [s[k] for k in ("iou", "precision", "recall", "f1")] == [1.0] * 4, kwargs
        assert s["obj_f1"] == 1.0 and s["f1"] == pytest.approx(2 * s["iou"] / (1 + s["iou"]))


def test_the_empty_truth_warning_without_a_raster_does_not_talk_of_a_raster(tmp_path):
    empty = _truth(tmp_path, "empty.gpkg", [])
    with pytest.warns(LabelWarning, match="holds no polygon") as rec:
        evaluate(_truth(tmp_path), empty)
    assert "raster" not in str(rec[0].message)


def test_multipart_predictions_warn_as_multipart_truth_does_but_a_repaired_outline_does_not(tmp_path):
    raster = str(write_raster(tmp_path / "r.tif", scene((100, 100))))
    truth = _truth(tmp_path)
    multi = _truth(tmp_path, "multi.gpkg", [MultiPolygon([b(*r) for r in RECTS])])
    with pytest.warns(LabelWarning, match="1 of the 1 features of .*multi.gpkg hold several polygons"):
        s = evaluate(multi, truth, raster=raster)
    assert s["iou"] == 1.0 and s["obj_tp"] == 0
    bowtie = Polygon([(X0 + 80, Y0 - 80), (X0 + 95, Y0 - 95), (X0 + 95, Y0 - 80), (X0 + 80, Y0 - 95)])
    bt = _truth(tmp_path, "bowtie.gpkg", [*(b(*r) for r in RECTS), bowtie])  # repaired into two triangles
    with warnings.catch_warnings():
        warnings.simplefilter("error", LabelWarning)
        assert evaluate(bt, bt, raster=raster)["obj_tp"] == 4


def test_a_match_at_exactly_the_iou_threshold_survives_a_crs_round_trip(tmp_path):
    """One building predicted as two halves (IoU 0.5 each): one match, whichever CRS the truth is stored in."""
    import shapely

    one = b(10, 10, 30, 30)
    halves = _truth(tmp_path, "halves.gpkg", [b(10, 10, 30, 20), b(10, 20, 30, 30)])
    gpd.GeoDataFrame(geometry=[one], crs=32633).to_crs(4326).to_file(tmp_path / "one.geojson")
    back = gpd.read_file(tmp_path / "one.geojson").to_crs(32633).geometry.iloc[0]
    left = b(10, 10, 30, 20)
    assert shapely.area(left.intersection(back)) / shapely.area(left.union(back)) < 0.5, "the round trip shrinks it"
    for truth in (_truth(tmp_path, "one.gpkg", [one]), str(tmp_path / "one.geojson")):
        s = evaluate(halves, truth)
        assert (s["obj_tp"], s["obj_fp"], s["iou_threshold"]) == (1, 1, 0.5), truth


def test_a_crs_less_prediction_read_around_a_raster_says_it_has_no_crs(tmp_path):
    raster = str(write_raster(tmp_path / "r.tif", scene((100, 100))))
    truth = _truth(tmp_path)
    gpd.GeoDataFrame(geometry=[b(*RECTS[0])]).to_file(tmp_path / "nocrs.gpkg")
    for args in (["--raster", raster], []):
        r = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "nocrs.gpkg"), "--truth", truth, *args])
        assert r.exit_code == 2 and "nocrs.gpkg has no CRS; set one" in r.output and "Traceback" not in r.output


def test_evaluate_records_the_match_iou_it_used(tmp_path):
    truth = _truth(tmp_path)
    shifted = _truth(tmp_path, "shifted.gpkg", [b(r0, c0 + 5, r1, c1 + 5) for r0, c0, r1, c1 in RECTS])
    raster = str(write_raster(tmp_path / "r.tif", scene((100, 100)), transform=Affine(1, 0, X0, 0, -1, Y0)))
    loose, strict = evaluate(shifted, truth, raster=raster), evaluate(shifted, truth, raster=raster, iou_threshold=0.7)
    assert (loose["iou_threshold"], loose["obj_tp"]) == (0.5, 3)
    assert (strict["iou_threshold"], strict["obj_tp"]) == (0.7, 1)


def test_truth_and_aoi_stored_in_minus_180_to_180_score_on_a_raster_past_180(tmp_path):
    """OSM truth (longitudes in [-180, 180]) over a raster written past 180 (as gdalwarp writes Fiji): the truth east
    of 180 was 360 degrees away from the raster and scored as missing."""
    t = FIJI
    write_raster(tmp_path / "fiji.tif", scene((300, 300)), crs="EPSG:4326", transform=t)

    def geo(r0, c0, r1, c1, shift=0.0):
        (x0, y0), (x1, y1) = t @ (c0, r0), t @ (c1, r1)
        return box(x0 + shift, y1, x1 + shift, y0)

    rects = [(20, 40, 60, 110), (100, 200, 160, 260), (200, 220, 260, 290)]  # west of 180, then two east of it
    past = [geo(*r) for r in rects]
    signed = [geo(*r, shift=-360.0 if r[1] >= 150 else 0.0) for r in rects]
    gpd.GeoDataFrame(geometry=past, crs=4326).to_file(tmp_path / "pred.gpkg")
    gpd.GeoDataFrame(geometry=signed, crs=4326).to_file(tmp_path / "truth.geojson")
    gpd.GeoDataFrame(geometry=[box(-180.0, -16.504, -179.998, -16.499)], crs=4326).to_file(tmp_path / "east.geojson")
    raster = str(tmp_path / "fiji.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("error", LabelWarning)  # "no polygon of the truth lies on the raster" was the symptom
        whole = evaluate(str(tmp_path / "pred.gpkg"), str(tmp_path / "truth.geojson"), raster=raster)
        east = evaluate(str(tmp_path / "pred.gpkg"), str(tmp_path / "truth.geojson"), raster=raster,
                        aoi=str(tmp_path / "east.geojson"))
    assert whole["iou"] == pytest.approx(1.0) and whole["obj_tp"] == 3 and whole["obj_fp"] == 0
    assert east["iou"] == pytest.approx(1.0) and east["obj_tp"] == 2 and east["obj_fn"] == 0
