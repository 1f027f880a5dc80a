"""End-to-end engine behaviour with the per-pixel reference model (exact expectations)."""

import itertools

import numpy as np
import pytest
import rasterio
from affine import Affine
from shapely.geometry import box

from geoseg.config import SegmentConfig, VectorizeConfig
from geoseg.engine.segment import segment
from geoseg.errors import Cancelled, InputError
from geoseg.progress import NullProgress
from tests.conftest import FIJI, scene, write_raster

UTM = Affine(1.0, 0, 500000.0, 0, -1.0, 5000000.0)


def cfg(card, **kw):
    return SegmentConfig(model=str(card), vectorize=VectorizeConfig(min_area_m2=10, split_touching=False), **kw)


def rect_geom(r0, c0, r1, c1, t=UTM):
    x0, y0 = t @ (c0, r0)
    x1, y1 = t @ (c1, r1)
    return box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def iou(a, b):
    return a.intersection(b).area / a.union(b).area


def test_building_across_tile_borders_is_one_polygon(tmp_path, pixel_card):
    # tiles of 64 with overlap 16: rows/cols 48..64 are shared; this building spans both seams
    rects = [(30, 30, 90, 100), (120, 150, 140, 170)]
    src = write_raster(tmp_path / "in.tif", scene((200, 300), rects))
    res = segment(str(src), tmp_path / "out.gpkg", None, cfg(pixel_card))
    gdf = res.footprints
    assert len(gdf) == 2
    assert res.plan.tiles.n_rows > 2 and res.plan.tiles.n_cols > 2
    big = gdf.loc[gdf.area_m2.idxmax()]
    assert iou(big.geometry, rect_geom(30, 30, 90, 100)) > 0.97
    assert big.area_m2 == pytest.approx(60 * 70, rel=0.04)
    assert (tmp_path / "out.gpkg").is_file()
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir()), "work/temp files left behind"


@pytest.mark.parametrize("blend", ["cosine", "gaussian", "crop"])
def test_blending_reproduces_a_per_pixel_model_exactly(tmp_path, pixel_card, blend):
    """For a per-pixel model every tile agrees, so any correct blend returns the single-pass value."""
    data = scene((150, 170), [(10, 10, 60, 80)])
    src = write_raster(tmp_path / "in.tif", data)
    segment(str(src), None, tmp_path / "p.tif", cfg(pixel_card, blend=blend), return_footprints=False)
    x = (data.astype(np.float64) - 127.5) / 127.5
    expected = np.round(255 / (1 + np.exp(-8.0 * x.mean(axis=0))))
    with rasterio.open(tmp_path / "p.tif") as ds:
        got = ds.read(1).astype(np.float64)
    assert np.abs(got - expected).max() <= 2  # fp16 weights, bf16/fp32 compute, uint8 rounding


def test_probability_raster_is_on_the_input_grid_with_mask(tmp_path, pixel_card):
    mask = np.ones((120, 130), bool)
    mask[:, 100:] = False
    data = scene((120, 130), [(10, 105, 40, 125), (60, 20, 90, 60)])  # first one lies in nodata
    src = write_raster(tmp_path / "in.tif", data, mask=mask)
    res = segment(str(src), tmp_path / "b.geojson", tmp_path / "p.tif", cfg(pixel_card))
    with rasterio.open(src) as a, rasterio.open(tmp_path / "p.tif") as b:
        assert (a.crs, a.transform, a.shape) == (b.crs, b.transform, b.shape)
        assert b.dtypes[0] == "uint8" and b.compression is not None
        valid = b.dataset_mask() > 0
        assert np.array_equal(valid, mask)
        assert b.tags()["model"] == "pixel-test"
    assert len(res.footprints) == 1, "a bright area under nodata must never become a building"


