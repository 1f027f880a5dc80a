"""``vectorize_file`` (``geoseg vectorize``) limited to an area of interest: the footprints ``segment --aoi`` gives."""

import geopandas as gpd
import pytest

from geoseg.config import VectorizeConfig
from geoseg.engine.segment import segment
from geoseg.errors import InputError
from geoseg.footprints.from_file import AoiLimit, vectorize_file
from tests.conftest import write_raster
from tests.engine.test_segment import rect_geom, scene
from tests.engine.test_segment_aoi import AOI_RC, RECTS, bounds, cfg

VCFG = VectorizeConfig(min_area_m2=10, split_touching=False)


@pytest.fixture
def whole_prob(tmp_path, pixel_card):
    src = write_raster(tmp_path / "in.tif", scene((240, 400), RECTS))
    segment(str(src), None, tmp_path / "whole.tif", cfg(pixel_card))
    return src, tmp_path / "whole.tif"


@pytest.fixture
def aoi(tmp_path):
    path = tmp_path / "aoi.geojson"  # in lon/lat, the raster in UTM
    gpd.GeoDataFrame(geometry=[rect_geom(*AOI_RC)], crs="EPSG:32633").to_crs("EPSG:4326").to_file(path)
    return str(path)


def shapes(gdf):
    return sorted((bounds(g), round(a, 3)) for g, a in zip(gdf.geometry, gdf["area_m2"]))


@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("margin", [50.0, 0.0])
def test_vectorizing_a_whole_runs_probabilities_in_an_aoi_equals_segment_with_that_aoi(tmp_path, pixel_card, whole_prob, aoi,
                                                                                        clip, margin):
    src, prob = whole_prob
    direct = segment(str(src), None, None, cfg(pixel_card, aoi=aoi, aoi_margin_m=margin, aoi_clip=clip)).footprints
    got, used, _ = vectorize_file(str(prob), VCFG, aoi=AoiLimit(aoi, margin, clip))
    assert len(got) == len(direct) >= 2 and shapes(got) == shapes(direct)
    assert used.threshold == 0.5  # the run's threshold, from the raster's settings tag


def test_only_buildings_owned_by_the_aoi_come_out_and_the_margin_keeps_them_whole(whole_prob, aoi):
    _, prob = whole_prob
    every, _, _ = vectorize_file(str(prob), VCFG)
    got, _, _ = vectorize_file(str(prob), VCFG, aoi=AoiLimit(aoi))
    assert len(every) == 4  # RECTS: inside, across the edge (mostly in), across it (mostly out), far outside
    assert sorted(bounds(g) for g in got.geometry) == sorted(bounds(rect_geom(*r)) for r in RECTS[:2])
    cut, _, _ = vectorize_file(str(prob), VCFG, aoi=AoiLimit(aoi, 0.0))  # no margin: traced only up to the edge
    assert sorted(bounds(g) for g in cut.geometry)[1] == bounds(rect_geom(100, 120, 140, 150))


def test_an_aoi_off_the_probability_raster_is_refused(tmp_path, whole_prob):
    _, prob = whole_prob
    from shapely.affinity import translate

    far = tmp_path / "far.gpkg"  # 10 km east of the raster
    gpd.GeoDataFrame(geometry=[translate(rect_geom(0, 0, 50, 50), 10_000)], crs="EPSG:32633").to_file(far)
    with pytest.raises(InputError, match="lies on"):
        vectorize_file(str(prob), VCFG, aoi=AoiLimit(str(far)))


def test_an_aoi_on_a_raster_without_crs_is_refused(tmp_path, aoi):
    import numpy as np

    prob = write_raster(tmp_path / "nocrs.tif", (np.ones((1, 40, 40)) * 200).astype("uint8"), crs=None)
    with pytest.raises(InputError, match="no CRS"):
        vectorize_file(str(prob), VCFG, aoi=AoiLimit(aoi))
