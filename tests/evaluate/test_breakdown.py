"""The error breakdown on hand-made cases: a missed building, a false alarm, an outline shifted by two rows."""

import json

import geopandas as gpd
import numpy as np
import pytest
from click.testing import CliRunner

from geoseg.cli.main import cli
from geoseg.evaluate.breakdown import unmatched
from geoseg.evaluate.run import evaluate
from tests.conftest import scene, write_raster
from tests.evaluate.test_metrics import TRUTH, b


def test_unmatched_needs_an_overlap_with_area():
    a = [b(0, 0, 10, 10), b(0, 10, 10, 20), b(20, 20, 30, 30), b(25, 25, 35, 35)]
    others = [b(0, 0, 10, 10), b(30, 30, 40, 40)]
    # the second only shares an edge with the first of ``others``; the fourth overlaps the second of them
    assert unmatched(a, others).tolist() == [False, True, True, False]
    assert unmatched(a, []).all() and unmatched([], others).shape == (0,)


@pytest.fixture
def case(tmp_path):
    mask = np.ones((100, 100), bool)
    mask[:, 80:] = False
    raster = write_raster(tmp_path / "r.tif", scene((100, 100)), mask=mask)
    gpd.GeoDataFrame(geometry=TRUTH, crs=32633).to_file(tmp_path / "t.gpkg")
    # TRUTH[0] exact, TRUTH[1] shifted down two rows, TRUTH[2] missed, one false alarm of 10 x 10 px
    pred = [TRUTH[0], b(12, 50, 32, 70), b(80, 10, 90, 20)]
    gpd.GeoDataFrame(geometry=pred, crs=32633).to_crs(4326).to_file(tmp_path / "p.geojson")
    return str(raster), str(tmp_path / "t.gpkg"), str(tmp_path / "p.geojson")


def test_breakdown_splits_whole_building_errors_from_outline_errors(case):
    raster, truth, pred = case
    s = evaluate(pred, truth, raster=raster, breakdown=True)
    assert (s["px_fp"], s["px_fn"]) == (40 + 100, 40 + 600)
    assert s["fp_unmatched_share"] == pytest.approx(100 / 140), "the false alarm's 100 px"
    assert s["fn_unmatched_share"] == pytest.approx(600 / 640), "the missed building's 600 px"
    assert s["iou_matched"] == pytest.approx(760 / 840), "only the two-row shift is left"
    assert (s["n_pred_unmatched"], s["n_truth_unmatched"]) == (1, 1)
    assert "iou_matched" not in evaluate(pred, truth, raster=raster), "off unless asked for"


def test_breakdown_of_a_perfect_prediction(case):
    raster, truth, _ = case
    s = evaluate(truth, truth, raster=raster, breakdown=True)
    assert s["iou_matched"] == 1.0 and s["fp_unmatched_share"] == 0.0 and s["n_truth_unmatched"] == 0


def test_breakdown_cli(case):
    raster, truth, pred = case
    r = CliRunner().invoke(cli, ["evaluate", pred, "--truth", truth, "--raster", raster, "--breakdown", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n_truth_unmatched"] == 1
    r = CliRunner().invoke(cli, ["evaluate", pred, "--truth", truth, "--breakdown"])
    assert r.exit_code == 2 and "--raster" in r.output and "Traceback" not in r.output


def test_breakdown_of_a_probability_raster(tmp_path):
    prob = np.zeros((100, 100), np.uint8)
    prob[10:30, 10:30] = 230  # TRUTH[0]
    prob[80:90, 80:90] = 200  # a false alarm of 100 px
    raster = write_raster(tmp_path / "p.tif", prob)
    gpd.GeoDataFrame(geometry=TRUTH, crs=32633).to_file(tmp_path / "t.gpkg")
    s = evaluate(str(raster), str(tmp_path / "t.gpkg"), breakdown=True)
    assert s["px_fp"] == 100 and s["fp_unmatched_share"] == 1.0
    assert s["px_fn"] == 1000 and s["fn_unmatched_share"] == 1.0, "TRUTH[1] and TRUTH[2] are missed whole"
    assert s["iou_matched"] == 1.0 and (s["n_pred_unmatched"], s["n_truth_unmatched"]) == (1, 2)
