"""Metrics on hand-made cases with known answers."""

import json
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner
from shapely.geometry import box

from geoseg.cli.main import cli
from geoseg.errors import ConfigError, InputError
from geoseg.evaluate.objects import object_scores
from geoseg.evaluate.run import evaluate
from geoseg.evaluate.sweep import curve_label, gsd_sweep
from geoseg.models.registry import get_card
from tests.conftest import make_pixel_model, scene, write_raster

T = Affine(1.0, 0, 500000.0, 0, -1.0, 5000000.0)


def b(r0, c0, r1, c1):
    return box(500000 + c0, 5000000 - r1, 500000 + c1, 5000000 - r0)


TRUTH = [b(10, 10, 30, 30), b(10, 50, 30, 70), b(50, 10, 70, 40)]


def test_self_intersecting_truth_is_repaired_not_fatal(tmp_path):
    """OSM has bow-tie outlines; GEOS refuses to intersect them ('TopologyException')."""
    from shapely.geometry import Polygon

    x0, y0 = 500000, 5000000
    bowtie = Polygon([(x0 + 80, y0 - 80), (x0 + 100, y0 - 100), (x0 + 100, y0 - 80), (x0 + 80, y0 - 100)])
    assert not bowtie.is_valid
    gpd.GeoDataFrame(geometry=[*TRUTH, bowtie], crs=32633).to_file(tmp_path / "t.gpkg")
    gpd.GeoDataFrame(geometry=[*TRUTH, bowtie.buffer(0.5)], crs=32633).to_file(tmp_path / "p.gpkg")
    s = evaluate(str(tmp_path / "p.gpkg"), str(tmp_path / "t.gpkg"))
    assert s["n_truth"] == 4 and s["obj_tp"] == 3, "the three valid buildings match; the repaired bow-tie is scored too"


def test_perfect_prediction():
    s = object_scores(TRUTH, TRUTH)
    assert s["obj_tp"] == 3 and s["obj_f1"] == 1.0 and s["obj_mean_iou_tp"] == 1.0


def test_empty_prediction_and_empty_both():
    s = object_scores([], TRUTH)
    assert (s["obj_tp"], s["obj_fn"], s["obj_f1"]) == (0, 3, 0.0)
    assert object_scores([], [])["obj_f1"] == 1.0


def test_truth_that_misses_the_raster_warns_instead_of_scoring_silently(tmp_path):
    """A truth file of another place (or a CRS mix-up) would score an empty prediction as perfect: say so."""
    from shapely import affinity

    from geoseg.errors import LabelWarning

    raster = write_raster(tmp_path / "r.tif", scene((100, 100)))
    far = [affinity.translate(g, 10_000, 0) for g in TRUTH]
    gpd.GeoDataFrame(geometry=far, crs=32633).to_file(tmp_path / "far.gpkg")
    gpd.GeoDataFrame(geometry=TRUTH, crs=32633).to_file(tmp_path / "near.gpkg")
    with pytest.warns(LabelWarning, match="no polygon of .*far.gpkg lies on the valid area"):
        s = evaluate(str(tmp_path / "near.gpkg"), str(tmp_path / "far.gpkg"), raster=str(raster))
    assert s["n_truth"] == 0
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", LabelWarning)
        assert evaluate(str(tmp_path / "near.gpkg"), str(tmp_path / "near.gpkg"), raster=str(raster))["n_truth"] == 3
    r = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "near.gpkg"), "--truth", str(tmp_path / "far.gpkg"),
                                 "--raster", str(raster)])
    assert r.exit_code == 0 and "geoseg: warning: no polygon of" in r.stderr


def test_predictions_of_another_place_warn_with_and_without_a_raster(tmp_path):
    """Footprints that lie nowhere near the truth (another place, or a CRS mix-up) score zero on every count: say
    why. A prediction that overlaps the truth, or an empty one, does not warn."""
    import warnings

    from shapely import affinity

    from geoseg.errors import LabelWarning

    raster = write_raster(tmp_path / "r.tif", scene((100, 100)))
    gpd.GeoDataFrame(geometry=TRUTH, crs=32633).to_file(tmp_path / "near.gpkg")
    gpd.GeoDataFrame(geometry=[affinity.translate(g, 10_000, 0) for g in TRUTH], crs=32633).to_file(tmp_path / "far.gpkg")
    wrong = gpd.GeoDataFrame(geometry=TRUTH, crs=32633).set_crs(4326, allow_override=True)  # UTM metres read as degrees
    wrong.to_file(tmp_path / "wrong_crs.gpkg")
    near, far = str(tmp_path / "near.gpkg"), str(tmp_path / "far.gpkg")
    with pytest.warns(LabelWarning, match="near.gpkg.* do not overlap anywhere.*true CRS"):
        s = evaluate(far, near)
    assert s["iou"] == 0 and s["obj_fp"] == 3 and s["obj_fn"] == 3
    with pytest.warns(LabelWarning, match="none of the 3 features of .*wrong_crs.gpkg lies on the valid area"):
        s = evaluate(str(tmp_path / "wrong_crs.gpkg"), near, raster=str(raster))
    assert s["n_pred"] == 0 and s["n_truth"] == 3
    gpd.GeoDataFrame(geometry=[], crs=32633).to_file(tmp_path / "none.gpkg")
    with warnings.catch_warnings():
        warnings.simplefilter("error", LabelWarning)
        assert evaluate(near, near)["iou"] == pytest.approx(1.0)
        assert evaluate(near, near, raster=str(raster))["iou"] == pytest.approx(1.0)
        assert evaluate(str(tmp_path / "none.gpkg"), near, raster=str(raster))["n_pred"] == 0
    r = CliRunner().invoke(cli, ["evaluate", far, "--truth", near])
    assert r.exit_code == 0 and r.stderr.startswith("geoseg: warning: the predictions") and "Traceback" not in r.output


