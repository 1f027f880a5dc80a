"""geoseg.aoi: reading an area of interest, burning it onto a grid, and keeping or cutting footprints at it."""

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from shapely.geometry import Point, box

from geoseg.aoi import clip, mask, owned, read_aoi
from geoseg.errors import InputError
from geoseg.grid import RasterGrid

GRID = RasterGrid((100, 200), Affine(1.0, 0, 500000, 0, -1.0, 5000000), "EPSG:32633")


def write_aoi(path, geoms, crs="EPSG:32633"):
    gpd.GeoDataFrame(geometry=list(geoms), crs="EPSG:32633").to_crs(crs).to_file(path)
    return str(path)


def test_read_aoi_unites_reprojects_and_cuts_to_the_raster(tmp_path):
    a, b = box(500010, 4999910, 500050, 4999950), box(500150, 4999950, 500300, 4999990)  # b runs off the right edge
    area = read_aoi(write_aoi(tmp_path / "a.gpkg", [a, b], crs="EPSG:4326"), GRID, "in.tif")
    expected = a.union(b.intersection(box(500000, 4999900, 500200, 5000000)))
    assert area.symmetric_difference(expected).area < 0.01 * expected.area  # vertices moved through degrees and back


@pytest.mark.parametrize("geoms, message", [([box(0, 0, 10, 10)], "no polygon of the aoi"),
                                            ([Point(500010, 4999950)], "holds no polygons")])
def test_an_aoi_off_the_raster_or_without_polygons_is_a_one_line_error(tmp_path, geoms, message):
    with pytest.raises(InputError, match=message):
        read_aoi(write_aoi(tmp_path / "a.gpkg", geoms), GRID, "in.tif")


def test_a_missing_aoi_file_says_so(tmp_path):
    with pytest.raises(InputError, match="aoi not found"):
        read_aoi(str(tmp_path / "nope.gpkg"), GRID, "in.tif")


def test_mask_takes_pixels_whose_centre_is_inside():
    m = mask(box(500010, 4999980, 500020.4, 4999990), GRID.transform, GRID.shape_yx)
    assert m.sum() == 10 * 10 and m[10:20, 10:20].all()  # the 0.4 m sliver beyond col 20 misses its centre


def buildings():
    geoms = [box(10, 10, 20, 20),  # inside
             box(40, 10, 55, 20),  # crosses the edge x = 50, mostly inside
             box(48, 30, 70, 40),  # crosses it, mostly outside
             box(80, 10, 90, 20)]  # outside
    return gpd.GeoDataFrame({"area_m2": [g.area for g in geoms]}, geometry=geoms, crs="EPSG:32633")


def test_owned_keeps_buildings_whose_inside_point_is_in_the_area_whole():
    got = owned(buildings(), box(0, 0, 50, 50))
    assert [g.bounds for g in got.geometry] == [(10, 10, 20, 20), (40, 10, 55, 20)]
    assert got.area_m2.tolist() == [100, 150]


def test_clip_cuts_at_the_edge_and_scales_the_area():
    got = clip(buildings(), box(0, 0, 50, 50))
    assert [g.bounds for g in got.geometry] == [(10, 10, 20, 20), (40, 10, 50, 20), (48, 30, 50, 40)]
    assert np.allclose(got.area_m2, [100, 100, 20])
    assert len(clip(buildings(), box(0, 0, 50, 50), min_area_m2=30)) == 2  # the 20 m2 sliver is dropped


def test_clip_in_degrees_says_nothing_about_areas_in_a_geographic_crs():
    import warnings

    gdf = buildings().set_crs("EPSG:4326", allow_override=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # geopandas warns on .area in degrees; a user would see it on every run
        got = clip(gdf, box(0, 0, 50, 50))
    assert len(got) == 3
