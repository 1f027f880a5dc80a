"""The grid's ceiling: a perfect model's scores on a grid of a given GSD."""

import json

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from click.testing import CliRunner
from shapely.geometry import box

from geoseg.cli.main import cli
from geoseg.evaluate import ceiling
from geoseg.georef import work_grid
from geoseg.grid import RasterGrid
from geoseg.io.raster import inspect_raster
from tests.conftest import scene, write_raster

X0, Y0 = 500000.0, 5000000.0


def b(r0, c0, r1, c1):
    """A box in the rows/columns of a 1 m grid at (X0, Y0)."""
    return box(X0 + c0, Y0 - r1, X0 + c1, Y0 - r0)


def test_each_pixel_holds_its_exact_building_share():
    grid = RasterGrid((4, 5), Affine(1.0, 0, X0, 0, -1.0, Y0), "EPSG:32633")
    poly = b(0.25, 0.5, 2.75, 3.0)  # rows 0.25-2.75, columns 0.5-3
    (r0, share), = list(ceiling.building_share([poly], grid, fine_m=0.25))
    assert r0 == 0 and share.shape == (4, 5) and share.dtype == np.float32
    expected = np.zeros((4, 5))
    expected[0, :3] = 0.75
    expected[1, :3] = 1.0
    expected[2, :3] = 0.75
    expected[:3, 0] *= 0.5
    assert np.allclose(share, expected)
    assert share.sum() == pytest.approx(poly.area)


def test_strips_give_the_same_share_as_one_pass(monkeypatch):
    grid = RasterGrid((40, 30), Affine(2.0, 0, X0, 0, -2.0, Y0), "EPSG:32633")
    polys = [box(X0 + 3.3, Y0 - 70.1, X0 + 41.7, Y0 - 12.9), box(X0 + 50, Y0 - 20, X0 + 57, Y0 - 3)]
    whole = np.vstack([s for _, s in ceiling.building_share(polys, grid, fine_m=0.25)])
    monkeypatch.setattr(ceiling, "_FINE_PIXELS", 30 * 8 * 8 * 3)  # three coarse rows per strip
    strips = list(ceiling.building_share(polys, grid, fine_m=0.25))
    assert [r0 for r0, _ in strips] == list(range(0, 40, 3))
    assert np.array_equal(np.vstack([s for _, s in strips]), whole)
    assert whole.sum() * 4 == pytest.approx(sum(p.area for p in polys), rel=0.01)


def _scene(tmp_path):
    rects = [(21, 23, 99, 98), (101, 23, 140, 98), (161, 119, 219, 221)]  # the first two 2 m apart
    raster = write_raster(tmp_path / "in.tif", scene((240, 240), rects))
    gpd.GeoDataFrame(geometry=[b(*r) for r in rects], crs=32633).to_file(tmp_path / "t.gpkg")
    return raster, tmp_path / "t.gpkg"


def test_a_perfect_model_is_perfect_on_the_native_grid_and_loses_outlines_on_coarse_ones(tmp_path):
    raster, truth = _scene(tmp_path)
    grid = inspect_raster(str(raster)).grid
    rows = {g: ceiling.grid_ceiling(str(raster), str(truth), work_grid(grid, g), tmp_path / f"o{g}") for g in (1, 4, 8)}
    assert rows[1]["iou"] > 0.995 and rows[1]["obj_f1"] == 1.0
    assert rows[1]["iou"] > rows[4]["iou"] > rows[8]["iou"] > 0.8, [r["iou"] for r in rows.values()]
    assert rows[8]["obj_f1"] < 1.0, "at 8 m the two buildings 2 m apart merge into one footprint"
    assert (tmp_path / "o8.tif").exists() and (tmp_path / "o8.gpkg").exists()


