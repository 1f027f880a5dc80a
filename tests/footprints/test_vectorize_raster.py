"""vectorize_raster: counts, metric areas, seams between row bands, masks, CRSs, options."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import rasterio
from affine import Affine
from shapely import affinity
from shapely.geometry import box

from geoseg.config import VectorizeConfig
from geoseg.errors import Cancelled, ConfigError, InputError, RasterReadError
from geoseg.footprints.finish import COLUMNS
from geoseg.footprints.raster import vectorize_raster
from geoseg.footprints.regularize import iou

UTM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 5000000.0)  # 0.5 m pixels, EPSG:32633
SINGLE = {"band_rows": 10**6}


def write_prob(path, bands_cyx, *, crs="EPSG:32633", transform=UTM, mask_yx=None):
    """Write ``(C, Y, X)`` (or ``(Y, X)``) probability bands; ``mask_yx`` False -> internal nodata mask."""
    data = np.asarray(bands_cyx)
    data = data[None] if data.ndim == 2 else data
    profile = {
        "driver": "GTiff",
        "count": data.shape[0],
        "height": data.shape[1],
        "width": data.shape[2],
        "dtype": data.dtype.name,
        "crs": crs,
        "transform": transform,
    }
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if mask_yx is not None:
            dst.write_mask(np.where(mask_yx, 255, 0).astype(np.uint8))
    return path


def draw(shape_yx, rects, value=230) -> np.ndarray:
    """uint8 map with ``value`` in the ``(row0, col0, row1, col1)`` rectangles."""
    prob_yx = np.zeros(shape_yx, np.uint8)
    for r0, c0, r1, c1 in rects:
        prob_yx[r0:r1, c0:c1] = value
    return prob_yx


def map_box(r0, c0, r1, c1, transform=UTM):
    (x0, y0), (x1, y1) = transform @ (c0, r0), transform @ (c1, r1)
    return box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def test_known_rectangles_in_utm(tmp_path):
    rects = [(10, 10, 40, 60), (60, 100, 100, 130), (110, 20, 150, 70), (20, 150, 35, 190)]
    path = write_prob(tmp_path / "p.tif", draw((160, 200), rects))
    gdf = vectorize_raster(path, VectorizeConfig(), model_name="unit-model")
    assert list(gdf.columns) == COLUMNS
    assert gdf.crs == "EPSG:32633"
    assert gdf["id"].tolist() == [1, 2, 3, 4]
    by_row = [rects[i] for i in (0, 3, 1, 2)]  # top to bottom by representative point
    truth_m2 = [(r1 - r0) * (c1 - c0) * 0.25 for r0, c0, r1, c1 in by_row]
    assert np.allclose(gdf["area_m2"], truth_m2, rtol=0.03)
    for geom, rect in zip(gdf.geometry, by_row):
        assert iou(geom, map_box(*rect)) > 0.99
    assert np.allclose(gdf["p_mean"], 230 / 255)
    assert np.allclose(gdf["gsd_m"], 0.5, rtol=1e-3)
    assert (gdf["gsd_m"] == 0.5002).all()  # the ground size on the central meridian (0.5 m / scale 0.9996), to 0.1 mm
    assert (gdf["model"] == "unit-model").all()
    assert (gdf["reg_status"] == -1).all()


def test_buildings_across_band_borders_are_single_polygons(tmp_path):
    straddling = (50, 20, 80, 60)  # crosses row 64
    tall = (100, 100, 230, 120)  # 130 rows > band + 2 halo: spans three bands
    path = write_prob(tmp_path / "p.tif", draw((256, 160), [straddling, tall]))
    gdf = vectorize_raster(path, VectorizeConfig(band_rows=64, halo_rows=16, min_area_m2=0))
    assert len(gdf) == 2
    for geom, rect in zip(gdf.geometry, [straddling, tall]):
        assert geom.geom_type == "Polygon"
        assert iou(geom, map_box(*rect)) > 0.999
        assert len(geom.exterior.coords) == 5


def _busy_scene(seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Buildings of many shapes (touching pairs, L, tall, speckles) on noisy ground, some nodata."""
    rng = np.random.default_rng(seed)
    prob_yx = (rng.random((240, 180)) * 100).astype(np.uint8)
    for _ in range(30):
        r, c = int(rng.integers(0, 230)), int(rng.integers(0, 170))
        prob_yx[r : r + int(rng.integers(3, 16)), c : c + int(rng.integers(3, 16))] = int(rng.integers(140, 256))
    prob_yx[60:80, 10:30] = prob_yx[70:90, 30:50] = 250  # a touching pair across row 64
    prob_yx[150:200, 140:150] = prob_yx[190:200, 140:175] = 250  # an L
    prob_yx[:, 56:60] = prob_yx[:, 64:68] = 0
    prob_yx[30:225, 60:64] = 200  # a tall thin building through all bands
    valid_yx = rng.random(prob_yx.shape) > 0.003
    return prob_yx, valid_yx


