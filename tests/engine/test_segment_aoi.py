"""``segment`` limited to an area of interest (``--aoi``), with the per-pixel reference model (exact expectations)."""

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from shapely.geometry import box

from geoseg.config import SegmentConfig, VectorizeConfig
from geoseg.engine.segment import segment
from geoseg.errors import Cancelled, InputError
from geoseg.progress import NullProgress
from tests.conftest import write_raster
from tests.engine.test_segment import UTM, CancelAfter, rect_geom, scene

# inside the aoi, across its right edge (col 150, mostly inside), across it (mostly outside), far outside
RECTS = [(40, 20, 80, 60), (100, 120, 140, 170), (160, 140, 190, 200), (20, 300, 60, 340)]
AOI_RC = (10, 10, 230, 150)  # rows 10..230, cols 10..150 of the 240 x 400 scene


def cfg(card, **kw):
    return SegmentConfig(model=str(card), vectorize=VectorizeConfig(min_area_m2=10, split_touching=False), **kw)


@pytest.fixture
def src(tmp_path):
    return write_raster(tmp_path / "in.tif", scene((240, 400), RECTS))


@pytest.fixture
def aoi(tmp_path):
    path = tmp_path / "aoi.geojson"  # drawn in lon/lat: the engine brings it onto the raster's CRS
    gpd.GeoDataFrame(geometry=[rect_geom(*AOI_RC)], crs="EPSG:32633").to_crs("EPSG:4326").to_file(path)
    return str(path)


def bounds(geom):
    return tuple(round(v) for v in geom.bounds)


def test_buildings_inside_the_aoi_come_out_whole_and_others_not_at_all(tmp_path, pixel_card, src, aoi):
    full = segment(str(src), None, None, cfg(pixel_card))
    res = segment(str(src), tmp_path / "b.gpkg", None, cfg(pixel_card, aoi=aoi))
    assert sorted(bounds(g) for g in res.footprints.geometry) == sorted(bounds(rect_geom(*r)) for r in RECTS[:2])
    assert res.plan.tiles.n_cols < full.plan.tiles.n_cols and not res.plan.resampled
    assert len(gpd.read_file(tmp_path / "b.gpkg")) == 2


def test_aoi_clip_cuts_footprints_at_its_edge(tmp_path, pixel_card, src, aoi):
    res = segment(str(src), None, None, cfg(pixel_card, aoi=aoi, aoi_clip=True))
    got = sorted(res.footprints.itertuples(), key=lambda f: f.geometry.bounds)
    expected = [(40, 20, 80, 60), (100, 120, 140, 150), (160, 140, 190, 150)]  # rows and cols cut at col 150
    assert [bounds(f.geometry) for f in got] == [bounds(rect_geom(*r)) for r in expected]
    assert [f.area_m2 for f in got] == pytest.approx([(r1 - r0) * (c1 - c0) for r0, c0, r1, c1 in expected], rel=0.05)


def test_with_no_margin_a_building_across_the_edge_is_cut_by_the_prediction_itself(pixel_card, src, aoi):
    res = segment(str(src), None, None, cfg(pixel_card, aoi=aoi, aoi_margin_m=0))
    assert sorted(bounds(g) for g in res.footprints.geometry)[1] == bounds(rect_geom(100, 120, 140, 150))


def test_probability_raster_covers_the_aoi_on_the_input_pixels_and_is_nodata_outside_it(tmp_path, pixel_card, src, aoi):
    segment(str(src), None, tmp_path / "full.tif", cfg(pixel_card), return_footprints=False)
    segment(str(src), None, tmp_path / "p.tif", cfg(pixel_card, aoi=aoi), return_footprints=False)
    with rasterio.open(tmp_path / "full.tif") as a, rasterio.open(tmp_path / "p.tif") as b:
        col, row = ~a.transform @ (b.transform.c, b.transform.f)
        assert (col, row) == (round(col), round(row)) and b.transform.a == a.transform.a and b.crs == a.crs
        assert b.width < a.width
        win = rasterio.windows.Window(col, row, b.width, b.height)
        inside = np.zeros((240, 400), bool)
        inside[AOI_RC[0]:AOI_RC[2], AOI_RC[1]:AOI_RC[3]] = True
        inside = inside[int(row):int(row) + b.height, int(col):int(col) + b.width]
        assert np.array_equal(b.dataset_mask() > 0, inside)
        assert np.array_equal(b.read(1)[inside], a.read(1, window=win)[inside])  # same values as the full run