def test_all_nodata_raster_is_refused_and_writes_nothing(tmp_path, pixel_card):
    src = write_raster(tmp_path / "in.tif", scene((80, 80)), mask=np.zeros((80, 80), bool))
    with pytest.raises(InputError, match="no valid pixels"):
        segment(str(src), tmp_path / "o.gpkg", tmp_path / "p.tif", cfg(pixel_card))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_geographic_input_footprints_overlay_the_input(tmp_path, pixel_card):
    """EPSG:4326 in: the engine works in UTM at the model GSD, results come back in 4326 in place."""
    t = Affine(1e-5, 0, 9.5, 0, -1e-5, 45.2)  # ~0.79 x 1.11 m pixels; the model runs at 1 m in UTM 32N
    rects = [(20, 20, 60, 90), (100, 120, 160, 150)]
    src = write_raster(tmp_path / "geo.tif", scene((200, 200), rects), crs="EPSG:4326", transform=t)
    res = segment(str(src), tmp_path / "o.parquet", tmp_path / "p.tif", cfg(pixel_card))
    assert res.plan.resampled and res.plan.work_grid.crs.to_epsg() == 32632
    gdf = res.footprints
    assert gdf.crs.to_epsg() == 4326 and len(gdf) == 2
    assert (gdf["gsd_m"] == 1.0).all()  # the model's GSD, not the UTM grid's ground size there (1.0004 m)
    truths = [rect_geom(*r, t=t) for r in rects]
    for truth in truths:
        best = max(iou(g, truth) for g in gdf.geometry)
        assert best > 0.85
    with rasterio.open(src) as a, rasterio.open(tmp_path / "p.tif") as b:
        assert (a.crs, a.transform, a.shape) == (b.crs, b.transform, b.shape)
        prob = b.read(1)
    assert prob[30:50, 30:80].min() > 200 and prob[170:, :100].max() < 50


def test_a_geographic_raster_past_180_degrees_is_read_and_mapped_there(tmp_path, pixel_card):
    """Longitudes past 180 (as gdalwarp writes them over Fiji): the part east of 180 was read as nodata and lost."""
    t = FIJI
    rects = [(20, 40, 60, 110), (100, 200, 160, 260), (200, 120, 260, 190)]  # the second and third straddle or pass 180
    src = write_raster(tmp_path / "fiji.tif", scene((300, 300), rects), crs="EPSG:4326", transform=t)
    res = segment(str(src), tmp_path / "o.gpkg", tmp_path / "p.tif", cfg(pixel_card))
    with rasterio.open(tmp_path / "p.tif") as ds:
        assert (ds.crs, ds.transform) == (rasterio.crs.CRS.from_epsg(4326), t)
        mask, prob = ds.dataset_mask(), ds.read(1)
    assert (mask[2:-2, 2:-2] == 255).all()  # east of 180 too
    assert prob[110:150, 210:250].min() > 200
    gdf = res.footprints
    assert len(gdf) == 3 and (gdf.geometry.bounds.maxx - gdf.geometry.bounds.minx).max() < 1e-3
    for r in rects:
        assert max(iou(g, rect_geom(*r, t=t)) for g in gdf.geometry) > 0.85
    assert gdf.geometry.bounds.maxx.max() > 180.0


@pytest.mark.parametrize("margin", [0.0, 50.0])
def test_an_aoi_stored_in_minus_180_to_180_selects_on_a_raster_past_180(tmp_path, pixel_card, margin):
    """OSM-style aoi polygons (longitudes in [-180, 180]) over a raster written past 180: the aoi was 360 degrees
    away from the raster, so nothing lay on it. Now it selects as the same aoi written past 180 does."""
    import geopandas as gpd

    t = FIJI
    rects = [(20, 40, 60, 110), (100, 200, 160, 260), (200, 120, 260, 190)]  # west, east, inside point east
    src = write_raster(tmp_path / "fiji.tif", scene((300, 300), rects), crs="EPSG:4326", transform=t)
    outs = {}
    for name, x0 in (("signed", -180.0), ("past", 180.0)):  # the east half of the raster, written both ways
        gpd.GeoDataFrame(geometry=[box(x0, -16.504, x0 + 0.002, -16.499)], crs=4326).to_file(tmp_path / f"{name}.geojson")
        res = segment(str(src), tmp_path / f"{name}.gpkg", None,
                      cfg(pixel_card, aoi=str(tmp_path / f"{name}.geojson"), aoi_margin_m=margin))
        outs[name] = res.footprints
    assert len(outs["signed"]) == 2, "the two buildings whose inside point is east of 180"
    for r in rects[1:] if margin else rects[1:2]:  # without a margin the one across the aoi's edge is cut there
        assert max(iou(g, rect_geom(*r, t=t)) for g in outs["signed"].geometry) > 0.85
    assert sorted(round(a, 12) for a in outs["signed"].area) == sorted(round(a, 12) for a in outs["past"].area)