@pytest.mark.parametrize(
    "band_rows, halo_rows, split", [(64, 60, True), (40, 64, True), (32, 4, False), (17, 1, False), (20, 0, False)]
)
def test_banded_run_equals_single_band_run(tmp_path, band_rows, halo_rows, split):
    """Equal whenever every building cluster fits in a halo (always, when not splitting)."""
    prob_yx, valid_yx = _busy_scene()
    path = write_prob(tmp_path / "p.tif", prob_yx, mask_yx=valid_yx)
    common = {"min_area_m2": 1.0, "split_touching": split}
    single = vectorize_raster(path, VectorizeConfig(**SINGLE, **common))
    banded = vectorize_raster(path, VectorizeConfig(band_rows=band_rows, halo_rows=halo_rows, **common))
    assert len(single) > 20
    assert len(banded) == len(single)
    assert all(iou(a, b) > 0.99 for a, b in zip(single.geometry, banded.geometry))
    assert np.allclose(banded["p_mean"], single["p_mean"])
    assert np.allclose(banded["area_m2"], single["area_m2"], rtol=0.01)
    if split:
        unsplit = vectorize_raster(path, VectorizeConfig(**SINGLE, min_area_m2=1.0, split_touching=False))
        assert len(single) > len(unsplit)  # the scene really has touching buildings to split


def test_small_halo_keeps_every_pixel_exactly_once(tmp_path):
    prob_yx, valid_yx = _busy_scene(seed=9)
    path = write_prob(tmp_path / "p.tif", prob_yx, mask_yx=valid_yx)
    exact = {"min_area_m2": 0.0, "simplify_m": 0.0}
    single = vectorize_raster(path, VectorizeConfig(**SINGLE, **exact))
    banded = vectorize_raster(path, VectorizeConfig(band_rows=24, halo_rows=3, **exact))
    assert_same_cover_without_overlap(banded, single)


def test_geographic_raster_areas_are_in_square_metres(tmp_path):
    from pyproj import Geod

    step = 5e-6  # degrees: about 0.36 m x 0.56 m at 50 N
    transform = Affine(step, 0.0, 10.0, 0.0, -step, 50.0)
    rect = (20, 30, 80, 110)
    path = write_prob(tmp_path / "p.tif", draw((100, 140), [rect]), crs="EPSG:4326", transform=transform)
    gdf = vectorize_raster(path, VectorizeConfig())
    assert gdf.crs == "EPSG:4326"
    truth_m2 = abs(Geod(ellps="WGS84").geometry_area_perimeter(map_box(*rect, transform=transform))[0])
    assert len(gdf) == 1
    assert gdf["area_m2"].iloc[0] == pytest.approx(truth_m2, rel=0.03)
    assert iou(gdf.geometry.iloc[0], map_box(*rect, transform=transform)) > 0.98
    assert gdf["gsd_m"].iloc[0] == pytest.approx(np.sqrt(step * 111_230 * step * 111_320 * np.cos(np.radians(50))), rel=0.02)


def test_masked_pixels_never_become_buildings(tmp_path):
    prob_yx = np.full((100, 120), 255, np.uint8)
    prob_yx[:, 60:] = 0
    prob_yx[20:40, 80:100] = 255  # a real building in the valid half
    valid_yx = np.ones_like(prob_yx, bool)
    valid_yx[:, :60] = False  # p = 1 but nodata
    valid_yx[30:40, 80:100] = False  # half of the real building is nodata too
    path = write_prob(tmp_path / "p.tif", prob_yx, mask_yx=valid_yx)
    gdf = vectorize_raster(path, VectorizeConfig(band_rows=32, halo_rows=8))
    assert len(gdf) == 1
    assert gdf["area_m2"].iloc[0] == pytest.approx(10 * 20 * 0.25)


