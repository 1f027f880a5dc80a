"""Training chips read on the fly from engine tiles equal what the in-memory loader sees."""

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from shapely.geometry import box

from geoseg.train.chips import ChipSampler
from geoseg.train.regions import load_region
from geoseg.train.tiles import TiledRegion
from tests.conftest import scene, write_raster

GSD = 0.5
T = Affine(GSD, 0, 500000, 0, -GSD, 5000000)


@pytest.fixture
def labelled(tmp_path):
    rng = np.random.default_rng(3)
    rects = []
    for _ in range(30):
        r, c = rng.integers(0, 280, size=2)
        h, w = rng.integers(6, 20, size=2)
        rects.append((int(r), int(c), int(r + h), int(c + w)))
    mask = np.ones((300, 300), bool)
    mask[:, 200:] = False  # the right third has no data
    raster = write_raster(tmp_path / "img.tif", scene((300, 300), rects), transform=T, mask=mask)
    geoms = [box(T.c + c0 * GSD, T.f - r1 * GSD, T.c + c1 * GSD, T.f - r0 * GSD) for r0, c0, r1, c1 in rects]
    gpd.GeoDataFrame(geometry=geoms, crs=32633).to_crs(4326).to_file(tmp_path / "labels.geojson")
    return str(raster), str(tmp_path / "labels.geojson")


def test_each_tile_matches_the_whole_raster_loaded_in_memory(labelled):
    raster, labels = labelled
    tiled = TiledRegion(raster, labels, GSD, tile_size=100)
    whole = load_region(raster, labels, GSD)  # cropped to the valid columns 0..199
    assert whole.label.shape == (300, 200)
    checked = 0
    for t in tiled.tiles:
        image, inst, valid = tiled._load(t)
        r = t.read
        if r.col_off >= 200:
            assert not valid.any() and tiled.tile_weights[t.index] == 0
            continue
        np.testing.assert_array_equal(image, whole.image[:, r.row_off:r.row_end, r.col_off:r.col_end])
        np.testing.assert_array_equal(inst, whole.label[r.row_off:r.row_end, r.col_off:r.col_end])
        np.testing.assert_array_equal(valid, whole.valid[r.row_off:r.row_end, r.col_off:r.col_end])
        checked += int((inst > 0).any())
    assert checked >= 4, "the labels must land on several tiles"


def test_draws_come_only_from_valid_tiles_and_the_cache_stays_bounded(labelled):
    raster, labels = labelled
    tiled = TiledRegion(raster, labels, GSD, tile_size=100, cache_tiles=2, refresh=0.5)
    rng = np.random.default_rng(0)
    for _ in range(60):
        image, inst, valid = tiled.draw(rng, 64)
        assert image.shape == (3, 64, 64) and inst.shape == valid.shape == (64, 64)
        assert valid.all(), "fully masked tiles are never drawn"
        assert len(tiled.cache) <= 2
    assert all(col < 2 for _, col in tiled.cache)
    assert tiled.draw(rng, 101) is None, "a crop larger than a tile cannot be drawn"


def test_sampler_draws_the_same_kind_of_chips_from_either_source(labelled):
    raster, labels = labelled
    for region in (TiledRegion(raster, labels, GSD, tile_size=150), load_region(raster, labels, GSD)):
        img, lab, val = ChipSampler([region], 48, (0.5, 1.5), seed=1, augment=False).batch(8)
        assert img.shape == (8, 3, 48, 48) and lab.shape == (8, 2, 48, 48) and val.shape == (8, 48, 48)
        bright = img.mean(axis=1) > 128
        on = lab[:, 0] > 0
        assert on.any() and (bright[on].mean() > 0.8) and (~bright[~on & (val > 0)]).mean() > 0.8