def test_a_resampled_run_keeps_whole_buildings_and_writes_on_the_input_grid(tmp_path, pixel_card, src, aoi):
    res = segment(str(src), None, tmp_path / "p.tif", cfg(pixel_card, aoi=aoi, gsd_m=2.0))
    assert res.plan.resampled
    assert len(res.footprints) == 2
    big = res.footprints.geometry[res.footprints.area_m2.idxmax()]
    assert big.intersection(rect_geom(*RECTS[1])).area / big.union(rect_geom(*RECTS[1])).area > 0.85
    with rasterio.open(tmp_path / "p.tif") as b:
        col, row = ~UTM @ (b.transform.c, b.transform.f)
        assert (col, row) == (AOI_RC[1], AOI_RC[0]) and b.res == (1.0, 1.0)  # the input's pixels under the aoi
        assert b.shape == (AOI_RC[2] - AOI_RC[0], AOI_RC[3] - AOI_RC[1]) and (b.dataset_mask() > 0).mean() > 0.98


def test_an_aoi_over_nodata_only_is_refused(tmp_path, pixel_card, aoi):
    m = np.ones((240, 400), bool)
    m[:, :200] = False
    src = write_raster(tmp_path / "in.tif", scene((240, 400), RECTS), mask=m)
    with pytest.raises(InputError, match="no valid pixel centred inside the aoi .* widen the aoi or --aoi-margin"):
        segment(str(src), tmp_path / "o.gpkg", None, cfg(pixel_card, aoi=aoi, aoi_margin_m=0))
    assert not (tmp_path / "o.gpkg").exists()


def test_a_changed_aoi_does_not_reuse_the_finished_tiles(tmp_path, pixel_card, src, aoi):
    with pytest.raises(Cancelled):
        segment(str(src), None, tmp_path / "o.tif", cfg(pixel_card, aoi=aoi), progress=CancelAfter(1), return_footprints=False)
    again = segment(str(src), None, tmp_path / "o.tif", cfg(pixel_card, aoi=aoi, aoi_margin_m=20), return_footprints=False)
    assert not again.resumed


def test_an_interrupted_aoi_run_resumes(tmp_path, pixel_card, src, aoi):
    ref = segment(str(src), None, None, cfg(pixel_card, aoi=aoi))
    with pytest.raises(Cancelled):
        segment(str(src), tmp_path / "o.gpkg", None, cfg(pixel_card, aoi=aoi), progress=CancelAfter(1))
    res = segment(str(src), tmp_path / "o.gpkg", None, cfg(pixel_card, aoi=aoi))
    assert res.resumed and res.stats.chunks_reused > 0
    assert all(a.equals_exact(b, 1e-6) for a, b in zip(ref.footprints.geometry, res.footprints.geometry))


def test_a_building_inside_the_aoi_bounds_but_outside_its_polygon_is_not_predicted(tmp_path, pixel_card, src):
    from shapely.geometry import Polygon

    t = UTM
    corner = Polygon([t @ (0, 0), t @ (400, 0), t @ (400, 240)])  # the triangle above the diagonal (0,0)-(400,240)
    path = tmp_path / "tri.gpkg"
    gpd.GeoDataFrame(geometry=[corner], crs="EPSG:32633").to_file(path)
    res = segment(str(src), None, None, cfg(pixel_card, aoi=str(path), aoi_margin_m=0))
    # RECTS[0] (rows 40..80, cols 20..60) lies below the diagonal; RECTS[3] (rows 20..60, cols 300..340) above it
    assert [bounds(g) for g in res.footprints.geometry] == [bounds(rect_geom(*RECTS[3]))]
    assert res.stats.tiles_empty > 0  # tiles wholly below the diagonal are never run