def test_out_crs_reprojects_but_keeps_metric_areas(tmp_path):
    path = write_prob(tmp_path / "p.tif", draw((100, 100), [(10, 10, 50, 40), (60, 60, 90, 95)]))
    native = vectorize_raster(path, VectorizeConfig())
    lonlat = vectorize_raster(path, VectorizeConfig(), out_crs="EPSG:4326")
    assert lonlat.crs == "EPSG:4326"
    assert np.allclose(lonlat["area_m2"], native["area_m2"])
    back = lonlat.to_crs(native.crs)
    assert all(iou(a, b) > 0.999 for a, b in zip(back.geometry, native.geometry))
    assert 5 < lonlat.geometry.iloc[0].centroid.x < 20  # longitude near the UTM 33 central meridian


def test_empty_raster_gives_empty_frame_with_columns(tmp_path):
    path = write_prob(tmp_path / "p.tif", np.zeros((50, 60), np.uint8))
    gdf = vectorize_raster(path, VectorizeConfig(band_rows=16, halo_rows=4))
    assert len(gdf) == 0
    assert list(gdf.columns) == COLUMNS
    assert gdf.crs == "EPSG:32633"
    assert gdf["id"].dtype == np.int64 and gdf["area_m2"].dtype == np.float64


def test_min_area_filter(tmp_path):
    path = write_prob(tmp_path / "p.tif", draw((60, 60), [(5, 5, 8, 8), (20, 20, 30, 30)]))  # 2.25 and 25 m2
    assert len(vectorize_raster(path, VectorizeConfig())) == 1  # default 4 m2
    assert len(vectorize_raster(path, VectorizeConfig(min_area_m2=1.0))) == 2
    empty = vectorize_raster(path, VectorizeConfig(min_area_m2=30.0))
    assert len(empty) == 0 and list(empty.columns) == COLUMNS


def test_float_band_and_thresholds(tmp_path):
    rects = [(10, 10, 30, 40)]
    prob_yx = draw((50, 50), rects, value=1).astype(np.float32) * 0.7
    path = write_prob(tmp_path / "f.tif", prob_yx)
    gdf = vectorize_raster(path, VectorizeConfig())
    assert len(gdf) == 1 and gdf["p_mean"].iloc[0] == pytest.approx(0.7)
    assert gdf["area_m2"].iloc[0] == pytest.approx(20 * 30 * 0.25)
    assert len(vectorize_raster(path, VectorizeConfig(threshold=0.8))) == 0
    assert len(vectorize_raster(path, VectorizeConfig(), threshold_default=0.8)) == 0
    assert len(vectorize_raster(path, VectorizeConfig(threshold=0.6), threshold_default=0.8)) == 1


def test_regularize_squares_a_rotated_building(tmp_path):
    from rasterio.features import rasterize

    truth = affinity.rotate(box(500010, 4999955, 500030, 4999965), 30)  # 20 m x 10 m, rotated
    prob_yx = rasterize([(truth, 230)], out_shape=(100, 100), transform=UTM, dtype="uint8")
    path = write_prob(tmp_path / "p.tif", prob_yx)
    squared = vectorize_raster(path, VectorizeConfig(regularize=True))
    plain = vectorize_raster(path, VectorizeConfig())
    assert squared["reg_status"].tolist() == [0] and plain["reg_status"].tolist() == [-1]
    geom = squared.geometry.iloc[0]
    assert geom.is_valid and len(geom.exterior.coords) == 5
    assert iou(geom, truth) > 0.9
    assert squared["area_m2"].iloc[0] == pytest.approx(200, rel=0.05)


def test_boundary_band_splits_a_block(tmp_path):
    prob_yx = draw((60, 100), [(20, 10, 40, 90)])
    border_yx = draw((60, 100), [(20, 49, 40, 51)], value=255)
    path = write_prob(tmp_path / "p.tif", np.stack([prob_yx, border_yx]))
    assert len(vectorize_raster(path, VectorizeConfig())) == 1
    assert len(vectorize_raster(path, VectorizeConfig(boundary_band=2))) == 2
    with pytest.raises(InputError):
        vectorize_raster(path, VectorizeConfig(boundary_band=3))