def test_dst_crs_4326_across_the_antimeridian_keeps_longitudes_past_180(tmp_path, pixel_card):
    """A UTM 60S raster over 180 degrees into EPSG:4326: GDAL's grid was 0 pixels high (an internal error after the
    run) and footprints there spanned 360 degrees. Now the output runs on past 180, as gdalwarp writes it."""
    from rasterio.warp import transform

    (x,), (y,) = transform("EPSG:4326", "EPSG:32760", [180.0], [-16.5])
    t = Affine(1.0, 0, round(x) - 100, 0, -1.0, round(y) + 100)
    rects = [(80, 60, 120, 140), (20, 20, 50, 60)]  # the first straddles 180 degrees
    src = write_raster(tmp_path / "utm60s.tif", scene((200, 200), rects), crs="EPSG:32760", transform=t)
    res = segment(str(src), tmp_path / "o.fgb", tmp_path / "p.tif", cfg(pixel_card, dst_crs="EPSG:4326"))
    gdf = res.footprints
    assert gdf.crs.to_epsg() == 4326 and len(gdf) == 2
    widths = gdf.geometry.bounds.maxx - gdf.geometry.bounds.minx
    assert widths.max() < 1e-3 and gdf.geometry.bounds.maxx.max() > 180.0
    metric = gdf.to_crs(rasterio.crs.CRS.from_user_input("+proj=utm +zone=60 +south +datum=WGS84"))
    for r in rects:  # the footprints come back onto the rectangles through a plain (unwrapped) transform
        assert max(iou(g, rect_geom(*r, t=t)) for g in metric.geometry) > 0.85
    with rasterio.open(tmp_path / "p.tif") as ds:
        assert ds.crs.to_epsg() == 4326 and ds.height > 150 and ds.width > 150
        assert ds.bounds.left < 180.0 < ds.bounds.right
        assert (ds.dataset_mask() > 0).mean() > 0.9


def test_an_aoi_east_of_180_with_dst_crs_4326_keeps_its_building_past_180(tmp_path, pixel_card):
    """A UTM 60S raster over 180 degrees, an aoi east of 180 stored in [-180, 180] (as OSM has it) and --dst-crs
    EPSG:4326: the aoi was moved into the output CRS without the wrap, 360 degrees from the footprints."""
    import geopandas as gpd
    from rasterio.warp import transform
    from shapely.geometry import Polygon

    (x,), (y,) = transform("EPSG:4326", "EPSG:32760", [180.0], [-16.5])
    t = Affine(1.0, 0, round(x) - 100, 0, -1.0, round(y) + 100)  # 180 degrees near column 100
    rects = [(80, 60, 120, 140), (20, 20, 50, 60), (150, 140, 190, 190)]  # across 180, west, east
    src = write_raster(tmp_path / "utm60s.tif", scene((200, 200), rects), crs="EPSG:32760", transform=t)
    corners = [t @ cr for cr in ((110, 130), (200, 130), (200, 200), (110, 200))]
    lon, lat = transform("EPSG:32760", "EPSG:4326", *zip(*corners))
    assert max(lon) < 0, "the aoi is stored west of -180's side, in [-180, 180]"
    gpd.GeoDataFrame(geometry=[Polygon(zip(lon, lat))], crs=4326).to_file(tmp_path / "east.geojson")
    res = segment(str(src), tmp_path / "o.gpkg", tmp_path / "p.tif",
                  cfg(pixel_card, dst_crs="EPSG:4326", aoi=str(tmp_path / "east.geojson")))
    gdf = res.footprints
    assert len(gdf) == 1 and gdf.total_bounds[0] > 180.0
    metric = gdf.to_crs(rasterio.crs.CRS.from_user_input("+proj=utm +zone=60 +south +datum=WGS84"))
    assert iou(metric.geometry.iloc[0], rect_geom(*rects[2], t=t)) > 0.85
    with rasterio.open(tmp_path / "p.tif") as ds:  # cut to the aoi, where the building is
        assert ds.bounds.left > 180.0 and ds.read(1).max() > 200


def test_dst_crs_reprojects_outputs(tmp_path, pixel_card):
    src = write_raster(tmp_path / "in.tif", scene((100, 100), [(20, 20, 60, 60)]))
    res = segment(str(src), tmp_path / "o.fgb", tmp_path / "p.tif", cfg(pixel_card, dst_crs="EPSG:4326"))
    assert res.footprints.crs.to_epsg() == 4326
    with rasterio.open(tmp_path / "p.tif") as ds:
        assert ds.crs.to_epsg() == 4326
    truth = rect_geom(20, 20, 60, 60)
    import geopandas as gpd

    back = gpd.GeoSeries([res.footprints.geometry.iloc[0]], crs=4326).to_crs(32633).iloc[0]
    assert iou(back, truth) > 0.95


