import pytest
from affine import Affine

from geoseg import georef
from geoseg.grid import RasterGrid
from geoseg.window import PixelWindow


def test_subgrid_has_the_right_transform():
    g = RasterGrid((100, 200), Affine(0.5, 0, 1000, 0, -0.5, 2000), "EPSG:32633")
    sub = g[PixelWindow(10, 20, 30, 40)]
    assert sub.shape_yx == (30, 40)
    assert sub.transform @ (0, 0) == (1010.0, 1995.0)
    assert sub.bounds == (1010.0, 1980.0, 1030.0, 1995.0)


def test_same_as_compares_shape_transform_and_crs():
    a = RasterGrid((10, 10), Affine(1, 0, 0, 0, -1, 10), "EPSG:32633")
    assert a.same_as(RasterGrid((10, 10), Affine(1, 0, 0, 0, -1, 10), "EPSG:32633"))
    assert not a.same_as(RasterGrid((10, 10), Affine(1, 0, 0.5, 0, -1, 10), "EPSG:32633"))
    assert not a.same_as(RasterGrid((10, 10), Affine(1, 0, 0, 0, -1, 10), "EPSG:32634"))


def test_ground_gsd_of_utm_geographic_and_web_mercator():
    utm = RasterGrid((100, 100), Affine(0.3, 0, 500000, 0, -0.3, 0), "EPSG:32633")
    assert georef.ground_gsd_m(utm) == pytest.approx(0.3, rel=0.01)
    # 1e-5 degrees at 60N: ~1.11 m north-south, ~0.56 m east-west -> geometric mean ~0.79 m
    geo = RasterGrid((100, 100), Affine(1e-5, 0, 10, 0, -1e-5, 60), "EPSG:4326")
    assert georef.ground_gsd_m(geo) == pytest.approx(0.787, rel=0.02)
    assert not georef.is_metric_faithful(geo)
    # Web Mercator metres at 60N are stretched 2x
    merc = RasterGrid((100, 100), Affine(0.6, 0, 1113194.9, 0, -0.6, 8399737.9), "EPSG:3857")
    assert georef.ground_gsd_m(merc) == pytest.approx(0.3, rel=0.01)
    assert not georef.is_metric_faithful(merc)
    assert georef.is_metric_faithful(utm)


def test_metric_crs_for_geographic_is_local_utm():
    geo = RasterGrid((10, 10), Affine(1e-4, 0, 85.5, 0, -1e-4, 27.6), "EPSG:4326")
    assert georef.metric_crs_for(geo).to_epsg() == 32645
    south = RasterGrid((10, 10), Affine(1e-4, 0, 39.2, 0, -1e-4, -6.1), "EPSG:4326")
    assert georef.metric_crs_for(south).to_epsg() == 32737


@pytest.mark.parametrize("crs, unit_m", [("EPSG:2263", 0.3048006096), ("EPSG:2227", 0.3048006096),
                                          ("+proj=utm +zone=33 +datum=WGS84 +units=km", 1000.0)])
def test_a_crs_in_feet_or_km_is_not_a_metric_working_grid(crs, unit_m):
    """The engine's sizes are metres: a GSD of 0.3 must not become 0.3 ft (11 times the work) or 0.3 km."""
    from rasterio.crs import CRS
    from rasterio.warp import transform

    lon, lat = {"EPSG:2263": (-73.95, 40.75), "EPSG:2227": (-122.0, 37.5)}.get(crs, (15.0, 45.0))
    (x,), (y,) = transform("EPSG:4326", CRS.from_user_input(crs), [lon], [lat])
    grid = RasterGrid((1000, 1000), Affine(0.15 / unit_m, 0, x, 0, -0.15 / unit_m, y), crs)
    assert georef.ground_gsd_m(grid) == pytest.approx(0.15, rel=0.01)
    assert not georef.is_metric_faithful(grid)
    work = georef.work_grid(grid, 0.3)
    assert CRS.from_user_input(work.crs).linear_units_factor[1] == 1.0
    assert work.res_xy == pytest.approx((0.3, 0.3)) and georef.ground_gsd_m(work) == pytest.approx(0.3, rel=0.01)
    assert 490 < work.shape_yx[0] < 520 and 490 < work.shape_yx[1] < 520  # 500, grown by the turn to a UTM grid


def test_reproject_grid_covers_the_source():
    geo = RasterGrid((512, 512), Affine(1.34e-6, 0, 85.519, 0, -1.19e-6, 27.634), "EPSG:4326")
    work = georef.reproject_grid(geo, georef.metric_crs_for(geo), 0.3)
    assert work.res_xy == pytest.approx((0.3, 0.3))
    from rasterio.warp import transform_bounds

    l, b, r, t = transform_bounds("EPSG:4326", work.crs, *geo.bounds)
    wl, wb, wr, wt = work.bounds
    assert wl <= l and wb <= b and wr >= r and wt >= t
    assert wr - r < 0.6 and l - wl < 0.6


def test_offset_in_finds_a_pixel_aligned_part_and_nothing_else():
    g = RasterGrid((100, 200), Affine(0.5, 0, 1000, 0, -0.5, 2000), "EPSG:32633")
    assert g[PixelWindow(10, 20, 30, 40)].offset_in(g) == (10, 20)
    assert g.offset_in(g) == (0, 0)
    assert RasterGrid((30, 40), Affine(0.5, 0, 1010.25, 0, -0.5, 1995), "EPSG:32633").offset_in(g) is None  # half a pixel
    assert RasterGrid((30, 40), Affine(1.0, 0, 1010, 0, -1.0, 1995), "EPSG:32633").offset_in(g) is None  # other size
    assert RasterGrid((30, 40), Affine(0.5, 0, 1010, 0, -0.5, 1995), "EPSG:32634").offset_in(g) is None  # other CRS
    assert g[PixelWindow(90, 20, 30, 40)].offset_in(g) is None  # runs off the bottom


def test_window_covering_takes_whole_pixels_and_stops_at_the_edges():
    g = RasterGrid((100, 200), Affine(0.5, 0, 1000, 0, -0.5, 2000), "EPSG:32633")
    assert g.window_covering((1010.0, 1980.0, 1030.0, 1995.0)) == PixelWindow(10, 20, 30, 40)  # on pixel edges
    assert g.window_covering((1010.1, 1980.1, 1029.9, 1994.9)) == PixelWindow(10, 20, 30, 40)  # inside them
    assert g.window_covering((990.0, 1900.0, 1010.0, 2100.0)) == PixelWindow(0, 0, 100, 20)  # cut to the grid
    assert g.window_covering((0.0, 0.0, 10.0, 10.0)) is None


def test_non_square_pixels_are_resampled_even_when_their_mean_is_the_model_gsd():
    """0.25 x 0.36 m pixels (geometric mean 0.3 m) ran as they were: the model saw buildings stretched by 44 %."""
    aniso = RasterGrid((400, 400), Affine(0.25, 0, 500000, 0, -0.36, 5000000), "EPSG:32633")
    work = georef.work_grid(aniso, 0.3)
    assert work.res_xy == pytest.approx((0.3, 0.3)) and not work.same_as(aniso)
    square = RasterGrid((400, 400), Affine(0.3, 0, 500000, 0, -0.3, 5000000), "EPSG:32633")
    assert georef.work_grid(square, 0.3).same_as(square)  # square and at the GSD: read as it is