def test_gap_band_splits_a_block_as_well_as_a_border_band(tmp_path):
    prob_yx = draw((60, 100), [(20, 10, 40, 90)])
    no_border_yx = np.zeros((60, 100), np.uint8)
    gap_yx = draw((60, 100), [(20, 49, 40, 51)], value=255)
    path = write_prob(tmp_path / "p.tif", np.stack([prob_yx, no_border_yx, gap_yx]))
    assert len(vectorize_raster(path, VectorizeConfig(boundary_band=2))) == 1, "the border band alone sees no wall"
    assert len(vectorize_raster(path, VectorizeConfig(boundary_band=(2, 3)))) == 2


class _Recorder:
    def __init__(self, cancel_after: int | None = None) -> None:
        self.calls: list[tuple[int, int, str]] = []
        self.cancel_after = cancel_after

    def update(self, done: int, total: int, stage: str) -> None:
        self.calls.append((done, total, stage))

    def cancelled(self) -> bool:
        return self.cancel_after is not None and len(self.calls) >= self.cancel_after


def test_reads_are_bounded_and_progress_is_reported(tmp_path, monkeypatch, read_windows):
    path = write_prob(tmp_path / "p.tif", draw((200, 50), [(10, 10, 190, 20)]))
    windows = read_windows
    progress = _Recorder()
    gdf = vectorize_raster(path, VectorizeConfig(band_rows=40, halo_rows=10), progress=progress)
    assert len(gdf) == 1
    # 40 x 40 cores: 5 block rows, 2 block columns, and the 180 x 10 px building read again on its own to be split
    assert len(windows) == 5 * 2 + 1
    assert max((r1 - r0) * (c1 - c0) for r0, r1, c0, c1 in windows) <= (40 + 2 * 10) ** 2  # no read holds more
    blocks = [w for w in windows if w != (10, 190, 10, 20)]  # all but the building's own box
    assert len(blocks) == 10 and all(r1 - r0 <= 60 and c1 - c0 <= 60 for r0, r1, c0, c1 in blocks)
    assert progress.calls == [(k, 10, "vectorize") for k in range(11)]  # a start, each block, the end
    with pytest.raises(Cancelled):
        vectorize_raster(path, VectorizeConfig(band_rows=40, halo_rows=10), progress=_Recorder(cancel_after=2))