def test_a_raster_in_us_survey_feet_runs_in_metres_and_its_footprints_stay_in_place(tmp_path, pixel_card):
    """EPSG:2263 (NY Long Island, US survey feet) at 0.5 m pixels: the model runs at its 1 m, not at 1 ft, and the
    footprints come back in the input's CRS where the buildings are, with areas in square metres."""
    from rasterio.warp import transform

    ft = 0.3048006096
    (x,), (y,) = transform("EPSG:4326", "EPSG:2263", [-73.95], [40.75])
    t = Affine(0.5 / ft, 0, x, 0, -0.5 / ft, y)
    src = write_raster(tmp_path / "ny.tif", scene((200, 200), [(40, 40, 120, 140)]), crs="EPSG:2263", transform=t)
    res = segment(str(src), tmp_path / "o.gpkg", None, cfg(pixel_card))
    h, w = res.plan.work_grid.shape_yx
    assert 98 < h < 110 and 98 < w < 110, "1 m pixels, not 1 ft ones (about 330 x 330)"
    assert res.footprints.crs.to_epsg() == 2263 and len(res.footprints) == 1
    assert iou(res.footprints.geometry.iloc[0], rect_geom(40, 40, 120, 140, t)) > 0.9
    assert res.footprints.area_m2.iloc[0] == pytest.approx(40 * 50, rel=0.06)


def test_dst_crs_keeps_the_pixel_size_of_a_rotated_input(tmp_path, pixel_card):
    """A 30-degree rotated 1 m grid written to a north-up grid: 1 m pixels over its bounds, not the 1.37 m that
    spreading its pixel count over the larger bounds gives, and the building stays where it is."""
    t = Affine.translation(500000, 5000000) @ Affine.rotation(30) @ Affine.scale(1.0, -1.0)
    src = write_raster(tmp_path / "rot.tif", scene((120, 120), [(30, 30, 80, 90)]), transform=t)
    res = segment(str(src), tmp_path / "o.gpkg", tmp_path / "p.tif", cfg(pixel_card, dst_crs="EPSG:32633"))
    with rasterio.open(tmp_path / "p.tif") as ds:
        assert ds.res == pytest.approx((1.0, 1.0), rel=0.01) and ds.transform.b == 0 and ds.transform.d == 0
    from shapely.geometry import Polygon

    turned = Polygon([t @ (c, r) for r, c in ((30, 30), (30, 90), (80, 90), (80, 30))])  # rows 30-80, cols 30-90
    assert len(res.footprints) == 1 and iou(res.footprints.geometry.iloc[0], turned) > 0.9


def test_dst_crs_far_outside_its_area_keeps_the_probabilities_under_the_footprints(tmp_path, pixel_card):
    """EPSG:2056 (Swiss LV95) over Nepal: GDAL's suggested output extent lands about 750 m west of where the data
    transforms to, so the probability raster held only nodata there while the footprints were in place."""
    from rasterio.features import rasterize

    src = write_raster(tmp_path / "np.tif", scene((120, 120), [(30, 30, 80, 90)]), crs="EPSG:32645",
                       transform=Affine(1.0, 0, 352000.0, 0, -1.0, 3057000.0))
    res = segment(str(src), tmp_path / "o.gpkg", tmp_path / "p.tif", cfg(pixel_card, dst_crs="EPSG:2056"))
    assert len(res.footprints) == 1
    with rasterio.open(tmp_path / "p.tif") as ds:
        p, valid = ds.read(1), ds.read_masks(1) > 0
        inside = rasterize(res.footprints.geometry, out_shape=ds.shape, transform=ds.transform) > 0
    assert valid.mean() > 0.3 and inside.sum() > 0.8 * 50 * 60 * (1 / abs(ds.res[0] * ds.res[1]))
    assert p[inside & valid].mean() > 200 and p[~inside & valid].mean() < 60


def test_min_area_also_drops_a_building_cut_down_by_the_input_edge(tmp_path, pixel_card):
    """The working grid (1 m) is snapped outward past the 0.5 m input's 50.5 m edge; footprints are cut back to the
    input there, and a cut piece under --min-area was kept (68 m2 at --min-area 75)."""
    src = write_raster(tmp_path / "in.tif", scene((120, 101), [(20, 95, 60, 101), (20, 20, 60, 60)]),
                       transform=Affine(0.5, 0, 500000.0, 0, -0.5, 5000000.0))
    areas = {}
    for m in (60, 75):
        vcfg = VectorizeConfig(min_area_m2=m, split_touching=False)
        res = segment(str(src), tmp_path / "o.gpkg", None, SegmentConfig(model=str(pixel_card), vectorize=vcfg))
        assert res.plan.resampled and (res.footprints["area_m2"] >= m).all()
        areas[m] = sorted(res.footprints["area_m2"].round(1))
    assert areas[60] == [68.0, 400.0] and areas[75] == [400.0]


class CancelAfter(NullProgress):
    def __init__(self, n):
        self.n, self.calls = n, 0

    def update(self, done, total, stage):
        if stage == "predict":
            self.calls += 1

    def cancelled(self):
        return self.calls > self.n


