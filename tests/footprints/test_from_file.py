"""``vectorize_file`` (``geoseg vectorize``) limited to an area of interest: the footprints ``segment --aoi`` gives."""

import geopandas as gpd
import pytest

from geoseg.config import VectorizeConfig
from geoseg.engine.segment import segment
from geoseg.errors import InputError
from geoseg.footprints.from_file import AoiLimit, vectorize_file
from tests.conftest import FIJI, write_raster
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


@pytest.mark.parametrize("crs, transform, message", [
    ("EPSG:3857", "identity", "no geotransform"),  # footprints would land at the origin, south up, in 1 m pixels
    (None, None, "no CRS"),
])
def test_a_probability_raster_that_is_not_georeferenced_is_refused_before_tracing(tmp_path, crs, transform, message):
    import numpy as np
    from affine import Affine

    data = np.zeros((1, 40, 40), "uint8")
    data[0, 10:20, 10:30] = 220
    kw = {"transform": Affine.identity()} if transform == "identity" else {}
    prob = write_raster(tmp_path / "p.tif", data, crs=crs, **kw)
    with pytest.raises(InputError, match=f"p.tif has {message}"):
        vectorize_file(str(prob), VCFG)


def test_areas_sharing_an_edge_get_each_building_once_renumbered_and_a_cut_one_is_warned(tmp_path):
    """A house centred on the shared edge (its representative point on it) went to both areas; a 210 m warehouse
    across the edge, longer than the 50 m margin, came out of each area cut short without a word; ids had gaps."""
    import warnings

    import numpy as np
    from affine import Affine
    from shapely.geometry import box

    from geoseg.errors import InputWarning
    from tests.footprints.test_vectorize_raster import write_prob

    a = np.zeros((200, 800), np.uint8)
    a[50:110, 40:740] = 230  # the warehouse: x 12-222 m
    a[150:180, 380:420] = 230  # the house: x 114-126 m, centred on the edge at 120 m
    a[20:30, 100:110] = a[20:30, 600:610] = 230  # one small building inside each area, away from the edge
    x0, y0 = 500000, 4000000
    prob = write_prob(tmp_path / "p.tif", a, transform=Affine(0.3, 0, x0, 0, -0.3, y0))
    for side, b in (("west", box(x0, y0 - 60, x0 + 120, y0)), ("east", box(x0 + 120, y0 - 60, x0 + 240, y0))):
        gpd.GeoDataFrame(geometry=[b], crs="EPSG:32633").to_file(tmp_path / f"{side}.gpkg")
    got, warned = {}, {}
    for side in ("west", "east"):
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            got[side] = vectorize_file(str(prob), VectorizeConfig(), aoi=AoiLimit(str(tmp_path / f"{side}.gpkg")))[0]
        warned[side] = [str(w.message) for w in rec if issubclass(w.category, InputWarning)]
    houses = [g for gdf in got.values() for g in gdf.geometry if abs(g.area - 12 * 9) < 1]
    assert len(houses) == 1, "the house on the shared edge comes out of exactly one area"
    for side, gdf in got.items():
        assert gdf["id"].tolist() == list(range(1, len(gdf) + 1))
        assert len(warned[side]) == 1 and "1 kept building(s) reach the edge of the aoi plus its margin" in warned[side][0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a margin that holds the warehouse: no warning
        vectorize_file(str(prob), VectorizeConfig(), aoi=AoiLimit(str(tmp_path / "west.gpkg"), margin_m=150))


@pytest.mark.parametrize("margin", [-1, float("nan"), "50"])
def test_vectorize_refuses_an_aoi_margin_segment_refuses(tmp_path, aoi, margin):
    import geoseg
    from geoseg.errors import ConfigError

    with pytest.raises(ConfigError, match="--aoi-margin"):
        geoseg.vectorize(str(tmp_path / "p.tif"), aoi=aoi, aoi_margin_m=margin)


def test_vectorize_follows_the_footprint_rules_of_the_run_unless_told_otherwise(tmp_path, pixel_card):
    """A run with --min-area 100 --regularize: vectorizing its probabilities gave footprints of 13 m2, unsquared."""
    from click.testing import CliRunner

    import geoseg
    from geoseg.cli.main import cli

    rects = [(20, 20, 60, 60), (100, 100, 106, 106), (20, 120, 50, 190)]  # 1600, 36 and 2100 m2 at 1 m
    src = write_raster(tmp_path / "in.tif", scene((200, 220), rects))
    from geoseg.config import SegmentConfig

    run = segment(str(src), None, tmp_path / "p.tif", SegmentConfig(model=str(pixel_card), vectorize=VectorizeConfig(
        min_area_m2=100, regularize=True, split_touching=False))).footprints
    assert len(run) == 2 and (run["reg_status"] >= 0).all()
    same, used, _ = vectorize_file(str(tmp_path / "p.tif"), VectorizeConfig())
    assert len(same) == 2 and (same["reg_status"] >= 0).all()
    assert (used.min_area_m2, used.regularize, used.split_touching) == (100, True, False)
    mine = geoseg.vectorize(str(tmp_path / "p.tif"), min_area_m2=10)  # what the user gives wins, the rest follows
    assert len(mine) == 3 and (mine["reg_status"] >= 0).all()
    r = CliRunner().invoke(cli, ["vectorize", str(tmp_path / "p.tif"), "-o", str(tmp_path / "c.gpkg"), "--min-area", "10",
                                 "--no-regularize", "--progress", "none"])
    assert r.exit_code == 0, r.output
    cli_out = gpd.read_file(tmp_path / "c.gpkg")
    assert len(cli_out) == 3 and (cli_out["reg_status"] == -1).all()


@pytest.mark.parametrize("margin", [50.0, 0.0])
def test_an_aoi_in_minus_180_to_180_limits_a_probability_raster_past_180(tmp_path, pixel_card, margin):
    """The probabilities of a run over Fiji, written past 180 degrees, limited to an aoi stored in [-180, 180]: the
    same footprints as without it, less those west of 180 (before, the aoi lay 360 degrees away and nothing came
    out). ``segment`` with the aoi finds the same two (traced on its working grid, so not to the square metre)."""
    from shapely.geometry import box

    t = FIJI
    rects = [(20, 40, 60, 110), (100, 200, 160, 260), (200, 220, 260, 290)]
    src = write_raster(tmp_path / "fiji.tif", scene((300, 300), rects), crs="EPSG:4326", transform=t)
    segment(str(src), None, tmp_path / "p.tif", cfg(pixel_card))
    aoi = tmp_path / "east.geojson"
    gpd.GeoDataFrame(geometry=[box(-180.0, -16.504, -179.998, -16.499)], crs=4326).to_file(aoi)
    direct = segment(str(src), None, None, cfg(pixel_card, aoi=str(aoi), aoi_margin_m=margin)).footprints
    got, _, _ = vectorize_file(str(tmp_path / "p.tif"), VCFG, aoi=AoiLimit(str(aoi), margin))
    every, _, _ = vectorize_file(str(tmp_path / "p.tif"), VCFG)
    east = every[every.geometry.bounds.minx > 180.0]
    assert len(got) == len(direct) == len(east) == 2 and len(every) == 3
    assert shapes(got) == shapes(east)