def test_pixel_scores_count_buildings_cut_by_the_raster_edge_nodata_or_the_aoi(tmp_path):
    """Pixel scores count every valid pixel, also those of a building whose representative point lies off the raster,
    on nodata or outside the aoi; only the object scores leave such buildings out (on both sides)."""
    def save(name, geoms):
        gpd.GeoDataFrame(geometry=geoms, crs=32633).to_file(tmp_path / name)
        return str(tmp_path / name)

    full = str(write_raster(tmp_path / "r.tif", scene((100, 100))))
    # (a) the raster's right edge (col 100): truth cols 80-104 (its point is on the raster), pred cols 90-130 (off it)
    s = evaluate(save("pa.gpkg", [b(10, 90, 30, 130), b(60, 20, 80, 40)]), save("ta.gpkg", [b(10, 80, 30, 104), b(60, 20, 80, 40)]),
                 raster=full)
    assert (s["px_tp"], s["px_fp"], s["px_fn"]) == (600, 0, 200) and s["iou"] == pytest.approx(0.75)
    assert (s["obj_tp"], s["n_pred"], s["n_truth"]) == (1, 1, 2), "objects: the cut prediction's point is off the raster"
    # (b) nodata at cols 0-49: truth cols 30-56 (its point on nodata), pred cols 45-60
    mask = np.ones((100, 100), bool)
    mask[:, :50] = False
    nd = str(write_raster(tmp_path / "nd.tif", scene((100, 100)), mask=mask))
    s = evaluate(save("pb.gpkg", [b(40, 45, 60, 60), b(70, 70, 80, 80)]), save("tb.gpkg", [b(40, 30, 60, 56), b(70, 70, 80, 80)]),
                 raster=nd)
    assert (s["px_tp"], s["px_fp"], s["px_fn"]) == (120 + 100, 80, 0)
    # (c) an aoi of the west half: truth cols 44-70 (its point east), pred cols 30-56 (west): 6 x 20 px overlap inside
    aoi = save("aoi.gpkg", [b(0, 0, 100, 50)])
    s = evaluate(save("pc.gpkg", [b(40, 30, 60, 56), b(10, 10, 20, 20)]), save("tc.gpkg", [b(40, 44, 60, 70), b(10, 10, 20, 20)]),
                 raster=full, aoi=aoi)
    assert (s["px_tp"], s["px_fp"], s["px_fn"]) == (120 + 100, 280, 0) and s["iou"] == pytest.approx(220 / 500)
    t = evaluate(str(tmp_path / "pc.gpkg"), str(tmp_path / "tc.gpkg"), aoi=aoi)  # polygon areas, no raster: the same
    assert t["iou"] == pytest.approx(220 / 500, rel=1e-3)


def test_nan_in_a_float_probability_raster_is_nodata_for_the_scores(tmp_path):
    """NaN without a declared nodata (as many tools write it) is not "predicted background": pixels and objects
    there do not count, as the vectorizer and the engine's reader take them."""
    prob = np.zeros((100, 100), np.float32)
    prob[10:30, 10:30] = 0.9
    prob[:, 60:] = np.nan
    raster = write_raster(tmp_path / "p.tif", prob[None])
    truth = gpd.GeoDataFrame(geometry=[b(10, 10, 30, 30), b(40, 70, 60, 90)], crs=32633)
    truth.to_file(tmp_path / "t.gpkg")
    s = evaluate(str(raster), str(tmp_path / "t.gpkg"), threshold=0.5)
    assert (s["px_tp"], s["px_fp"], s["px_fn"]) == (400, 0, 0) and (s["obj_fn"], s["n_truth"]) == (0, 1)


def test_a_probability_raster_is_scored_the_same_whichever_way_its_path_is_written(tmp_path, monkeypatch):
    prob = np.zeros((60, 60), np.uint8)
    prob[10:30, 10:30], prob[40, 40] = 230, 230  # a one-pixel speck the vectorizer's minimum area drops
    write_raster(tmp_path / "p.tif", prob[None])
    gpd.GeoDataFrame(geometry=[b(10, 10, 30, 30)], crs=32633).to_file(tmp_path / "t.gpkg")
    monkeypatch.chdir(tmp_path)
    scores = {evaluate("p.tif", "t.gpkg", raster=r)["px_fp"] for r in (None, "p.tif", str(tmp_path / "p.tif"), "./p.tif")}
    assert scores == {1}, "the raster's own pixels, thresholded, whatever the spelling"


def test_multipart_truth_features_warn_that_each_is_one_building(tmp_path):
    from shapely.geometry import MultiPolygon

    from geoseg.errors import LabelWarning

    gpd.GeoDataFrame(geometry=[MultiPolygon([b(10, 10, 20, 20), b(40, 40, 50, 50)])], crs=32633).to_file(tmp_path / "t.gpkg")
    gpd.GeoDataFrame(geometry=[b(10, 10, 20, 20), b(40, 40, 50, 50)], crs=32633).to_file(tmp_path / "p.gpkg")
    with pytest.warns(LabelWarning, match="1 of the 1 features .* hold several polygons"):
        s = evaluate(str(tmp_path / "p.gpkg"), str(tmp_path / "t.gpkg"))
    assert s["iou"] == pytest.approx(1.0) and (s["obj_tp"], s["obj_fp"]) == (1, 1)


@pytest.mark.parametrize("as_pred", [True, False])
def test_a_raster_without_a_crs_is_a_one_line_error(tmp_path, as_pred):
    raster = write_raster(tmp_path / "r.tif", scene((40, 40)), crs=None)
    gpd.GeoDataFrame(geometry=TRUTH, crs=32633).to_file(tmp_path / "t.gpkg")
    args = [str(raster)] if as_pred else [str(tmp_path / "t.gpkg"), "--raster", str(raster)]
    r = CliRunner().invoke(cli, ["evaluate", *args, "--truth", str(tmp_path / "t.gpkg")])
    assert r.exit_code == 2 and f"{raster} has no CRS" in r.output and "Traceback" not in r.output


def test_shifted_prediction_matches_only_above_iou_half():
    small_shift = [b(12, 10, 32, 30)]  # IoU 18/22 = 0.82
    big_shift = [b(20, 10, 40, 30)]  # IoU 10/30 = 0.33
    assert object_scores(small_shift, TRUTH[:1])["obj_tp"] == 1
    assert object_scores(big_shift, TRUTH[:1])["obj_tp"] == 0