def test_sweep_reports_the_ceiling_of_each_run(tmp_path, pixel_card):
    raster, truth = _scene(tmp_path)
    keep = tmp_path / "kept"
    args = ["evaluate", str(raster), "--truth", str(truth), "--gsd-sweep", "1,4,8", "--model", str(pixel_card)]
    r = CliRunner().invoke(cli, [*args, "--ceiling", "--keep", str(keep), "--plot", str(tmp_path / "s.png"), "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    best = [x["ceiling_iou"] for x in rows]
    assert best[0] > best[1] > best[2], best
    assert all(x["ceiling_iou"] >= x["iou"] - 0.02 for x in rows), "the per-pixel model is no better than perfect"
    assert all({"ceiling_f1", "ceiling_obj_f1"} <= set(x) for x in rows)
    assert (keep / f"{rows[2]['model']}_8m_oracle.gpkg").exists()
    assert (tmp_path / "s.png").stat().st_size > 1000

    plain = json.loads(CliRunner().invoke(cli, [*args, "--keep", str(keep), "--json"]).stdout)
    assert not any("ceiling_iou" in x for x in plain), "a row kept with the ceiling is not reused without it"
    assert [x["iou"] for x in plain] == [x["iou"] for x in rows]

    r = CliRunner().invoke(cli, [*args, "--ceiling", "--progress", "json", "--json"])
    stages = [json.loads(line) for line in r.stderr.splitlines() if "perfect model" in line]
    assert {(x["stage"], x["done"] == x["total"]) for x in stages if x["done"] == x["total"]} == {
        (f"pixel-test @ {g} m: perfect model on the same grid", True) for g in (1, 4, 8)}, "each ceiling stage ends"

    r = CliRunner().invoke(cli, [*args, "--ceiling", "--keep", str(keep)])
    header = [line for line in r.stdout.splitlines() if line.startswith("model")]
    assert r.exit_code == 0 and header and header[0].split()[-2:] == ["ceiling_iou", "ceiling_obj_f1"], r.stdout
    r = CliRunner().invoke(cli, [*args, "--ceiling", "--sweep-mode", "imagery", "--json"])
    imagery = json.loads(r.stdout)
    assert {x["run_gsd_m"] for x in imagery} == {1.0}
    assert all(x["ceiling_iou"] == pytest.approx(best[0], abs=0.01) for x in imagery), \
        "in imagery mode every run is on a 1 m grid, and so is the perfect model"

    r = CliRunner().invoke(cli, ["evaluate", str(raster), "--truth", str(truth), "--ceiling"])
    assert r.exit_code == 2 and "--gsd-sweep" in r.output


def test_the_ceiling_matches_objects_at_the_iou_it_is_given(tmp_path):
    """On an 8 m grid the perfect model's outlines are staircases: they match at IoU 0.5, not at 0.99."""
    raster, truth = _scene(tmp_path)
    grid = work_grid(inspect_raster(str(raster)).grid, 8)
    loose = ceiling.grid_ceiling(str(raster), str(truth), grid, tmp_path / "a")
    strict = ceiling.grid_ceiling(str(raster), str(truth), grid, tmp_path / "b", iou_threshold=0.99)
    assert loose["obj_tp"] > 0 and strict["obj_tp"] == 0 and strict["iou_threshold"] == 0.99
    assert strict["iou"] == loose["iou"], "pixel scores do not depend on it"


def test_an_interrupted_oracle_leaves_no_raster(tmp_path, monkeypatch):
    raster, truth = _scene(tmp_path)
    grid = work_grid(inspect_raster(str(raster)).grid, 1)

    def broken(*args, **kwargs):
        yield 0, np.zeros((1, grid.shape_yx[1]), np.float32)
        raise KeyboardInterrupt

    monkeypatch.setattr(ceiling, "building_share", broken)
    with pytest.raises(KeyboardInterrupt):
        ceiling.grid_ceiling(str(raster), str(truth), grid, tmp_path / "o")
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(("o", ".o"))]


def test_the_ceiling_reads_only_the_truth_around_its_grid(tmp_path, monkeypatch):
    from geoseg.evaluate import run

    raster, truth = _scene(tmp_path)
    seen = []
    real = run.read_polygons
    monkeypatch.setattr(run, "read_polygons", lambda path, what, within=None, **kw: (
        seen.append((what, within)), real(path, what, within, **kw))[1])
    ceiling.grid_ceiling(str(raster), str(truth), work_grid(inspect_raster(str(raster)).grid, 4), tmp_path / "o")
    assert seen and all(within is not None for what, within in seen if what == "truth"), seen
