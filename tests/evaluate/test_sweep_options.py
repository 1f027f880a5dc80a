"""`geoseg evaluate --gsd-sweep`: its options reach every run, its checks come before any run, and what it keeps
or warns of is not repeated or mixed up."""

from __future__ import annotations

import json
import math

import geopandas as gpd
import pytest
from click.testing import CliRunner
from shapely import affinity
from shapely.geometry import box

from geoseg.cli.main import cli
from geoseg.errors import ConfigError, LabelWarning
from geoseg.evaluate.sweep import gsd_sweep, gsd_text, run_names
from tests.conftest import make_pixel_model, scene, write_raster

X0, Y0 = 500000, 5000000
RECTS = [(10, 10, 30, 30), (10, 50, 30, 70), (50, 10, 70, 40)]


def b(r0, c0, r1, c1):
    return box(X0 + c0, Y0 - r1, X0 + c1, Y0 - r0)


@pytest.fixture
def tile(tmp_path):
    """A 100 x 100 px, 1 m scene of three bright buildings; the truth drawn 5 m east (match IoUs 0.6, 0.6, 0.71)."""
    raster = write_raster(tmp_path / "img.tif", scene((100, 100), RECTS))
    gpd.GeoDataFrame(geometry=[affinity.translate(b(*r), 5, 0) for r in RECTS], crs=32633).to_file(tmp_path / "t.gpkg")
    return str(raster), str(tmp_path / "t.gpkg")


class _NoRun:
    """A progress reporter that fails the test if any model run starts."""

    def update(self, *args):
        raise AssertionError("a model ran before the inputs were checked")

    def cancelled(self):
        return False


class _Stages:
    def __init__(self):
        self.stages = []

    def update(self, done, total, stage):
        self.stages.append(stage)

    def cancelled(self):
        return False


def _sweep_cli(raster, truth, *args):
    r = CliRunner().invoke(cli, ["evaluate", raster, "--truth", truth, *args])
    assert r.exit_code == 0, r.output
    return r


def test_a_sweep_matches_objects_at_the_given_iou_and_a_kept_row_of_another_iou_is_not_reused(tmp_path, tile,
                                                                                             pixel_card):
    raster, truth = tile
    args = ["--gsd-sweep", "1", "-m", str(pixel_card), "--keep", str(tmp_path / "k"), "--json", "--progress", "json"]
    loose = _sweep_cli(raster, truth, *args)
    strict = _sweep_cli(raster, truth, *args, "--iou", "0.7")
    assert "kept from an earlier run" not in strict.stderr, "the row kept at IoU 0.5 is not the answer at 0.7"
    (row05,), (row07,) = json.loads(loose.stdout), json.loads(strict.stdout)
    assert (row05["iou_threshold"], row05["obj_tp"]) == (0.5, 3)
    assert (row07["iou_threshold"], row07["obj_tp"]) == (0.7, 1)
    again = _sweep_cli(raster, truth, *args, "--iou", "0.7")
    assert "kept from an earlier run" in again.stderr and json.loads(again.stdout) == [row07]


def test_cards_that_share_a_name_keep_their_own_files_rows_and_curves(tmp_path, tile):
    raster, truth = tile
    a = make_pixel_model(tmp_path / "a", gain=8.0)
    c = make_pixel_model(tmp_path / "c", gain=6.0)  # a fine-tuned copy: same name, other weights
    names = run_names([str(a), str(c)])
    assert len(set(names.values())) == 2 and all(n.startswith("pixel-test-") for n in names.values())
    assert run_names([str(a)]) == {str(a): "pixel-test"}
    same = make_pixel_model(tmp_path / "same", gain=8.0)  # the same weights under another path
    assert sorted(run_names([str(a), str(same)]).values()) == ["pixel-test-1", "pixel-test-2"]
    args = ["--gsd-sweep", "1", "-m", str(a), "-m", str(c), "--keep", str(tmp_path / "k")]
    by_model = json.loads(_sweep_cli(raster, truth, *args, "--json").stdout)
    preds = [rows[0]["pred"] for rows in by_model.values()]
    assert len(set(preds)) == 2 and len(list((tmp_path / "k").glob("*_row.json"))) == 2
    table = _sweep_cli(raster, truth, *args, "--progress", "json")
    assert table.stderr.count("kept from an earlier run") == 2, "a rerun reuses both runs"
    labels = [line.split()[0] for line in table.stdout.splitlines()[1:]]
    assert sorted(labels) == sorted(names.values())