def test_unreadable_raster_and_bad_options_are_reported(tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not a tiff")
    with pytest.raises(RasterReadError):
        vectorize_raster(bad, VectorizeConfig())
    good = write_prob(tmp_path / "p.tif", draw((20, 20), [(5, 5, 15, 15)]))
    with pytest.raises(ConfigError):
        vectorize_raster(good, VectorizeConfig(), out_crs="EPSG:not-a-crs")
    with pytest.raises(ConfigError):
        vectorize_raster(good, VectorizeConfig(band_rows=0))


def _pairs_overlap_m2(gdf) -> float:
    g = gdf.geometry
    return sum(g.iloc[i].intersection(g.iloc[j]).area for i, j in zip(*g.sindex.query(g, predicate="intersects")) if i < j)


@pytest.mark.parametrize("regularize", [False, True])
def test_split_parts_simplified_or_squared_never_overlap(tmp_path, regularize):
    """Touching buildings split along slanted walls (a border band): each part was simplified on its own, so a wall
    they share moved twice and they overlapped (707 pairs among 643 footprints on held-out Banepa; docs/splitting.md)."""
    rng = np.random.default_rng(4)
    prob_yx, border_yx = np.zeros((240, 240), np.uint8), np.zeros((240, 240), np.uint8)
    rows, cols = np.mgrid[0:50, 0:70]
    for r0, c0 in [(10, 10), (10, 120), (100, 10), (100, 120), (180, 60)]:
        prob_yx[r0:r0 + 50, c0:c0 + 70] = 230
        slope, at = rng.uniform(-0.15, 0.15), rng.uniform(25, 45)
        wall = np.abs(cols - (at + slope * (rows - 25))) <= 1.0  # a slanted wall two pixels wide: a staircase
        border_yx[r0:r0 + 50, c0:c0 + 70][wall] = 255
    path = write_prob(tmp_path / "p.tif", np.stack([prob_yx, border_yx]))
    parts = vectorize_raster(path, VectorizeConfig(boundary_band=2, regularize=regularize))
    assert len(parts) == 10 and parts.is_valid.all()
    assert _pairs_overlap_m2(parts) < 1e-6
    if regularize:
        assert (parts["reg_status"] == 0).sum() >= 8, "parts are still squared, cut back from their neighbours"
    whole = vectorize_raster(path, VectorizeConfig(split_touching=False))
    assert parts.union_all().symmetric_difference(whole.union_all()).area < 0.05 * whole.area.sum()


@pytest.mark.parametrize("crs, transform, dst_crs", [
    ("EPSG:3857", Affine(0.3, 0, 9517000, 0, -0.3, 3195000), None),
    ("EPSG:4326", Affine(3e-6, 0, 85.5, 0, -3e-6, 27.6), None),
])
def test_footprints_stay_valid_after_the_output_reprojection(tmp_path, crs, transform, dst_crs):
    """Outlines simplified in UTM with a vertex touching another ring cross themselves once bent into EPSG:3857 or
    4326 (3 of 105 on this ragged raster, from the 3857 input): they are repaired after the reprojection."""
    from scipy import ndimage

    rng = np.random.default_rng(2)
    p = ndimage.gaussian_filter(rng.random((400, 400)), 0.7)
    p = ((p - p.min()) / (p.max() - p.min()) * 255).astype(np.uint8)
    path = write_prob(tmp_path / "ragged.tif", p, crs=crs, transform=transform)
    gdf = vectorize_raster(path, VectorizeConfig(), out_crs=dst_crs)
    assert len(gdf) > 50 and gdf.is_valid.all()


@pytest.mark.parametrize("high, hint", [(1, "a 0/1 mask"), (100, "percentages (0-100)")])
def test_a_uint8_mask_or_percentages_warn_when_nothing_passes_the_threshold(tmp_path, high, hint):
    from geoseg.errors import InputWarning

    path = write_prob(tmp_path / "m.tif", draw((60, 100), [(10, 10, 30, 40), (35, 50, 55, 90)], value=high))
    with pytest.warns(InputWarning, match=rf"values reach only {high} of 255; if it holds {re.escape(hint)}") as rec:
        assert vectorize_raster(path, VectorizeConfig()).empty
    threshold = float(str(rec[0].message).rsplit("--threshold ", 1)[1])
    assert len(vectorize_raster(path, VectorizeConfig(threshold=threshold))) == 2, "the suggested threshold works"


def test_no_warning_for_a_probability_raster_that_simply_has_no_building(tmp_path):
    path = write_prob(tmp_path / "p.tif", draw((60, 100), [(10, 10, 30, 40)], value=120))  # 0.47: below 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert vectorize_raster(path, VectorizeConfig()).empty


def test_an_output_crs_that_cannot_hold_the_area_is_refused(tmp_path):
    """An orthographic view of the other hemisphere: the footprints were written with infinite coordinates."""
    path = write_prob(tmp_path / "p.tif", draw((60, 100), [(10, 10, 30, 40)]))
    with pytest.raises(ConfigError, match=r"^--dst-crs \+proj=ortho .* cannot represent the raster's area"):
        vectorize_raster(path, VectorizeConfig(), out_crs="+proj=ortho +lat_0=-45 +lon_0=-165")
    assert len(vectorize_raster(path, VectorizeConfig(), out_crs="+proj=ortho +lat_0=45 +lon_0=15")) == 1


def test_pinholes_are_filled_and_courtyards_kept(tmp_path):
    prob = draw((80, 80), [(10, 10, 70, 70)])
    prob[25, 25] = prob[15, 50] = 0  # one-pixel dips in the roof: noise
    prob[40:50, 30:45] = 0  # a courtyard of 150 pixels
    gdf = vectorize_raster(write_prob(tmp_path / "p.tif", prob), VectorizeConfig())
    holes = [box(*r.bounds).area for r in gdf.geometry.iloc[0].interiors]
    assert len(gdf) == 1 and len(holes) == 1 and holes[0] == pytest.approx(150 * 0.25, rel=0.1)
    assert gdf["area_m2"].iloc[0] == pytest.approx((60 * 60 - 150) * 0.25, rel=0.01)


def assert_same_cover_without_overlap(parts, whole) -> None:
    """``parts`` covers exactly what ``whole`` covers (same area, same union) and no two parts overlap."""
    assert np.isclose(parts["area_m2"].sum(), whole["area_m2"].sum())
    assert parts.union_all().equals(whole.union_all())
    overlap = sum(
        parts.geometry.iloc[i].intersection(parts.geometry.iloc[j]).area
        for i, j in zip(*parts.sindex.query(parts.geometry, predicate="intersects"))
        if i < j
    )
    assert overlap == 0.0



@pytest.mark.parametrize("scale", [255.0, 100.0])
def test_float_values_beyond_0_1_are_refused_not_thresholded(tmp_path, scale):
    prob = np.zeros((40, 40), np.float32)
    prob[10:30, 10:30] = 0.9 * scale  # 0-255 or percent stored as float: every building pixel "above 0.5"
    path = write_prob(tmp_path / "p.tif", prob)
    with pytest.raises(InputError, match="float probabilities must lie in 0-1") as err:
        vectorize_raster(str(path), VectorizeConfig(threshold=0.5))
    assert "\n" not in str(err.value)
    write_prob(tmp_path / "ok.tif", prob / scale)
    assert len(vectorize_raster(str(tmp_path / "ok.tif"), VectorizeConfig(threshold=0.5))) == 1


def test_footprints_across_the_antimeridian_keep_going_past_180_in_4326(tmp_path):
    """A UTM 60S probability raster over 180 degrees: in EPSG:4326 a footprint there spanned 360 degrees; in
    EPSG:3857, which jumps by 40,000 km there, the run is refused before any work."""
    from rasterio.warp import transform

    (x,), (y,) = transform("EPSG:4326", "EPSG:32760", [180.0], [-16.5])
    t = Affine(0.5, 0, round(x) - 50, 0, -0.5, round(y) + 50)
    path = write_prob(tmp_path / "fiji.tif", draw((200, 200), [(80, 60, 120, 140)]), crs="EPSG:32760", transform=t)
    gdf = vectorize_raster(path, VectorizeConfig(), out_crs="EPSG:4326")
    (minx, _, maxx, _), = gdf.geometry.bounds.values.tolist()
    assert len(gdf) == 1 and minx < 180.0 < maxx and maxx - minx < 1e-3
    assert gdf["area_m2"].iloc[0] == pytest.approx(40 * 80 * 0.25, rel=0.02)
    with pytest.raises(ConfigError, match="crosses the antimeridian in --dst-crs EPSG:3857"):
        vectorize_raster(path, VectorizeConfig(), out_crs="EPSG:3857")


def test_squared_footprints_of_separate_blobs_do_not_overlap(tmp_path, monkeypatch):
    """Squaring pushed outlines over neighbouring blobs that are not of their split component (0.20 m2 on this
    raster, nearly all of it in three pairs): the squared one of each pair is now cut back, and its area_m2 follows."""
    import shapely
    from scipy import ndimage

    from geoseg.footprints import finish

    rng = np.random.default_rng(2)
    p = ndimage.gaussian_filter(rng.random((400, 400)), 2.0)
    path = write_prob(tmp_path / "blobs.tif", ((p - p.min()) / (p.max() - p.min()) * 255).astype(np.uint8))
    cfg = VectorizeConfig(regularize=True, min_area_m2=1)

    def overlap_m2(gdf):
        g = gdf.geometry.values
        i, j = shapely.STRtree(g).query(g, predicate="overlaps")
        return float(shapely.area(shapely.intersection(g[i[i < j]], g[j[i < j]])).sum())

    monkeypatch.setattr(finish, "OVERLAP_REL_TOL", float("inf"))  # the pass off: the overlaps are there
    before = vectorize_raster(path, cfg)
    monkeypatch.undo()
    after = vectorize_raster(path, cfg)
    assert overlap_m2(before) > 0.1 and overlap_m2(after) < 1e-6
    assert len(after) == len(before) and after.is_valid.all()
    assert np.allclose(after["area_m2"], after.area, rtol=1e-6)
    assert (after.area <= before.area + 1e-9).all() and (after.area < before.area - 1e-6).sum() >= 3