def test_targets_building_border_and_gap():
    from geoseg.train.regions import instance_targets

    inst = np.zeros((12, 26), np.int32)
    inst[2:10, 2:8] = 1
    inst[2:10, 10:16] = 2  # a 2-pixel gap (columns 8, 9) between buildings 1 and 2
    inst[11, 25] = 3  # a lone one-pixel building far from the others
    b, e, g = instance_targets(inst, 3)
    np.testing.assert_array_equal(b, inst > 0)
    assert e[5, 2] and e[5, 7] and not e[5, 4], "outline pixels only"
    assert g[2:10, 8:10].all() and g.sum() == g[:, 8:10].sum(), "gap pixels are exactly those between two buildings"
    assert not g[:, 17:].any(), "no gap around a lone building"
    assert instance_targets(inst, 2).shape == (2, 12, 26)


def test_sampler_with_three_targets(labelled):
    raster, labels = labelled
    _, lab, _ = ChipSampler([load_region(raster, labels, GSD)], 48, (0.5, 1.0), seed=2, n_targets=3).batch(4)
    assert lab.shape == (4, 3, 48, 48) and set(np.unique(lab)) <= {0, 1}


@pytest.mark.shared
def test_a_real_mosaic_is_sampled_tile_by_tile_with_its_osm_labels(shared_data):
    """Kampala (EPSG:3857 mosaic with an internal mask, OSM labels in EPSG:4326): chips carry buildings."""
    folder = shared_data / "buildings" / "oam_mosaics_r2_kampala_ggaba_ug"
    region = TiledRegion(str(folder / "r2_kampala_ggaba_ug_z20.tif"), str(folder / "r2_kampala_ggaba_ug_buildings.geojson"),
                         0.3, tile_size=512, cache_tiles=4)
    assert 0 < (region.tile_weights > 0).sum() < len(region.tiles), "the masked margins of the mosaic are skipped"
    _, lab, val = ChipSampler([region], 128, (0.3, 0.6), seed=0, augment=False).batch(8)
    assert val.mean() > 0.6 and lab[:, 0].mean() > 0.01, "valid chips with buildings in them"
    assert len(region.cache) <= 4


def test_memory_regions_read_like_the_engine_uint16_single_band_and_rgba(tmp_path):
    """``source = "memory"`` reads through the engine's reader: 16-bit imagery is scaled to uint8, one band is
    replicated, and an RGBA file's alpha is its mask, as ``geoseg segment`` would see them."""
    import warnings

    from geoseg.errors import BandWarning

    rects = [(10, 10, 40, 40), (60, 50, 90, 95)]
    img = scene((120, 120), rects)
    geoms = [box(T.c + c0 * GSD, T.f - r1 * GSD, T.c + c1 * GSD, T.f - r0 * GSD) for r0, c0, r1, c1 in rects]
    gpd.GeoDataFrame(geometry=geoms, crs=32633).to_file(tmp_path / "l.gpkg")
    alpha = np.full((1, 120, 120), 255, np.uint8)
    alpha[:, 100:] = 0
    cases = {
        "u16": img.astype(np.uint16) * 40 + 1000,
        "gray": img[:1],
        "rgba": np.concatenate([img, alpha]),
    }
    for name, data in cases.items():
        extra = {"photometric": "RGB", "alpha": "YES"} if name == "rgba" else {}
        path = write_raster(tmp_path / f"{name}.tif", data, transform=T, **extra)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BandWarning)
            region = load_region(str(path), str(tmp_path / "l.gpkg"), GSD * 2)
        assert region.image.dtype == np.uint8 and region.image.shape[0] == 3, name
        inside = region.label > 0
        assert region.image[:, inside].mean() > region.image[:, ~inside & region.valid].mean() + 80, name
        if name == "rgba":
            assert region.label.shape[0] == 50, "cropped to the 100 rows with data (at half resolution)"


def _flat_region(name, grey, gsd, span=None, size=100):
    from geoseg.train.regions import Region

    image = np.full((3, size, size), grey, np.uint8)
    return Region(name, image, np.zeros((size, size), np.int32), np.ones((size, size), bool), gsd, span)


def test_regions_are_drawn_by_ground_area():
    fine, coarse = _flat_region("fine", 200, 0.5), _flat_region("coarse", 40, 1.0)  # 2,500 m2 against 10,000 m2
    sampler = ChipSampler([fine, coarse], 16, (1.0, 1.0), seed=0, augment=False)
    np.testing.assert_allclose(sampler.serving(1.0), [0.2, 0.8])
    img, _, _ = sampler.batch(200)
    share_fine = (img.reshape(200, -1).mean(axis=1) > 128).mean()
    assert 0.12 < share_fine < 0.28