def test_interrupted_run_resumes_and_equals_an_uninterrupted_run(tmp_path, pixel_card):
    data = scene((300, 200), [(40, 20, 120, 90), (150, 100, 260, 180)])
    src = write_raster(tmp_path / "in.tif", data)
    segment(str(src), tmp_path / "ref.gpkg", tmp_path / "ref.tif", cfg(pixel_card))
    with pytest.raises(Cancelled):
        segment(str(src), tmp_path / "o.gpkg", tmp_path / "o.tif", cfg(pixel_card), progress=CancelAfter(3))
    assert not (tmp_path / "o.gpkg").exists() and not (tmp_path / "o.tif").exists()
    work = tmp_path / ".o.gpkg.geoseg-work"
    done_before = sorted(p.name for p in work.glob("chunk_*.tif"))
    assert 0 < len(done_before) < 6
    res = segment(str(src), tmp_path / "o.gpkg", tmp_path / "o.tif", cfg(pixel_card))
    assert res.resumed and res.stats.chunks_reused == len(done_before)
    assert res.stats.tiles_predicted < len(res.plan.tiles)
    with rasterio.open(tmp_path / "ref.tif") as a, rasterio.open(tmp_path / "o.tif") as b:
        assert np.array_equal(a.read(), b.read())
    import geopandas as gpd

    ref, got = gpd.read_file(tmp_path / "ref.gpkg"), gpd.read_file(tmp_path / "o.gpkg")
    assert len(ref) == len(got) == 2
    assert all(a.equals_exact(b, 1e-6) for a, b in zip(ref.geometry, got.geometry))
    assert not work.exists()


class AlwaysCancel(NullProgress):
    def cancelled(self):
        return True


class InterruptAfter(CancelAfter):
    """Ctrl-C (KeyboardInterrupt) after ``n`` rows of tiles, as the CLI would see it."""

    def update(self, done, total, stage):
        super().update(done, total, stage)
        if self.calls > self.n:
            raise KeyboardInterrupt


def _parts(message: str) -> tuple[int, int]:
    import re

    m = re.search(r"resume from the (\d+) of (\d+) finished parts \(rows of tiles\)$", message)
    assert m, message
    return int(m[1]), int(m[2])


def test_a_cancelled_run_says_what_a_rerun_reuses(tmp_path, pixel_card):
    from geoseg.errors import resume_of

    src = write_raster(tmp_path / "in.tif", scene((300, 200), [(40, 20, 120, 90)]))
    work = tmp_path / ".o.gpkg.geoseg-work"
    with pytest.raises(Cancelled) as exc:
        segment(str(src), tmp_path / "o.gpkg", None, cfg(pixel_card), progress=CancelAfter(3))
    done, total = _parts(str(exc.value))
    assert str(exc.value).startswith("cancelled; rerun the same command to resume")
    assert done == len(list(work.glob("chunk_*.tif"))) and 0 < done < total
    with pytest.raises(Cancelled) as exc:  # --no-resume: the same command would start over
        segment(str(src), tmp_path / "o.gpkg", None, cfg(pixel_card, resume=False), progress=CancelAfter(2))
    assert str(exc.value).startswith("cancelled; rerun without --no-resume to resume") and _parts(str(exc.value))[0] > 0
    with pytest.raises(Cancelled) as exc:
        segment(str(src), tmp_path / "n.gpkg", None, cfg(pixel_card), progress=AlwaysCancel())
    assert str(exc.value) == "cancelled; no row of tiles had finished, so a rerun starts from the beginning"
    with pytest.raises(Cancelled) as exc:  # without an output nothing survives the run
        segment(str(src), None, None, cfg(pixel_card), progress=CancelAfter(3))
    assert str(exc.value) == "cancelled; nothing was kept (only a run with an output, -o or --prob, can resume)"
    with pytest.raises(KeyboardInterrupt) as exc:
        segment(str(src), tmp_path / "k.gpkg", None, cfg(pixel_card), progress=InterruptAfter(2))
    done, _ = _parts(resume_of(exc.value))
    assert done == len(list((tmp_path / ".k.gpkg.geoseg-work").glob("chunk_*.tif"))) > 0


def test_changed_settings_do_not_reuse_stale_tiles(tmp_path, pixel_card):
    src = write_raster(tmp_path / "in.tif", scene((300, 200), [(40, 20, 120, 90)]))
    with pytest.raises(Cancelled):
        segment(str(src), None, tmp_path / "o.tif", cfg(pixel_card), progress=CancelAfter(2), return_footprints=False)
    res = segment(str(src), None, tmp_path / "o.tif", cfg(pixel_card, blend="crop"), return_footprints=False)
    assert not res.resumed and res.stats.chunks_reused == 0