def test_gsds_that_are_not_positive_metres_are_refused_by_the_library_too(tile, pixel_card):
    raster, truth = tile
    for gsds in ([0], [-1.0], [math.nan], [math.inf], []):
        with pytest.raises(ConfigError, match="GSD"):
            gsd_sweep(raster, truth, gsds, str(pixel_card), _NoRun())


def test_a_gsd_far_finer_than_the_raster_is_refused_before_any_run(tmp_path, tile, pixel_card):
    raster, truth = tile
    with pytest.raises(ConfigError, match=r"0.001 m is over 8 times finer .* 100040 x 100040 px"):
        gsd_sweep(raster, truth, [1, 0.001], str(pixel_card), _NoRun())
    r = CliRunner().invoke(cli, ["evaluate", raster, "--truth", truth, "--gsd-sweep", "0.001", "-m", str(pixel_card),
                                 "--keep", str(tmp_path / "k")])
    assert r.exit_code == 2 and "times finer" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "k").exists()


def test_a_sweep_whose_truth_misses_the_raster_warns_once_before_the_runs(tmp_path, tile, pixel_card):
    raster, _ = tile
    far = [affinity.translate(b(*r), 10_000, 0) for r in RECTS]
    gpd.GeoDataFrame(geometry=far, crs=32633).to_file(tmp_path / "far.gpkg")
    seen = []

    class Progress(_Stages):
        def update(self, done, total, stage):
            seen.append(len(rec))
            super().update(done, total, stage)

    with pytest.warns(LabelWarning, match="no polygon of .*far.gpkg lies on the valid area") as rec:
        rows = gsd_sweep(raster, str(tmp_path / "far.gpkg"), [1, 2], str(pixel_card), Progress())
    assert [r["n_truth"] for r in rows] == [0, 0]
    assert len([w for w in rec if "no polygon of" in str(w.message)]) == 1 and seen[0] >= 1, "once, up front"
    r = _sweep_cli(raster, str(tmp_path / "far.gpkg"), "--gsd-sweep", "1,2", "-m", str(pixel_card))
    assert r.stderr.count("no polygon of") == 1


def test_warnings_every_run_repeats_are_shown_once(tmp_path, pixel_card):
    gray = write_raster(tmp_path / "gray.tif", scene((100, 100), RECTS)[:1])  # one band: replicated to three
    gpd.GeoDataFrame(geometry=[b(*r) for r in RECTS], crs=32633).to_file(tmp_path / "t.gpkg")
    r = _sweep_cli(str(gray), str(tmp_path / "t.gpkg"), "--gsd-sweep", "1,2,4", "-m", str(pixel_card))
    assert r.stderr.count("replicated") == 1, r.stderr


def test_a_sweep_reads_only_the_truth_around_its_raster(tile, pixel_card, monkeypatch):
    from geoseg.evaluate import run

    raster, truth = tile
    seen = []
    real = run.read_polygons
    monkeypatch.setattr(run, "read_polygons", lambda path, what, within=None, **kw: (
        seen.append((what, within)), real(path, what, within, **kw))[1])
    gsd_sweep(raster, truth, [1, 2], str(pixel_card), ceiling=True)
    truth_reads = [within for what, within in seen if what == "truth"]
    assert len(truth_reads) >= 5 and all(w is not None for w in truth_reads), "up front, each run and each ceiling"


def test_kept_files_tell_close_gsds_apart():
    assert [gsd_text(g) for g in (1.0, 2.5, 0.3, 0.15)] == ["1", "2.5", "0.3", "0.15"]
    assert gsd_text(0.1234561) != gsd_text(0.1234564)


@pytest.mark.parametrize("args, needle", [
    (["--gsd-sweep", "1", "--raster", "nope.tif"], "leave --raster out"),
    (["-m", "nosuchmodel"], "--model runs with --gsd-sweep only"),
    (["--threshold", "0.9"], "--threshold applies to a probability raster"),
])
def test_options_that_would_be_ignored_are_usage_errors(tmp_path, args, needle):
    gpd.GeoDataFrame(geometry=[b(*r) for r in RECTS], crs=32633).to_file(tmp_path / "t.gpkg")
    r = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "t.gpkg"), "--truth", str(tmp_path / "t.gpkg"), *args])
    assert r.exit_code == 2 and needle in r.output and "Traceback" not in r.output, r.output