def test_a_region_serves_only_the_chip_gsds_of_its_span():
    """One place at two zoom levels: chips finer than 1 m come from the sharp raster, coarser ones from the other."""
    z21, z20 = _flat_region("z21", 200, 0.5, (0.5, 1.0)), _flat_region("z20", 40, 1.0, (1.0, 2.0))
    for gsd_range, want in (((0.5, 0.95), {200}), ((1.05, 2.0), {40}), ((0.5, 2.0), {200, 40})):
        img, _, _ = ChipSampler([z21, z20], 16, gsd_range, seed=1, augment=False).batch(40)
        assert set(np.unique(img.reshape(40, -1).mean(axis=1)).astype(int)) == want, gsd_range
    sampler = ChipSampler([z21, z20, _flat_region("any", 90, 1.0)], 16, (0.5, 2.0))
    np.testing.assert_allclose(sampler.serving(0.7), [2500 / 12500, 0, 10000 / 12500])
    with pytest.raises(ValueError, match="no training region serves chips at 3 m"):
        ChipSampler([z21, z20], 16, (0.5, 3.0)).serving(3.0)


def test_training_entries_load_at_their_own_base_gsd(labelled):
    from geoseg.train.fit import train_regions

    raster, labels = labelled
    dcfg = {"base_gsd_m": GSD, "train": [{"raster": raster, "labels": labels},
                                         {"raster": raster, "labels": labels, "base_gsd_m": 2 * GSD, "chip_gsd_m": [1, 2]}]}
    for source in ("memory", "tiles"):
        a, b = train_regions(dcfg, {"source": source, "chip_size": 48, "gsd_range": [0.5, 2.0]})
        assert (a.gsd_m, b.gsd_m) == (GSD, 2 * GSD) and (a.chip_gsd_m, b.chip_gsd_m) == (None, (1.0, 2.0))
        assert abs(a.valid_pixels / b.valid_pixels - 4) < 0.2, "both sources: valid pixels, not whole tiles"
        if source == "tiles":
            assert a.grid.shape_yx == tuple(2 * n for n in b.grid.shape_yx)
            assert a.valid_pixels <= a.grid.width * a.grid.height  # a raster smaller than a tile counted 4x before


def _patchy_region(size=600, block=200):
    """Imagery only in a ``block`` x ``block`` corner of a ``size`` x ``size`` region (11 % valid at 600/200)."""
    from geoseg.train.regions import Region

    valid = np.zeros((size, size), bool)
    valid[:block, :block] = True
    image = np.where(valid, 200, 0).astype(np.uint8)[None].repeat(3, axis=0)
    return Region("patchy", image, np.zeros((size, size), np.int32), valid, 1.0)


def _scattered_region(size=800):
    """A 180 px block of imagery in a corner and 48 px patches 80 px apart below it: small windows fit in many
    places, large ones only in the corner."""
    from geoseg.train.regions import Region

    valid = np.zeros((size, size), bool)
    valid[:180, :180] = True
    for y in range(220, size, 80):
        for x in range(0, size, 80):
            valid[y:y + 48, x:x + 48] = True
    image = np.where(valid, 200, 0).astype(np.uint8)[None].repeat(3, axis=0)
    return Region("scattered", image, np.zeros((size, size), np.int32), valid, 1.0)


def test_chip_gsds_stay_log_uniform_when_coarse_windows_are_often_masked():
    """A coarse chip needs a larger window, which is more often too masked; the GSD must not be redrawn on a miss."""
    region = _scattered_region()
    rng = np.random.default_rng(1)
    fits = {crop: np.mean([region.draw(rng, crop)[2].mean() >= 0.6 for _ in range(400)]) for crop in (32, 160)}
    assert fits[32] > 3 * fits[160], fits  # the setting: coarse windows miss far more often
    sampler = ChipSampler([region], 32, (1.0, 5.0), seed=0, augment=False)  # windows of 32-160 px
    gsds = np.array([sampler.sample_with_gsd()[0] for _ in range(400)])
    coarse_half = (gsds > np.sqrt(5.0)).mean()
    assert 0.42 < coarse_half < 0.58, coarse_half
    top_fifth = (gsds > 5.0 ** 0.8).mean()
    assert 0.13 < top_fifth < 0.27, top_fifth