def test_a_changed_vrt_source_or_card_input_does_not_reuse_stale_rows(tmp_path):
    """The resume key covers every file GDAL reads (a VRT's sources) and the card's inputs, not just the named
    file and the weights: rewriting a VRT's source, or editing the card's normalization, starts over."""
    import json
    import os
    import sys

    from tests.conftest import REPO, make_pixel_model

    sys.path.insert(0, str(REPO / "scripts"))
    from chips_vrt import build_vrt

    card = make_pixel_model(tmp_path / "m")
    src = write_raster(tmp_path / "src.tif", scene((300, 200), [(40, 20, 120, 90)]))
    vrt = str(build_vrt(tmp_path / "mos.vrt", [str(src)]))
    with pytest.raises(Cancelled):
        segment(vrt, None, tmp_path / "o.tif", cfg(card), progress=CancelAfter(2), return_footprints=False)
    write_raster(src, 255 - scene((300, 200), [(40, 20, 120, 90)]))  # new imagery, the VRT itself untouched
    os.utime(src, ns=(os.stat(src).st_atime_ns, os.stat(src).st_mtime_ns + 10**9))
    res = segment(vrt, None, tmp_path / "o.tif", cfg(card), return_footprints=False)
    assert not res.resumed and res.stats.chunks_reused == 0
    with pytest.raises(Cancelled):
        segment(str(src), None, tmp_path / "c.tif", cfg(card), progress=CancelAfter(2), return_footprints=False)
    raw = json.loads(card.read_text())
    raw["input"]["normalization"]["mean"] = [60, 60, 60]  # the same weights, other probabilities
    card.write_text(json.dumps(raw))
    res = segment(str(src), None, tmp_path / "c.tif", cfg(card), return_footprints=False)
    assert not res.resumed and res.stats.chunks_reused == 0


@pytest.mark.parametrize("scales, reused", [((1.0, 0.5), False), ((0.5,), False), ((1.0,), True)])
def test_changed_tta_scales_do_not_reuse_stale_tiles(tmp_path, pixel_card, scales, reused):
    src = write_raster(tmp_path / "in.tif", scene((300, 200), [(40, 20, 120, 90)]))
    with pytest.raises(Cancelled):
        segment(str(src), None, tmp_path / "o.tif", cfg(pixel_card), progress=CancelAfter(2), return_footprints=False)
    res = segment(str(src), None, tmp_path / "o.tif", cfg(pixel_card, tta_scales=scales), return_footprints=False)
    assert res.resumed is reused and (res.stats.chunks_reused > 0) is reused


def test_column_blocks_give_the_same_result_as_one_block(tmp_path, pixel_card):
    data = scene((200, 400), [(30, 30, 90, 100), (100, 150, 180, 330)])
    src = write_raster(tmp_path / "in.tif", data)
    one = segment(str(src), tmp_path / "a.gpkg", tmp_path / "a.tif", cfg(pixel_card))
    many = segment(str(src), tmp_path / "b.gpkg", tmp_path / "b.tif", cfg(pixel_card, block_width=100))
    assert many.plan.describe()["column_blocks"] >= 3 and one.plan.describe()["column_blocks"] == 1
    assert many.stats.tiles_reused > 0, "border tiles are shared between blocks, not predicted twice"
    assert many.stats.tiles_predicted == one.stats.tiles_predicted
    with rasterio.open(tmp_path / "a.tif") as a, rasterio.open(tmp_path / "b.tif") as b:
        assert np.array_equal(a.read(), b.read())
    assert len(one.footprints) == len(many.footprints) == 2


def test_resume_inside_a_later_column_block(tmp_path, pixel_card):
    data = scene((300, 300), [(40, 20, 120, 250), (150, 100, 260, 180)])
    src = write_raster(tmp_path / "in.tif", data)
    segment(str(src), None, tmp_path / "ref.tif", cfg(pixel_card, block_width=100), return_footprints=False)
    with pytest.raises(Cancelled):
        segment(str(src), None, tmp_path / "o.tif", cfg(pixel_card, block_width=100), progress=CancelAfter(9),
                return_footprints=False)
    res = segment(str(src), None, tmp_path / "o.tif", cfg(pixel_card, block_width=100), return_footprints=False)
    assert res.resumed and res.stats.chunks_reused >= 6
    with rasterio.open(tmp_path / "ref.tif") as a, rasterio.open(tmp_path / "o.tif") as b:
        assert np.array_equal(a.read(), b.read())