def test_split_building_counts_one_match_and_one_false_positive():
    halves = [b(10, 10, 30, 22), b(10, 22, 30, 30)]  # IoU 0.6 and 0.4 with the truth
    s = object_scores(halves, TRUTH[:1])
    assert (s["obj_tp"], s["obj_fp"], s["obj_fn"]) == (1, 1, 0)


def test_merged_buildings_match_at_most_one():
    merged = [b(10, 10, 30, 70)]  # covers two truths: IoU 1/3 each
    s = object_scores(merged, TRUTH[:2])
    assert (s["obj_tp"], s["obj_fp"], s["obj_fn"]) == (0, 1, 2)


def test_one_to_one_matching():
    s = object_scores([TRUTH[0], TRUTH[0]], TRUTH[:1])
    assert (s["obj_tp"], s["obj_fp"]) == (1, 1)


@pytest.fixture
def files(tmp_path):
    mask = np.ones((100, 100), bool)
    mask[:, 80:] = False  # a truth building out here does not count
    raster = write_raster(tmp_path / "r.tif", scene((100, 100)), mask=mask)
    truth = gpd.GeoDataFrame(geometry=TRUTH + [b(10, 85, 30, 95)], crs=32633).to_crs(4326)
    truth.to_file(tmp_path / "t.geojson")
    pred = gpd.GeoDataFrame(geometry=[TRUTH[0], b(12, 50, 32, 70)], crs=32633)
    pred.to_file(tmp_path / "p.gpkg")
    return raster, tmp_path / "t.geojson", tmp_path / "p.gpkg"


def test_evaluate_files_across_crss_within_the_valid_area(files):
    raster, truth, pred = files
    s = evaluate(str(pred), str(truth), raster=str(raster))
    assert s["n_truth"] == 3, "the masked-out truth building is ignored"
    assert (s["obj_tp"], s["obj_fn"], s["obj_fp"]) == (2, 1, 0)
    # pixels: truth 400+400+600 = 1400; pred 400 exact + 400 shifted by 2 rows (360 overlap)
    assert s["px_tp"] == 760 and s["px_fp"] == 40 and s["px_fn"] == 640
    assert s["iou"] == pytest.approx(760 / 1440)


def test_footprints_without_a_raster_get_area_scores_over_the_whole_extent(files, tmp_path):
    """No raster, no valid area: IoU/precision/recall/F1 from polygon areas (the pixel scores' fine-pixel limit),
    the building the raster's mask would drop included; an aoi clips them like pixels."""
    raster, truth, pred = files
    s = evaluate(str(pred), str(truth))
    assert s["area_tp_m2"] == pytest.approx(760, rel=1e-3) and s["area_fn_m2"] == pytest.approx(840, rel=1e-3)
    assert s["iou"] == pytest.approx(760 / 1640, rel=1e-3) and s["precision"] == pytest.approx(0.95, rel=1e-3)
    assert "polygon areas" in s["pixel_scores_from"] and "px_tp" not in s
    gpd.GeoDataFrame(geometry=[b(0, 0, 40, 80)], crs=32633).to_crs(4326).to_file(tmp_path / "aoi.geojson")
    clipped = evaluate(str(pred), str(truth), aoi=str(tmp_path / "aoi.geojson"))
    with_raster = evaluate(str(pred), str(truth), raster=str(raster), aoi=str(tmp_path / "aoi.geojson"))
    assert clipped["iou"] == pytest.approx(with_raster["iou"], rel=1e-3) == pytest.approx(760 / 840)
    r = CliRunner().invoke(cli, ["evaluate", str(pred), "--truth", str(truth)])
    assert r.exit_code == 0 and "pixel_scores_from" in r.output and r.output.count("iou ") == 1


def test_an_aoi_limits_pixel_and_object_scores_to_where_the_truth_is_complete(files, tmp_path):
    """Rows 0-40 only (the aoi, drawn in another CRS): the third building (rows 50-70) and its pixels leave both
    the pixel and the object scores, with or without a raster."""
    raster, truth, pred = files
    gpd.GeoDataFrame(geometry=[b(0, 0, 40, 80)], crs=32633).to_crs(4326).to_file(tmp_path / "aoi.geojson")
    aoi = str(tmp_path / "aoi.geojson")
    s = evaluate(str(pred), str(truth), raster=str(raster), aoi=aoi)
    assert (s["n_truth"], s["obj_tp"], s["obj_fn"], s["obj_fp"]) == (2, 2, 0, 0)
    assert (s["px_tp"], s["px_fp"], s["px_fn"]) == (760, 40, 40)  # the 600 px of the third building are outside
    assert s["iou"] == pytest.approx(760 / 840) and s["aoi"] == aoi
    assert evaluate(str(pred), str(truth), aoi=aoi)["n_truth"] == 2, "objects only: the same buildings count"
    r = CliRunner().invoke(cli, ["evaluate", str(pred), "--truth", str(truth), "--raster", str(raster), "--aoi", aoi, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["px_fn"] == 40
    gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)], crs=4326).to_file(tmp_path / "far.geojson")
    r = CliRunner().invoke(cli, ["evaluate", str(pred), "--truth", str(truth), "--raster", str(raster),
                                 "--aoi", str(tmp_path / "far.geojson")])
    assert r.exit_code == 2 and "no polygon of the aoi" in r.output and len(r.output.strip().splitlines()) == 1
    r = CliRunner().invoke(cli, ["evaluate", str(pred), "--truth", str(truth), "--aoi", str(tmp_path / "far.geojson")])
    assert r.exit_code == 2 and "lies inside the aoi" in r.output and len(r.output.strip().splitlines()) == 1