def test_memory_windows_are_placed_on_the_imagery():
    region = _patchy_region()
    rng = np.random.default_rng(0)
    shares = [region.draw(rng, 64)[2].mean() for _ in range(300)]
    assert np.mean(shares) > 0.6, "uniform placement would give about 0.1"
    assert min(region.draw(rng, 600)[2].mean() for _ in range(3)) == pytest.approx(1 / 9), "the whole region fits once"
    from geoseg.train.regions import Region

    yy, xx = np.mgrid[:300, :300]
    coords = Region("flat", np.full((3, 300, 300), 90, np.uint8), (yy * 1000 + xx).astype(np.int32),
                    np.ones((300, 300), bool), 1.0)  # each pixel's label says where it is
    origins = np.array([divmod(int(coords.draw(rng, 100)[1][0, 0]), 1000) for _ in range(400)])
    assert origins.min() == 0 and origins.max() == 200, "every place in a fully valid region is reachable"


def test_a_gsd_no_window_can_serve_is_a_one_line_error():
    from geoseg.errors import InputError
    from geoseg.train.regions import Region

    valid = np.zeros((100, 100), bool)
    valid[:, ::2] = True  # every window is half valid: never the 60 % a chip needs
    region = Region("striped", np.full((3, 100, 100), 90, np.uint8), np.zeros((100, 100), np.int32), valid, 1.0)
    with pytest.raises(InputError, match=r"at least 60% valid in 200 windows.*train\.gsd_range"):
        ChipSampler([region], 16, (1.0, 2.0), seed=0, augment=False).sample()


def _aoi(tmp_path, cols, crs=4326, name="aoi.gpkg"):
    """A polygon over raster columns ``cols = (c0, c1)`` of the fixture's grid (all rows), written in ``crs``."""
    c0, c1 = cols
    geom = box(T.c + c0 * GSD, T.f - 300 * GSD, T.c + c1 * GSD, T.f)
    gpd.GeoDataFrame(geometry=[geom], crs=32633).to_crs(crs).to_file(tmp_path / name)
    return str(tmp_path / name)


@pytest.mark.parametrize("crs", [32633, 4326])
def test_outside_the_aoi_nothing_is_valid_in_memory_or_tile_by_tile(labelled, tmp_path, crs):
    """An entry's aoi (the area where its labels are complete, any CRS) masks the rest like nodata: the in-memory
    region is cropped to it, and each tile read on the fly is valid only inside it."""
    raster, labels = labelled
    aoi = _aoi(tmp_path, (40, 120), crs)
    whole = load_region(raster, labels, GSD, aoi=aoi)
    assert abs(whole.valid.shape[1] - 80) <= 1 and whole.valid.all(), "cropped to the aoi's 80 columns"
    assert whole.has_buildings
    tiled = TiledRegion(raster, labels, GSD, tile_size=100, aoi=aoi)
    assert tiled.tile_weights[:, 2].sum() == 0 and tiled.tile_weights[:, 0].min() > 0  # columns 200-299: none
    _, _, valid = tiled._load(tiled.tiles.tile(1, 1))  # columns 100-199: the aoi ends at 120
    assert valid[:, :19].all() and not valid[:, 21:].any()
    plain = TiledRegion(raster, labels, GSD, tile_size=100)
    assert plain._load(plain.tiles.tile(1, 1))[2][:, 21:].all(), "without an aoi those pixels are valid"


def test_an_aoi_off_the_raster_or_without_polygons_is_a_one_line_error(labelled, tmp_path):
    from geoseg.errors import InputError

    raster, labels = labelled
    far = tmp_path / "far.geojson"
    gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)], crs=4326).to_file(far)
    for make in (lambda a: load_region(raster, labels, GSD, aoi=a), lambda a: TiledRegion(raster, labels, GSD, 100, aoi=a)):
        with pytest.raises(InputError, match="no polygon of the aoi .* lies on"):
            make(str(far))
    points = tmp_path / "points.geojson"
    gpd.GeoDataFrame(geometry=gpd.points_from_xy([T.c + 10], [T.f - 10]), crs=32633).to_file(points)
    with pytest.raises(InputError, match="aoi"):
        load_region(raster, labels, GSD, aoi=str(points))