def test_vrt_mosaic_input_equals_the_single_file(tmp_path, pixel_card):
    """Any GDAL raster works: a VRT over two halves gives the same result as the whole file."""
    data = scene((120, 200), [(30, 60, 90, 140)])
    whole = write_raster(tmp_path / "whole.tif", data)
    left = write_raster(tmp_path / "left.tif", data[:, :, :100])
    right = write_raster(tmp_path / "right.tif", data[:, :, 100:], transform=UTM @ Affine.translation(100, 0))
    bands = "".join(
        f'<VRTRasterBand dataType="Byte" band="{b}">'
        + "".join(f'<SimpleSource><SourceFilename relativeToVRT="1">{n}</SourceFilename><SourceBand>{b}</SourceBand>'
                  f'<SrcRect xOff="0" yOff="0" xSize="100" ySize="120"/><DstRect xOff="{x}" yOff="0" xSize="100" ySize="120"/></SimpleSource>'
                  for n, x in ((left.name, 0), (right.name, 100)))
        + "</VRTRasterBand>" for b in (1, 2, 3))
    with rasterio.open(whole) as ds:
        wkt, t = ds.crs.to_wkt(), ds.transform
    vrt = tmp_path / "mosaic.vrt"
    vrt.write_text(f'<VRTDataset rasterXSize="200" rasterYSize="120"><SRS>{wkt}</SRS>'
                   f"<GeoTransform>{t.c}, {t.a}, 0, {t.f}, 0, {t.e}</GeoTransform>{bands}</VRTDataset>")
    a = segment(str(whole), None, tmp_path / "a.tif", cfg(pixel_card))
    b = segment(str(vrt), None, tmp_path / "b.tif", cfg(pixel_card))
    with rasterio.open(tmp_path / "a.tif") as x, rasterio.open(tmp_path / "b.tif") as y:
        assert np.array_equal(x.read(), y.read())
    assert len(a.footprints) == len(b.footprints) == 1


def test_cog_output(tmp_path, pixel_card):
    src = write_raster(tmp_path / "in.tif", scene((600, 600), [(30, 60, 90, 140)]))
    segment(str(src), None, tmp_path / "p.tif", cfg(pixel_card, cog=True, compress="zstd"), return_footprints=False)
    with rasterio.open(tmp_path / "p.tif") as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert ds.overviews(1) and ds.compression.name.lower() == "zstd"
        assert (ds.dataset_mask() > 0).all()


@pytest.mark.parametrize("crs,transform", [("EPSG:32633", UTM), ("EPSG:4326", Affine(1e-5, 0, 9.5, 0, -1e-5, 45.2))])
@pytest.mark.parametrize("card_name", ["pixel_card", "pixel_card_2out", "pixel_card_3out"])
def test_nodata_survives_for_any_output_count_and_when_warping(tmp_path, request, card_name, crs, transform):
    card = request.getfixturevalue(card_name)
    mask = np.ones((160, 160), bool)
    mask[:, 100:] = False
    data = scene((160, 160), [(20, 110, 60, 150), (80, 20, 130, 70)])  # the first lies under nodata
    src = write_raster(tmp_path / "in.tif", data, crs=crs, transform=transform, mask=mask)
    res = segment(str(src), tmp_path / "o.gpkg", tmp_path / "p.tif", cfg(card))
    assert len(res.footprints) == 1, "a bright area under nodata must never become a building"
    with rasterio.open(tmp_path / "p.tif") as b:
        assert b.count == res.plan.n_channels
        valid = b.dataset_mask() > 0
    agree = (valid == mask).mean()
    assert agree == 1.0 if crs == "EPSG:32633" else agree > 0.98


def test_shipped_scinet_finds_buildings_on_a_sample_tile_at_its_native_gsd(tmp_path):
    """Sci-Net, registered by name, runs through the engine at the input's own GSD (no resampling)."""
    from pathlib import Path

    tile = Path(__file__).parents[2] / "sample_tiles" / "banepa_chip_386690-220241_4326.tif"
    res = segment(str(tile), tmp_path / "b.gpkg", None, SegmentConfig(model="scinet-r18-buildings", gsd_m="native"))
    assert res.plan.work_gsd_m == pytest.approx(0.132, abs=0.002)
    assert len(res.footprints) >= 5 and (res.footprints["model"] == "scinet-r18-buildings").all()