def test_the_plan_counts_only_the_tiles_an_aoi_needs(tmp_path, pixel_card, src):
    from shapely.geometry import Polygon

    from geoseg.engine.plan import plan_for
    from geoseg.models.registry import get_card

    path = tmp_path / "tri.gpkg"
    gpd.GeoDataFrame(geometry=[Polygon([UTM @ (0, 0), UTM @ (400, 0), UTM @ (400, 240)])], crs="EPSG:32633").to_file(path)
    card = get_card(str(pixel_card))
    _, plan = plan_for(str(src), card, cfg(pixel_card, aoi=str(path), aoi_margin_m=0))
    res = segment(str(src), None, None, cfg(pixel_card, aoi=str(path), aoi_margin_m=0))
    assert plan.tiles_to_run == res.stats.tiles_predicted < len(plan.tiles)
    assert plan.describe()["tiles_in_aoi"] == plan.tiles_to_run


def test_dst_crs_outputs_cover_the_aoi(tmp_path, pixel_card, src, aoi):
    res = segment(str(src), tmp_path / "b.gpkg", tmp_path / "p.tif", cfg(pixel_card, aoi=aoi, dst_crs="EPSG:4326"))
    assert res.footprints.crs.to_epsg() == 4326 and len(res.footprints) == 2
    area = gpd.read_file(aoi).geometry[0]
    with rasterio.open(tmp_path / "p.tif") as ds:
        assert ds.crs.to_epsg() == 4326
        left, bottom, right, top = ds.bounds
        assert box(left, bottom, right, top).intersection(area).area / area.area > 0.99  # covers the area
        assert box(left, bottom, right, top).area / area.area < 1.2  # and not much more
        assert 0.8 < (ds.dataset_mask() > 0).mean() <= 1.0


def test_the_shipped_model_gives_an_aoi_the_buildings_and_values_of_the_whole_run(tmp_path):
    """A real CNN sees context, so its output depends on where tiles fall: the aoi run uses the whole run's tiles."""
    from pathlib import Path

    from geoseg.aoi import inside

    tile = Path(__file__).parents[2] / "sample_tiles" / "banepa_z20_crop_3857.tif"
    small = {"model": "default", "gsd_m": 0.15, "tile_size": 256, "overlap": 32}  # 16 tiles: some across the area's edge
    whole = segment(str(tile), tmp_path / "w.gpkg", tmp_path / "w.tif", SegmentConfig(**small))
    with rasterio.open(tile) as ds:
        left, bottom, right, top = ds.bounds
    w, h = right - left, top - bottom
    area = box(left + 0.35 * w, bottom + 0.4 * h, left + 0.6 * w, bottom + 0.65 * h)
    path = tmp_path / "area.gpkg"
    gpd.GeoDataFrame(geometry=[area], crs="EPSG:3857").to_file(path)
    part = segment(str(tile), tmp_path / "a.gpkg", tmp_path / "a.tif", SegmentConfig(**small, aoi=str(path), aoi_margin_m=10))
    assert part.stats.tiles_predicted < whole.stats.tiles_predicted
    mine = whole.footprints[inside(whole.footprints, area)]
    assert len(part.footprints) == len(mine) > 0
    for g in part.footprints.geometry:
        assert max(g.intersection(h).area / g.union(h).area for h in mine.geometry) > 0.9
    with rasterio.open(tmp_path / "w.tif") as w, rasterio.open(tmp_path / "a.tif") as a:
        col, row = ~w.transform @ (a.transform.c, a.transform.f)
        ok = a.dataset_mask() > 0
        got = a.read(1).astype(int)[ok]
        ref = w.read(1, window=rasterio.windows.Window(round(col), round(row), a.width, a.height)).astype(int)[ok]
    assert ok.mean() > 0.9 and np.abs(got - ref).max() <= 3  # measured: 1 (not snapped to the tiles: 248)


class Recorder(NullProgress):
    def __init__(self):
        self.seen = []

    def update(self, done, total, stage):
        if stage == "predict":
            self.seen.append((done, total))