def test_evaluate_cli_json(files):
    raster, truth, pred = files
    r = CliRunner().invoke(cli, ["evaluate", str(pred), "--truth", str(truth), "--raster", str(raster), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["obj_tp"] == 2


def test_evaluate_probability_raster(tmp_path):
    prob = np.zeros((100, 100), np.uint8)
    prob[10:30, 10:30] = 230
    raster = write_raster(tmp_path / "p.tif", prob)
    gpd.GeoDataFrame(geometry=TRUTH[:1], crs=32633).to_file(tmp_path / "t.gpkg")
    s = evaluate(str(raster), str(tmp_path / "t.gpkg"))
    assert s["iou"] == 1.0 and s["obj_tp"] == 1 and s["obj_fp"] == 0


def test_imagery_given_as_a_prediction_is_refused_not_scored(tmp_path):
    img = scene((100, 100), [(10, 10, 30, 30)])  # band 1 of the roof is about 225/255: "probable" if read as one
    raster = write_raster(tmp_path / "img.tif", img)
    gpd.GeoDataFrame(geometry=TRUTH[:1], crs=32633).to_file(tmp_path / "t.gpkg")
    r = CliRunner().invoke(cli, ["evaluate", str(raster), "--truth", str(tmp_path / "t.gpkg")])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert r.output.startswith("geoseg: error: ") and len(r.output.strip().splitlines()) == 1
    assert "looks like imagery" in r.output and "--gsd-sweep" in r.output
    with rasterio.open(raster, "r+") as ds:  # the same bands described as geoseg describes its outputs
        ds.descriptions = ("building", "border", "gap")
    assert evaluate(str(raster), str(tmp_path / "t.gpkg"))["obj_tp"] == 1


@pytest.mark.parametrize("args", [["--iou", "0"], ["--iou", "1.2"], ["--threshold", "2"], ["--threshold", "-0.5"]])
def test_match_iou_and_threshold_outside_their_range_are_usage_errors(files, args):
    raster, truth, pred = files
    r = CliRunner().invoke(cli, ["evaluate", str(pred), "--truth", str(truth), "--raster", str(raster), *args])
    assert r.exit_code == 2 and args[0] in r.output and "Traceback" not in r.output
    with pytest.raises(ConfigError, match="out of range"):
        evaluate(str(pred), str(truth), raster=str(raster), iou_threshold=0.0)


def test_gsd_sweep_on_a_sample_tile(tmp_path, pixel_card):
    rects = [(21, 23, 99, 98), (141, 119, 219, 221)]  # not aligned with coarser pixels
    raster = write_raster(tmp_path / "in.tif", scene((240, 240), rects))
    gpd.GeoDataFrame(geometry=[b(*r) for r in rects], crs=32633).to_file(tmp_path / "t.gpkg")
    r = CliRunner().invoke(cli, ["evaluate", str(raster), "--truth", str(tmp_path / "t.gpkg"), "--gsd-sweep", "1,2,5",
                                 "--model", str(pixel_card), "--plot", str(tmp_path / "s.png"), "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [x["gsd_m"] for x in rows] == [1.0, 2.0, 5.0]
    assert rows[0]["iou"] > 0.95 and all(x["obj_tp"] == 2 for x in rows)
    assert rows[2]["iou"] < rows[0]["iou"], "coarser resolution blurs the outlines"
    assert (tmp_path / "s.png").stat().st_size > 1000
    assert {(x["tile_size"], x["overlap"]) for x in rows} == {pixel_card_tiles(pixel_card)}
    assert all(x["pred"] is None for x in rows), "without --keep no footprint file outlives the sweep to point at"
    from geoseg.errors import GsdWarning

    lo, hi = get_card(str(pixel_card)).gsd_valid_m
    with pytest.warns(GsdWarning, match=f"runs it at {hi * 2:g} m as well"):
        gsd_sweep(str(raster), str(tmp_path / "t.gpkg"), [lo, hi * 2], str(pixel_card))
    r = CliRunner().invoke(cli, ["evaluate", str(raster), "--truth", str(tmp_path / "t.gpkg"), "--gsd-sweep", "1,2",
                                 "--model", str(pixel_card), "--tile-size", "64", "--overlap", "16", "--json"])
    assert r.exit_code == 0, r.output
    assert [(x["tile_size"], x["overlap"]) for x in json.loads(r.stdout)] == [(64, 16), (64, 16)]
    assert json.loads(r.stdout)[0]["iou"] > 0.95, "the same answer from smaller tiles"
    r = CliRunner().invoke(cli, ["evaluate", str(raster), "--truth", str(tmp_path / "t.gpkg"), "--tile-size", "64"])
    assert r.exit_code == 2 and "--gsd-sweep" in r.output


def test_a_sweep_scores_only_inside_its_aoi(tmp_path, pixel_card):
    rects = [(21, 23, 99, 98), (141, 119, 219, 221)]
    raster = write_raster(tmp_path / "in.tif", scene((240, 240), rects))
    gpd.GeoDataFrame(geometry=[b(*r) for r in rects], crs=32633).to_file(tmp_path / "t.gpkg")
    gpd.GeoDataFrame(geometry=[b(0, 0, 120, 120)], crs=32633).to_file(tmp_path / "aoi.gpkg")
    r = CliRunner().invoke(cli, ["evaluate", str(raster), "--truth", str(tmp_path / "t.gpkg"), "--gsd-sweep", "1,2",
                                 "--model", str(pixel_card), "--aoi", str(tmp_path / "aoi.gpkg"), "--ceiling", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert all(x["n_truth"] == 1 and x["obj_tp"] == 1 for x in rows), "the second building lies outside the aoi"
    assert all(x["px_tp"] + x["px_fn"] == 78 * 75 for x in rows)
    assert all(x["ceiling_iou"] > 0.95 for x in rows)
    for mode in ("model", "imagery"):  # the model runs over the aoi only: its probability raster covers just that
        r = CliRunner().invoke(cli, ["evaluate", str(raster), "--truth", str(tmp_path / "t.gpkg"), "--gsd-sweep", "1",
                                     "--model", str(pixel_card), "--aoi", str(tmp_path / "aoi.gpkg"), "--json",
                                     "--sweep-mode", mode, "--keep", str(tmp_path / mode)])
        assert r.exit_code == 0, r.output
        with rasterio.open(json.loads(r.stdout)[0]["prob"]) as ds:
            assert ds.shape == (120, 120)
    gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)], crs=4326).to_file(tmp_path / "far.gpkg")
    with pytest.raises(InputError, match="no polygon of the aoi"):
        gsd_sweep(str(raster), str(tmp_path / "t.gpkg"), [1.0], str(pixel_card), aoi=str(tmp_path / "far.gpkg"),
                  progress=_NoRun())


class _NoRun:
    """A progress reporter that fails the test if any model run starts."""

    def update(self, *args):
        raise AssertionError("a model ran before the aoi was checked")

    def cancelled(self):
        return False


@pytest.mark.parametrize("plot,needle", [("s.txt", "must end in .png, .svg, .pdf"), ("no/dir/s.png", "does not exist")])
def test_a_plot_that_could_not_be_written_is_refused_before_the_sweep(tmp_path, pixel_card, plot, needle):
    raster = write_raster(tmp_path / "in.tif", scene((64, 64)))
    gpd.GeoDataFrame(geometry=TRUTH[:1], crs=32633).to_file(tmp_path / "t.gpkg")
    r = CliRunner().invoke(cli, ["evaluate", str(raster), "--truth", str(tmp_path / "t.gpkg"), "--gsd-sweep", "1",
                                 "--model", str(pixel_card), "--plot", str(tmp_path / plot), "--progress", "json"])
    assert r.exit_code == 2 and needle in r.output and "Traceback" not in r.output, r.output
    stages = [json.loads(line)["stage"] for line in r.output.splitlines() if line.startswith("{")]
    assert stages == ["error"], "no run was started; the refusal is the one JSON event"


def test_an_svg_plot_is_written_whole_and_a_plot_without_a_sweep_is_a_usage_error(tmp_path, pixel_card, files):
    raster = write_raster(tmp_path / "in.tif", scene((64, 64)))
    gpd.GeoDataFrame(geometry=TRUTH[:1], crs=32633).to_file(tmp_path / "t.gpkg")
    r = CliRunner().invoke(cli, ["evaluate", str(raster), "--truth", str(tmp_path / "t.gpkg"), "--gsd-sweep", "1,2",
                                 "--model", str(pixel_card), "--plot", str(tmp_path / "s.svg")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "s.svg").read_text().rstrip().endswith("</svg>")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "no temporary file is left"
    _, truth, pred = files
    r = CliRunner().invoke(cli, ["evaluate", str(pred), "--truth", str(truth), "--plot", str(tmp_path / "p.png")])
    assert r.exit_code == 2 and "--plot" in r.output and not (tmp_path / "p.png").exists()


def test_a_keep_folder_that_is_a_file_is_a_one_line_error(tmp_path, pixel_card):
    raster = write_raster(tmp_path / "in.tif", scene((64, 64)))
    gpd.GeoDataFrame(geometry=TRUTH[:1], crs=32633).to_file(tmp_path / "t.gpkg")
    (tmp_path / "keep").write_text("not a folder")
    r = CliRunner().invoke(cli, ["evaluate", str(raster), "--truth", str(tmp_path / "t.gpkg"), "--gsd-sweep", "1",
                                 "--model", str(pixel_card), "--keep", str(tmp_path / "keep")])
    assert r.exit_code == 2 and "is a file, not a folder" in r.output and "Traceback" not in r.output, r.output
    assert (tmp_path / "keep").read_text() == "not a folder"


def test_a_sweep_checks_its_truth_before_running_any_model(tmp_path, pixel_card):
    raster = write_raster(tmp_path / "in.tif", scene((64, 64)))
    r = CliRunner().invoke(cli, ["evaluate", str(raster), "--truth", str(tmp_path / "typo.gpkg"), "--gsd-sweep", "1,2",
                                 "--model", str(pixel_card), "--keep", str(tmp_path / "keep")])
    assert r.exit_code == 2 and "truth not found" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "keep").exists(), "no run was started"


def test_a_sweep_gsd_that_leaves_almost_no_pixels_says_so(tmp_path, pixel_card):
    lonlat = Affine(1e-5, 0, 10.0, 0, -1e-5, 45.0)  # about 0.8 x 1.1 m pixels: 40 px are some 32 x 44 m
    raster = write_raster(tmp_path / "in.tif", scene((40, 40)), crs="EPSG:4326", transform=lonlat)
    gpd.GeoDataFrame(geometry=[box(10.0001, 44.9997, 10.0002, 44.9998)], crs=4326).to_file(tmp_path / "t.gpkg")
    r = CliRunner().invoke(cli, ["evaluate", str(raster), "--truth", str(tmp_path / "t.gpkg"), "--gsd-sweep", "100",
                                 "--model", str(pixel_card)])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "pixels at 100 m" in r.output and "finer GSD" in r.output


@pytest.mark.parametrize("text", ["0.3,abc", "0,0.3", "-0.3", "0.3,inf", "nan"])
def test_a_gsd_sweep_of_anything_but_positive_metres_is_a_usage_error(tmp_path, text):
    raster = write_raster(tmp_path / "in.tif", scene((40, 40)))
    gpd.GeoDataFrame(geometry=TRUTH[:1], crs=32633).to_file(tmp_path / "t.gpkg")
    r = CliRunner().invoke(cli, ["evaluate", str(raster), "--truth", str(tmp_path / "t.gpkg"), "--gsd-sweep", text])
    assert r.exit_code == 2 and "each > 0" in r.output and "Traceback" not in r.output, r.output


def test_gsd_sweep_keeps_each_run_when_asked(tmp_path, pixel_card):
    rects = [(21, 23, 99, 98), (141, 119, 219, 221)]
    raster = write_raster(tmp_path / "in.tif", scene((240, 240), rects))
    gpd.GeoDataFrame(geometry=[b(*r) for r in rects], crs=32633).to_file(tmp_path / "t.gpkg")
    keep = tmp_path / "runs"
    r = CliRunner().invoke(cli, ["evaluate", str(raster), "--truth", str(tmp_path / "t.gpkg"), "--gsd-sweep", "1,2.5",
                                 "--model", str(pixel_card), "--keep", str(keep), "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    name = rows[0]["model"]
    assert sorted(p.name for p in keep.iterdir()) == sorted(
        [f"{name}_{g}m{end}" for g in ("1", "2.5") for end in (".gpkg", "_prob.tif", "_row.json")])
    for row in rows:  # the kept files are what was scored: scoring them again gives the same answer
        assert Path(row["pred"]).parent == keep and Path(row["prob"]).exists()
        again = evaluate(row["pred"], str(tmp_path / "t.gpkg"), raster=str(raster))
        assert again["iou"] == row["iou"] and again["obj_tp"] == row["obj_tp"]
    r = CliRunner().invoke(cli, ["evaluate", rows[0]["pred"], "--truth", str(tmp_path / "t.gpkg"), "--keep", str(keep)])
    assert r.exit_code == 2 and "--gsd-sweep" in r.output


def test_gsd_sweep_reports_progress_per_model_and_gsd(tmp_path, pixel_card):
    rects = [(21, 23, 99, 98)]
    raster = write_raster(tmp_path / "in.tif", scene((160, 160), rects))
    gpd.GeoDataFrame(geometry=[b(*r) for r in rects], crs=32633).to_file(tmp_path / "t.gpkg")
    r = CliRunner().invoke(cli, ["evaluate", str(raster), "--truth", str(tmp_path / "t.gpkg"), "--gsd-sweep", "1,2.5",
                                 "--model", str(pixel_card), "--progress", "json", "--json"])
    assert r.exit_code == 0, r.output
    assert [x["gsd_m"] for x in json.loads(r.stdout)] == [1.0, 2.5], "progress never reaches stdout"
    recs = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    assert recs[-1]["stage"] == "done", "the last event says the command finished"
    recs = recs[:-1]
    prefixes = {rec["stage"].split(": ")[0] for rec in recs}
    assert prefixes == {"pixel-test @ 1 m", "pixel-test @ 2.5 m"}, prefixes
    finals = [rec for rec in recs if rec["done"] == rec["total"] and rec["total"] > 0]
    assert {rec["stage"].split(": ")[0] for rec in finals} == prefixes, "each run's stages run to their end"


def test_imagery_mode_degrades_the_input_then_runs_where_segment_would(tmp_path, pixel_card):
    """Imagery mode: each GSD is the imagery's; the model runs at the card's GSD (1 m) unless --gsd says otherwise."""
    import rasterio

    rects = [(21, 23, 99, 98), (141, 119, 219, 221)]
    raster = write_raster(tmp_path / "in.tif", scene((240, 240), rects))
    gpd.GeoDataFrame(geometry=[b(*r) for r in rects], crs=32633).to_file(tmp_path / "t.gpkg")
    args = ["evaluate", str(raster), "--truth", str(tmp_path / "t.gpkg"), "--gsd-sweep", "0.5,1,5", "--model", str(pixel_card), "--json"]
    keep = tmp_path / "kept"
    r = CliRunner().invoke(cli, [*args, "--sweep-mode", "imagery", "--keep", str(keep)])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [(x["gsd_m"], x["run_gsd_m"], x["mode"]) for x in rows] == [(0.5, 1.0, "imagery"), (1.0, 1.0, "imagery"), (5.0, 1.0, "imagery")]
    assert [x["finer_than_source"] for x in rows] == [True, False, False]
    assert all(x["source_gsd_m"] == pytest.approx(1.0, abs=0.001) for x in rows)
    with rasterio.open(keep / "pixel-test_5m_input.tif") as ds:
        assert ds.res == (5.0, 5.0), "the imagery the model saw was made at the swept GSD"
    assert rows[1]["iou"] > 0.95 and all(x["obj_tp"] == 2 for x in rows)
    assert rows[2]["iou"] < rows[1]["iou"], "5 m imagery has blurred outlines even when the model runs at 1 m"

    r = CliRunner().invoke(cli, [*args, "--sweep-mode", "imagery", "--gsd", "2"])
    assert r.exit_code == 0, r.output
    assert [x["run_gsd_m"] for x in json.loads(r.stdout)] == [2.0, 2.0, 2.0]
    r = CliRunner().invoke(cli, [*args, "--sweep-mode", "imagery", "--gsd", "9", "--progress", "json"])
    assert r.exit_code == 2 and "valid range" in r.output and "degrade" not in r.stderr, "refused before any imagery is made"

    r = CliRunner().invoke(cli, args)  # model mode, the default: the model runs at each GSD
    assert r.exit_code == 0, r.output
    model_rows = json.loads(r.stdout)
    assert [(x["run_gsd_m"], x["mode"]) for x in model_rows] == [(0.5, "model"), (1.0, "model"), (5.0, "model")]
    assert model_rows[1]["iou"] == pytest.approx(rows[1]["iou"], abs=0.01), "at the card's GSD both modes are one run"

    r = CliRunner().invoke(cli, [*args, "--gsd", "2"])
    assert r.exit_code == 2 and "--sweep-mode imagery" in r.output
    r = CliRunner().invoke(cli, ["evaluate", str(raster), "--truth", str(tmp_path / "t.gpkg"), "--sweep-mode", "imagery"])
    assert r.exit_code == 2 and "--gsd-sweep" in r.output


class _CancelAfter:
    """Cancels once ``n`` updates have been seen; records the stages it saw."""

    def __init__(self, n: int) -> None:
        self.n, self.stages = n, []

    def update(self, done: int, total: int, stage: str) -> None:
        self.stages.append(stage)

    def cancelled(self) -> bool:
        return len(self.stages) >= self.n


def test_a_cancelled_sweep_stops_and_leaves_no_kept_files(tmp_path, pixel_card):
    from geoseg.errors import Cancelled
    from geoseg.evaluate.sweep import gsd_sweep

    rects = [(21, 23, 99, 98)]
    raster = write_raster(tmp_path / "in.tif", scene((160, 160), rects))
    gpd.GeoDataFrame(geometry=[b(*r) for r in rects], crs=32633).to_file(tmp_path / "t.gpkg")
    reporter = _CancelAfter(1)
    with pytest.raises(Cancelled) as exc:
        gsd_sweep(str(raster), str(tmp_path / "t.gpkg"), [1.0, 2.5], str(pixel_card), reporter, keep_dir=tmp_path / "k")
    assert reporter.stages and all(s.startswith("pixel-test @ 1 m: ") for s in reporter.stages), "stopped in the first run"
    assert not list((tmp_path / "k").glob("*.gpkg")), "no footprints from a cancelled run"
    assert str(exc.value) == f"cancelled; rerun the same command to resume: 0 of 2 GSDs are done and kept in {tmp_path / 'k'}"
    with pytest.raises(Cancelled) as exc:  # without a keep folder the runs were temporary: no promise to resume
        gsd_sweep(str(raster), str(tmp_path / "t.gpkg"), [1.0, 2.5], str(pixel_card), _CancelAfter(1))
    assert str(exc.value) == "cancelled; nothing was kept (add --keep DIR to make a sweep resumable)"


class _Stages(_CancelAfter):
    def __init__(self) -> None:
        super().__init__(10**9)


def test_a_kept_sweep_resumes_after_a_cancel_and_reuses_finished_runs(tmp_path, pixel_card):
    """With a keep folder, a rerun reuses each finished run's row and runs only the rest (a killed sweep resumes)."""
    from geoseg.errors import Cancelled
    from geoseg.evaluate.sweep import gsd_sweep

    rects = [(21, 23, 99, 98)]
    raster = write_raster(tmp_path / "in.tif", scene((160, 160), rects))
    truth = tmp_path / "t.gpkg"
    gpd.GeoDataFrame(geometry=[b(*r) for r in rects], crs=32633).to_file(truth)
    keep = tmp_path / "k"
    for mode in ("model", "imagery"):
        first = _Stages()
        rows = gsd_sweep(str(raster), str(truth), [1.0, 2.5], str(pixel_card), first, keep_dir=keep / mode, mode=mode)
        assert any(s.startswith("pixel-test @ 2.5 m: ") for s in first.stages)
        stopper = _CancelAfter(10**9)
        stopper.cancelled = lambda st=stopper: any(s.startswith("pixel-test @ 2.5 m: ") for s in st.stages)
        (keep / mode / "pixel-test_2.5m_row.json").unlink()  # as if the 2.5 m run had been killed
        with pytest.raises(Cancelled) as exc:
            gsd_sweep(str(raster), str(truth), [1.0, 2.5], str(pixel_card), stopper, keep_dir=keep / mode, mode=mode)
        assert str(exc.value).endswith(f"1 of 2 GSDs are done and kept in {keep / mode}")
        assert [s for s in stopper.stages if s.startswith("pixel-test @ 1 m: ")] == ["pixel-test @ 1 m: kept from an earlier run"]
        again = _Stages()
        rerun = gsd_sweep(str(raster), str(truth), [1.0, 2.5], str(pixel_card), again, keep_dir=keep / mode, mode=mode)
        assert rerun == rows, "resumed rows are the rows of an uninterrupted sweep"
        assert "pixel-test @ 1 m: kept from an earlier run" in again.stages
        assert any(s.startswith("pixel-test @ 2.5 m: ") and "kept" not in s for s in again.stages), "the killed run ran"
    gpd.GeoDataFrame(geometry=[b(21, 23, 60, 60)], crs=32633).to_file(truth)  # new labels: kept rows are stale
    stale = _Stages()
    changed = gsd_sweep(str(raster), str(truth), [1.0], str(pixel_card), stale, keep_dir=keep / "model")
    assert not any("kept" in s for s in stale.stages) and changed[0]["iou"] < rows[0]["iou"]


def pixel_card_tiles(card_path) -> tuple[int, int]:
    raw = json.loads(Path(card_path).read_text())
    return raw["tile_size"], raw["overlap"]


def test_gsd_sweep_of_two_models_on_a_shipped_sample_tile(tmp_path, pixel_card):
    """The shipped default model and a reference model, swept over a real Banepa chip: one curve per model."""
    tile = Path(__file__).parents[2] / "sample_tiles" / "banepa_chip_386690-220241_4326.tif"
    truth = tile.with_name(tile.stem + "_buildings.geojson")
    r = CliRunner().invoke(cli, ["evaluate", str(tile), "--truth", str(truth), "--gsd-sweep", "0.3,0.6",
                                 "-m", "default", "-m", str(pixel_card), "--plot", str(tmp_path / "s.png"), "--json"])
    assert r.exit_code == 0, r.output
    by_model = json.loads(r.stdout)
    assert list(by_model) == ["default", str(pixel_card)]
    for rows in by_model.values():
        assert [x["gsd_m"] for x in rows] == [0.3, 0.6]
        assert len({x["n_truth"] for x in rows}) == 1 and rows[0]["n_truth"] > 20
    assert by_model["default"][0]["iou"] > 0.3, "the default model finds the buildings of a held-out chip"
    assert {x["model"] for x in by_model["default"]} == {get_card("default").name}
    assert {x["model"] for x in by_model[str(pixel_card)]} == {"pixel-test"}
    assert curve_label("default", by_model["default"]) == f"default ({get_card('default').name})"
    assert curve_label(str(pixel_card), by_model[str(pixel_card)]) == "pixel-test", "a card path is shown by its name"
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_gsd_sweep_honours_a_footprint_threshold_and_records_it(tmp_path):
    tile = Path(__file__).parents[2] / "sample_tiles" / "banepa_chip_386690-220241_4326.tif"
    truth = str(tile.with_name(tile.stem + "_buildings.geojson"))
    rows = {}
    for extra in ([], ["--threshold", "0.3"]):
        r = CliRunner().invoke(cli, ["evaluate", str(tile), "--truth", truth, "--gsd-sweep", "0.3", *extra, "--json"])
        assert r.exit_code == 0, r.output
        row = json.loads(r.stdout)[0]
        rows[row["threshold"]] = row
    from geoseg.models.registry import get_card

    card_t = get_card("default").threshold
    assert card_t != 0.3 and set(rows) == {card_t, 0.3}, "the card's threshold by default, else the one given"
    assert rows[0.3]["recall"] > rows[card_t]["recall"], "a lower threshold keeps more building pixels"


def test_a_probability_raster_is_split_along_its_border_band_as_segment_does(tmp_path):
    """Two houses sharing a wall: scored from a `--prob` raster, the border band must separate them."""
    import rasterio

    prob = np.zeros((2, 60, 100), np.uint8)
    prob[0, 20:40, 10:90] = 230
    prob[1, 20:40, 49:51] = 255  # the predicted shared wall
    path = write_raster(tmp_path / "p.tif", prob)
    with rasterio.open(path, "r+") as ds:
        ds.descriptions = ("building", "border")
    truth = tmp_path / "t.gpkg"
    gpd.GeoDataFrame(geometry=[b(20, 10, 40, 50), b(20, 50, 40, 90)], crs=32633).to_file(truth)
    scores = evaluate(str(path), str(truth))
    assert scores["n_pred"] == 2 and scores["obj_tp"] == 2


def test_a_segment_probability_raster_is_scored_at_the_threshold_and_cut_of_its_run(tmp_path):
    """Like `geoseg vectorize`: the run's threshold (its `settings` tag) unless --threshold overrides it."""
    prob = np.zeros((2, 60, 100), np.uint8)
    prob[0, 20:40, 10:40] = 230  # 0.90: a building at either threshold
    prob[0, 20:40, 60:90] = 180  # 0.71: a building at 0.5, not at the run's 0.8
    path = write_raster(tmp_path / "p.tif", prob)
    with rasterio.open(path, "r+") as ds:
        ds.descriptions = ("building", "border")
        ds.update_tags(model="m", settings=json.dumps({"vectorize": {"threshold": 0.8, "border_cut": 0.3}}))
    truth = tmp_path / "t.gpkg"
    gpd.GeoDataFrame(geometry=[b(20, 10, 40, 40)], crs=32633).to_file(truth)
    s = evaluate(str(path), str(truth))
    assert s["threshold"] == 0.8 and s["n_pred"] == 1 and s["iou"] == 1.0
    s = evaluate(str(path), str(truth), threshold=0.5)
    assert s["threshold"] == 0.5 and s["n_pred"] == 2 and s["iou"] == pytest.approx(0.5)


def test_pixel_scores_in_narrow_row_bands_equal_one_pass(tmp_path):
    """Each band burns only the geometries that touch it (an STRtree): the counts must not change."""
    from shapely import affinity

    from geoseg.evaluate.pixels import pixel_scores

    raster = write_raster(tmp_path / "r.tif", scene((100, 100)))
    rng = np.random.default_rng(3)
    boxes = [b(r, c, r + h, c + w) for r, c, h, w in rng.integers(1, 60, size=(30, 4))]
    truth = [affinity.rotate(g, 20) for g in boxes[:15]]  # tilted: their bounds overlap bands they do not touch
    pred = boxes[15:] + [affinity.translate(truth[0], 2, 1)]
    one = pixel_scores(str(raster), truth, pred, rows_per_step=10**6, breakdown=True)
    banded = pixel_scores(str(raster), truth, pred, rows_per_step=7, breakdown=True)
    assert one == banded and one["px_tp"] > 0 and one["px_fp"] > 0 and one["px_fn"] > 0


def test_a_float_probability_in_0_255_is_a_one_line_error_not_a_score(tmp_path):
    prob = np.zeros((1, 100, 100), np.float32)
    prob[0, 10:30, 10:30] = 230.0
    raster = write_raster(tmp_path / "p.tif", prob)
    gpd.GeoDataFrame(geometry=TRUTH[:1], crs=32633).to_file(tmp_path / "t.gpkg")
    r = CliRunner().invoke(cli, ["evaluate", str(raster), "--truth", str(tmp_path / "t.gpkg")])
    assert r.exit_code == 2 and "float probabilities must lie in 0-1" in r.output and "Traceback" not in r.output


def test_only_the_part_of_a_vector_file_around_the_raster_is_read_across_crss(tmp_path):
    from geoseg.evaluate.run import _extent, _grid, read_polygons

    raster = write_raster(tmp_path / "r.tif", scene((100, 100)))  # EPSG:32633, 100 m across
    from shapely import affinity

    far = [affinity.translate(TRUTH[0], xoff=50_000)]  # 50 km east
    gpd.GeoDataFrame(geometry=TRUTH + far, crs=32633).to_crs(4326).to_file(tmp_path / "t.gpkg")
    assert len(read_polygons(str(tmp_path / "t.gpkg"), "truth")) == 4
    near = read_polygons(str(tmp_path / "t.gpkg"), "truth", _extent(_grid(str(raster))))
    assert len(near) == 3
    s = evaluate(str(tmp_path / "t.gpkg"), str(tmp_path / "t.gpkg"), raster=str(raster))
    assert s["n_truth"] == 3 and s["iou"] == 1.0


def test_a_kept_sweep_row_is_not_reused_after_the_card_changes(tmp_path):
    """The kept rows depend on the whole card, not only its weights: a new threshold is a new run."""
    card = make_pixel_model(tmp_path / "model")
    rects = [(21, 23, 99, 98)]
    raster = write_raster(tmp_path / "in.tif", scene((160, 160), rects))
    gpd.GeoDataFrame(geometry=[b(*r) for r in rects], crs=32633).to_file(tmp_path / "t.gpkg")
    args = ["evaluate", str(raster), "--truth", str(tmp_path / "t.gpkg"), "--gsd-sweep", "1", "--model", str(card),
            "--keep", str(tmp_path / "kept"), "--json", "--progress", "json"]

    def sweep():
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 0, r.output
        kept = any("kept from an earlier run" in line for line in r.stderr.splitlines())
        return json.loads(r.stdout)[0], kept

    first, kept = sweep()
    assert not kept
    again, kept = sweep()
    assert kept and again["iou"] == first["iou"], "the same card reuses the kept row"
    raw = json.loads(card.read_text())
    raw["threshold"] = 0.999  # same weights: almost no pixel is a building now
    card.write_text(json.dumps(raw))
    changed, kept = sweep()
    assert not kept and changed["iou"] < first["iou"] - 0.1, (first["iou"], changed["iou"])


def test_the_temporary_folders_of_a_killed_sweep_are_removed_and_a_running_ones_kept(tmp_path):
    import subprocess
    import sys

    from geoseg.evaluate.sweep import TEMP_PREFIX, remove_stale_runs

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    gone = tmp_path / f"{TEMP_PREFIX}{int(dead.stdout)}-abc"
    alive = tmp_path / f"{TEMP_PREFIX}{os.getppid()}-def"
    other = tmp_path / f"{TEMP_PREFIX}notapid"
    for d in (gone, alive, other):
        (d / "sub").mkdir(parents=True)
        (d / "sub" / "b.gpkg").write_text("x")
    assert remove_stale_runs(tmp_path) == [gone]
    assert not gone.exists() and alive.exists() and other.exists()
