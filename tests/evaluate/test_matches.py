"""geoseg.evaluate.matches and `geoseg evaluate --matches`: per-building tp/fp/fn with IoUs, on known cases."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from click.testing import CliRunner
from shapely.geometry import box

from geoseg.cli.main import cli
from geoseg.evaluate.matches import best_iou, match_table
from geoseg.evaluate.objects import match_objects
from geoseg.evaluate.run import evaluate
from tests.conftest import scene, write_raster

TRUTH = [box(0, 0, 10, 10), box(20, 0, 30, 10), box(40, 0, 50, 10)]
PRED = [box(0, 0, 10, 10),   # exact: tp, IoU 1
        box(20, 0, 30, 4),   # covers 40 % of the second: fp, best IoU 0.4
        box(60, 0, 70, 10)]  # touches nothing: fp, IoU 0


def test_best_iou_is_that_of_the_most_overlapping_other_and_zero_alone():
    np.testing.assert_allclose(best_iou(PRED, TRUTH), [1.0, 0.4, 0.0])
    assert best_iou(PRED, []).tolist() == [0.0, 0.0, 0.0]


def test_the_table_says_which_matched_with_what_and_keeps_attributes():
    pred = gpd.GeoDataFrame({"p_mean": [0.9, 0.8, 0.7]}, geometry=PRED, crs=32633)
    truth = gpd.GeoDataFrame({"osm_id": [11, 12, 13]}, geometry=TRUTH, crs=32633)
    pairs = match_objects(pred.geometry.values, truth.geometry.values)
    t = match_table(pred, truth, pairs)
    assert list(t.columns[:4]) == ["source", "status", "iou", "match"]
    assert t["source"].tolist() == ["prediction"] * 3 + ["truth"] * 3
    assert t["status"].tolist() == ["tp", "fp", "fp", "tp", "fn", "fn"]
    np.testing.assert_allclose(t["iou"], [1.0, 0.4, 0.0, 1.0, 0.4, 0.0])
    assert t["match"].tolist() == [0, -1, -1, 0, -1, -1]
    assert t.loc[t.source == "truth", "osm_id"].tolist() == [11, 12, 13]
    assert t.loc[t.source == "prediction", "p_mean"].tolist() == [0.9, 0.8, 0.7]
    assert t.crs.to_epsg() == 32633 and t.geometry.iloc[4].equals(TRUTH[1])


@pytest.mark.parametrize("ext", [".gpkg", ".fgb", ".geojson"])
def test_evaluate_writes_the_matches_its_scores_count(tmp_path, ext):
    raster = write_raster(tmp_path / "r.tif", scene((20, 80)), transform=Affine(1, 0, 0, 0, -1, 10))
    gpd.GeoDataFrame({"osm_id": [1, 2, 3]}, geometry=TRUTH, crs=32633).to_crs(4326).to_file(tmp_path / "t.geojson")
    gpd.GeoDataFrame(geometry=PRED, crs=32633).to_file(tmp_path / "p.gpkg")
    out = tmp_path / f"m{ext}"
    r = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "p.gpkg"), "--truth", str(tmp_path / "t.geojson"),
                                 "--raster", str(raster), "--matches", str(out), "--json"])
    assert r.exit_code == 0, r.output
    m = gpd.read_file(out)
    s = evaluate(str(tmp_path / "p.gpkg"), str(tmp_path / "t.geojson"), raster=str(raster))
    counts = m.groupby(["source", "status"]).size().to_dict()
    assert counts == {("prediction", "tp"): s["obj_tp"], ("prediction", "fp"): s["obj_fp"],
                      ("truth", "tp"): s["obj_tp"], ("truth", "fn"): s["obj_fn"]}
    assert sorted(m.loc[m.status == "fn", "osm_id"]) == [2, 3]


def test_matches_is_checked_before_the_work_and_refused_with_a_sweep(tmp_path):
    gpd.GeoDataFrame(geometry=TRUTH, crs=32633).to_file(tmp_path / "t.gpkg")
    r = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "t.gpkg"), "--truth", str(tmp_path / "t.gpkg"),
                                 "--matches", str(tmp_path / "m.csv")])
    assert r.exit_code == 2 and "Traceback" not in r.output and not (tmp_path / "m.csv").exists()
    r = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "t.gpkg"), "--truth", str(tmp_path / "t.gpkg"),
                                 "--gsd-sweep", "0.3", "--matches", str(tmp_path / "m.gpkg")])
    assert r.exit_code == 2 and "--keep" in r.output and not (tmp_path / "m.gpkg").exists()


def test_the_summary_script_counts_merges_splits_and_lonely_misses(tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).parents[2] / "scripts"))
    import match_summary

    truth = [box(0, 0, 10, 10), box(10, 0, 20, 10),  # two row houses ...
             box(40, 0, 60, 10),                      # ... one long house ...
             box(80, 0, 90, 10)]                      # ... and one nobody finds
    pred = [box(0, 0, 21, 10),                        # the row houses merged
            box(40, 0, 49, 10), box(51, 0, 60, 10),   # the long house split in two
            box(100, 0, 110, 10)]                     # a false alarm
    p = gpd.GeoDataFrame(geometry=pred, crs=32633)
    t = gpd.GeoDataFrame(geometry=truth, crs=32633)
    match_table(p, t, match_objects(pred, truth)).to_file(tmp_path / "m.gpkg")
    s = match_summary.summary(str(tmp_path / "m.gpkg"))
    assert s["tp"] == 0 and s["fp"]["n"] == 4 and s["fn"]["n"] == 4
    assert s["fp"]["iou_0"] == 1 and s["fn"]["iou_0"] == 1
    assert s["fp_merging_2_or_more"] == 1 and s["fn_inside_a_merged_prediction"] == 2
    assert s["fn_split_into_2_or_more"] == 1


def test_the_matches_file_is_in_the_predictions_crs(tmp_path):
    """It came out in the working UTM zone, whatever the CRSs of the predictions and the truth."""
    raster = write_raster(tmp_path / "r.tif", scene((20, 80)), transform=Affine(1, 0, 0, 0, -1, 10))
    gpd.GeoDataFrame(geometry=TRUTH, crs=32633).to_crs(4326).to_file(tmp_path / "t.geojson")
    pred = gpd.GeoDataFrame(geometry=PRED, crs=32633).to_crs(3857)
    pred.to_file(tmp_path / "p.gpkg")
    evaluate(str(tmp_path / "p.gpkg"), str(tmp_path / "t.geojson"), raster=str(raster), matches=str(tmp_path / "m.gpkg"))
    m = gpd.read_file(tmp_path / "m.gpkg")
    assert m.crs.to_epsg() == 3857
    assert m.loc[m.source == "prediction"].geometry.iloc[0].equals_exact(pred.geometry.iloc[0], tolerance=1e-6)


def test_matches_parquet_holds_attributes_of_clashing_names_and_types(tmp_path):
    """geoseg's integer `id` against OSM's "way/1", and OSM's own `source`: both kept, the truth's renamed."""
    raster = write_raster(tmp_path / "r.tif", scene((20, 80)), transform=Affine(1, 0, 0, 0, -1, 10))
    gpd.GeoDataFrame({"id": ["way/1", "way/2", "way/3"], "source": ["survey"] * 3, "osm_id": [1, 2, 3]},
                     geometry=TRUTH, crs=32633).to_file(tmp_path / "t.geojson")
    gpd.GeoDataFrame({"id": [1, 2, 3], "status": ["a", "b", "c"]}, geometry=PRED, crs=32633).to_file(tmp_path / "p.gpkg")
    out = tmp_path / "m.parquet"
    r = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "p.gpkg"), "--truth", str(tmp_path / "t.geojson"),
                                 "--raster", str(raster), "--matches", str(out), "--json"])
    assert r.exit_code == 0, r.output
    m = gpd.read_parquet(out)
    truth, pred = m[m.source == "truth"], m[m.source == "prediction"]
    assert set(m.source) == {"prediction", "truth"} and set(m.status) <= {"tp", "fp", "fn"}
    assert truth["truth_id"].tolist() == ["way/1", "way/2", "way/3"] and truth["truth_source"].tolist() == ["survey"] * 3
    assert pred["id"].tolist() == [1, 2, 3] and pred["pred_status"].tolist() == ["a", "b", "c"]
    assert truth["osm_id"].tolist() == [1, 2, 3], "an attribute without a clash keeps its name"