def test_shipped_three_output_scinet_writes_building_border_gap_and_splits_along_them(tmp_path):
    """The gap model's probability raster carries all three outputs by name; footprints split
    along border and gap are more numerous than the building band's connected parts."""
    from dataclasses import replace
    from pathlib import Path

    import rasterio

    tile = Path(__file__).parents[2] / "sample_tiles" / "banepa_chip_386690-220241_4326.tif"
    cfg = SegmentConfig(model="scinet-r18-buildings-gap")
    res = segment(str(tile), tmp_path / "b.gpkg", tmp_path / "p.tif", cfg)
    with rasterio.open(tmp_path / "p.tif") as ds:
        assert ds.descriptions == ("building", "border", "gap")
    whole = segment(str(tile), tmp_path / "w.gpkg", None, replace(cfg, vectorize=replace(cfg.vectorize, split_touching=False)))
    assert len(res.footprints) > len(whole.footprints) >= 5


def test_device_cuda_without_a_gpu_is_refused_before_the_weights_load(tmp_path, pixel_card, monkeypatch):
    import torch

    from geoseg.errors import ConfigError
    from geoseg.models import loading

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")

    def no_weights(*args):
        raise AssertionError("the weights were loaded")

    monkeypatch.setattr(loading, "load_module", no_weights)
    src = write_raster(tmp_path / "in.tif", scene((64, 64)))
    with pytest.raises(ConfigError, match="no CUDA GPU is available"):
        segment(str(src), tmp_path / "o.gpkg", None, cfg(pixel_card, device="cuda"))


def test_a_building_free_run_does_not_warn_about_low_values_of_its_own_probabilities(tmp_path, pixel_card):
    """Low probabilities everywhere mean no building; the hint meant for a 0/1 mask or percentages given to
    ``geoseg vectorize`` named the run's internal mosaic and advised a threshold that floods the output."""
    import warnings

    src = write_raster(tmp_path / "grey.tif", scene((120, 120), [], dark=100))  # probabilities about 0.15
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = segment(str(src), tmp_path / "o.gpkg", tmp_path / "p.tif", cfg(pixel_card))
    assert res.footprints.empty
    assert not [w for w in caught if "reach only" in str(w.message)], [str(w.message) for w in caught]
    with rasterio.open(tmp_path / "p.tif") as ds:
        assert 0 < ds.read(1).max() <= 100  # the case the hint is for, had a user given this raster to vectorize



def test_a_run_with_other_footprints_but_the_same_prob_raster_is_refused(tmp_path, pixel_card):
    """Both would write p.tif; the last rename would win silently."""
    from geoseg.errors import OutputError
    from geoseg.runlock import lock_path_for, run_lock

    src = write_raster(tmp_path / "in.tif", scene((64, 64)))
    prob = tmp_path / "p.tif"
    with run_lock(lock_path_for(prob), str(prob)), pytest.raises(OutputError, match="is writing .*p.tif"):
        segment(str(src), tmp_path / "other.gpkg", prob, cfg(pixel_card))
    assert not prob.exists() and not (tmp_path / "other.gpkg").exists()
    segment(str(src), tmp_path / "other.gpkg", prob, cfg(pixel_card))
    assert prob.exists() and not lock_path_for(prob).exists() and not lock_path_for(tmp_path / "other.gpkg").exists()


def test_kept_tiles_of_a_block_border_are_removed_once_their_rows_are_written(tmp_path, pixel_card):
    """They stayed until the run ended: 147 MB of tiles against 3.6 MB of chunks at 7 blocks, some 5 GB on a
    40k-px-wide raster. Now the work folder holds those of about one block border at a time."""
    from geoseg.engine.workdir import work_dir_for
    from geoseg.tiling import column_blocks

    src = write_raster(tmp_path / "in.tif", scene((600, 400), [(40, 20, 120, 90), (300, 200, 420, 330)]))
    out = tmp_path / "o.gpkg"
    folder = work_dir_for(out)

    class Count(NullProgress):
        peak = 0

        def update(self, done, total, stage):
            Count.peak = max(Count.peak, len(list(folder.glob("tile_*.npy"))) if folder.exists() else 0)

    res = segment(str(src), out, tmp_path / "o.tif", cfg(pixel_card, block_width=60), progress=Count())
    blocks = column_blocks(res.plan.tiles, 60)
    borders = [set(a.tile_cols) & set(b.tile_cols) for a, b in itertools.pairwise(blocks)]
    n_rows = res.plan.tiles.n_rows
    assert len(borders) >= 4 and Count.peak > 0
    assert Count.peak <= 2 * n_rows * max(map(len, borders)) < n_rows * sum(map(len, borders))
    ref = segment(str(src), None, tmp_path / "ref.tif", cfg(pixel_card))  # and the result is the same
    with rasterio.open(tmp_path / "o.tif") as a, rasterio.open(tmp_path / "ref.tif") as b:
        assert np.array_equal(a.read(), b.read())
    assert len(res.footprints) == len(ref.footprints) == 2