def test_an_aoi_of_far_apart_parts_reads_only_their_tiles_and_gives_the_whole_runs_values(tmp_path, pixel_card):
    near, far, between = (15, 15, 40, 40), (200, 350, 225, 375), (100, 180, 140, 220)
    src = write_raster(tmp_path / "in.tif", scene((240, 400), [near, far, between]))
    path = tmp_path / "two.gpkg"  # one corner each: their bounding box is the whole raster
    gpd.GeoDataFrame(geometry=[rect_geom(5, 5, 60, 60), rect_geom(180, 330, 235, 395)], crs="EPSG:32633").to_file(path)
    full = segment(str(src), None, tmp_path / "full.tif", cfg(pixel_card))
    rec = Recorder()
    res = segment(str(src), None, tmp_path / "aoi.tif", cfg(pixel_card, aoi=str(path), aoi_margin_m=0), progress=rec)
    assert sorted(bounds(g) for g in res.footprints.geometry) == sorted(bounds(rect_geom(*r)) for r in (near, far))
    area = res.plan.work_grid.width * res.plan.work_grid.height
    assert res.plan.work_grid.shape_yx == full.plan.work_grid.shape_yx  # the aoi's box: the whole raster
    assert full.stats.pixels_read >= area and res.stats.pixels_read < 0.3 * full.stats.pixels_read  # rows overlap
    assert rec.seen[-1] == (res.plan.tiles_to_run, res.plan.tiles_to_run) and res.plan.tiles_to_run < len(res.plan.tiles) // 3
    assert [d for d, _ in rec.seen] == sorted(d for d, _ in rec.seen)
    with rasterio.open(tmp_path / "full.tif") as a, rasterio.open(tmp_path / "aoi.tif") as b:
        assert b.shape == (230, 390) and b.transform == a.transform * Affine.translation(5, 5)  # the aoi's box
        whole, part, ok = a.read(1)[5:235, 5:395], b.read(1), b.read_masks(1) > 0
    inside = np.zeros(whole.shape, bool)
    inside[0:55, 0:55] = inside[175:230, 325:390] = True
    assert (ok == inside).all() and (part[ok] == whole[ok]).all()


def test_an_aoi_run_s_probabilities_match_the_whole_run_s_when_the_working_grid_is_finer(tmp_path, pixel_card):
    """Working grid 0.7 m, input 1 m: the warp back to the input grid uses one kernel whatever the output's extent,
    so the aoi's cropped raster holds the whole run's values (it differed by up to 11 levels)."""
    from geoseg import segment as run

    t = Affine(1.0, 0, 500000.0, 0, -1.0, 5000000.0)
    src = write_raster(tmp_path / "in.tif", np.random.default_rng(3).integers(0, 256, (3, 240, 320), dtype=np.uint8),
                       transform=t)
    gpd.GeoDataFrame(geometry=[box(*(t * (10, 200)), *(t * (60, 150)))], crs="EPSG:32633").to_file(tmp_path / "aoi.gpkg")
    kw = {"model": str(pixel_card), "gsd_m": 0.7, "precision": "fp32"}
    run(str(src), prob=str(tmp_path / "full.tif"), **kw)
    run(str(src), prob=str(tmp_path / "aoi.tif"), aoi=str(tmp_path / "aoi.gpkg"), aoi_margin_m=5, **kw)
    with rasterio.open(tmp_path / "full.tif") as f, rasterio.open(tmp_path / "aoi.tif") as a:
        c0, r0 = (round(v) for v in ~f.transform * (a.transform.c, a.transform.f))
        inside = a.dataset_mask() > 0
        d = np.abs(f.read(1)[r0:r0 + a.height, c0:c0 + a.width].astype(int) - a.read(1))[inside]
    assert inside.sum() == 2500 and d.max() <= 1, (int(d.max()), int((d > 1).sum()))


def test_with_dst_crs_an_area_run_is_pixel_aligned_with_the_whole_run(tmp_path, pixel_card, src, aoi):
    """The area's output grid was the cropped input's own reprojection: pixels 0.9911 as wide, at a fractional offset,
    so area runs did not mosaic with each other or with a whole run."""
    segment(str(src), None, tmp_path / "whole.tif", cfg(pixel_card, dst_crs="EPSG:4326"), return_footprints=False)
    segment(str(src), None, tmp_path / "part.tif", cfg(pixel_card, dst_crs="EPSG:4326", aoi=aoi),
            return_footprints=False)
    with rasterio.open(tmp_path / "whole.tif") as w, rasterio.open(tmp_path / "part.tif") as p:
        assert p.res == w.res
        col, row = ~w.transform @ (p.transform.c, p.transform.f)
        assert col == pytest.approx(round(col), abs=1e-6) and row == pytest.approx(round(row), abs=1e-6)
        whole = w.read(1, window=rasterio.windows.Window(round(col), round(row), p.width, p.height))
        part, valid = p.read(1), p.read_masks(1) > 0
    assert valid.mean() > 0.5 and np.abs(whole[valid].astype(int) - part[valid]).max() <= 1