def test_labels_outside_the_aoi_do_not_count_as_labelled(labelled, tmp_path):
    """A tile-by-tile region whose aoi holds no label polygon warns, as a raster without labels does."""
    from geoseg.errors import LabelWarning

    raster, _ = labelled
    one = tmp_path / "one.gpkg"  # one building in the top-left corner
    gpd.GeoDataFrame(geometry=[box(T.c, T.f - 10 * GSD, T.c + 10 * GSD, T.f)], crs=32633).to_file(one)
    assert TiledRegion(raster, str(one), GSD, 100, aoi=_aoi(tmp_path, (0, 60))).has_buildings
    with pytest.warns(LabelWarning, match="teach only 'no building'"):
        assert not TiledRegion(raster, str(one), GSD, 100, aoi=_aoi(tmp_path, (100, 200), name="b.gpkg")).has_buildings


def test_a_self_crossing_aoi_is_repaired_not_fatal(labelled, tmp_path):
    """A bow-tie outline (common in hand-drawn areas) would make GEOS raise on union; it is repaired first."""
    from shapely.geometry import Polygon

    raster, labels = labelled
    x0, y1 = T.c, T.f
    bow = Polygon([(x0, y1), (x0 + 100, y1 - 100), (x0 + 100, y1), (x0, y1 - 100)])  # 200 x 200 px, crossing itself
    second = box(x0 + 50, y1 - 50, x0 + 60, y1 - 40)  # a second polygon across the crossing
    gpd.GeoDataFrame(geometry=[bow, second], crs=32633).to_file(tmp_path / "bow.gpkg")
    tiled = TiledRegion(raster, labels, GSD, 100, aoi=str(tmp_path / "bow.gpkg"))
    assert tiled.tile_weights[0, 0] > 0 and tiled.tile_weights[2, 2] == 0


def _label_offset(k: float, n: int = 60, size: int = 64) -> np.ndarray:
    """Mean (rows, cols) of a building's label centroid minus its imagery's centroid, in chip pixels, for chips
    ``k`` times coarser than the region (each chip the whole region, one bright box)."""
    from geoseg.train.regions import Region

    rng, offs = np.random.default_rng(0), []
    for _ in range(n):
        side = round(size * k)
        y, x = rng.integers(side // 4, side // 2, 2)
        h, w = rng.integers(side // 8, side // 4, 2)
        img, lab = np.zeros((3, side, side), np.uint8), np.zeros((side, side), np.int32)
        img[:, y:y + h, x:x + w], lab[y:y + h, x:x + w] = 255, 1
        gsd = 0.15 * side / size
        s = ChipSampler([Region("t", img, lab, np.ones((side, side), bool), 0.15)], size, (gsd, gsd * (1 + 1e-9)),
                        seed=0, augment=False, n_targets=1)
        _, im, t, _ = s.sample_with_gsd()
        b, m = im[0] / 255.0, t[0].astype(float)
        yy, xx = np.mgrid[:size, :size]
        offs.append([(yy * m).sum() / m.sum() - (yy * b).sum() / b.sum(), (xx * m).sum() / m.sum() - (xx * b).sum() / b.sum()])
    return np.mean(offs, axis=0)


@pytest.mark.parametrize("k", [2.6, 3.3, 8.0])
def test_labels_of_coarse_chips_stay_on_their_imagery(k):
    """Labels are resized centre-aligned, as the imagery is: at most half a region pixel off (the nearest pixel
    to each chip pixel's centre), and about 0 on average when the factor is not a whole number. Top-left nearest
    sampling put them (k - 1) / 2 region pixels off: 0.44 chip pixels at k = 8."""
    off = np.abs(_label_offset(k))
    assert (off <= 0.5 / k + 0.03).all(), off
    if k != round(k):
        assert (off < 0.08).all(), off
