"""vectorize_raster in 2D blocks: the small/big rule, seams across column borders and corners, bounded reads."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import shapely
from rasterio.env import get_gdal_config

from geoseg.config import VectorizeConfig
from geoseg.errors import OutputWarning
from geoseg.footprints import raster as vr
from geoseg.footprints.raster import BlockLayout, vectorize_raster
from geoseg.footprints.regularize import iou
from tests.footprints.test_vectorize_raster import SINGLE, assert_same_cover_without_overlap, draw, map_box, write_prob

EXACT = {"min_area_m2": 0.0, "simplify_m": 0.0}


def _brute_small(lay: BlockLayout, top: int, bottom: int, left: int, right: int) -> bool:
    """The rule as written: every block whose core meets the box sees it whole, clear of artificial edges."""
    n_rows, n_cols = lay.shape
    for i, j in itertools.product(range(n_rows), range(n_cols)):
        r0, r1, c0, c1 = lay.core(i, j)
        if not (r0 <= bottom and top < r1 and c0 <= right and left < c1):
            continue
        w0, w1, v0, v1 = lay.window(i, j)
        inside = w0 <= top and bottom < w1 and v0 <= left and right < v1
        clear = ((w0 == 0 or top > w0) and (w1 == lay.height or bottom < w1 - 1)
                 and (v0 == 0 or left > v0) and (v1 == lay.width or right < v1 - 1))
        if not (inside and clear):
            return False
    return True


@pytest.mark.parametrize("rows, cols, halo", [(10, 10, 3), (10, 7, 1), (8, 12, 9), (5, 5, 12)])
def test_small_rule_matches_its_definition(rows, cols, halo):
    lay = BlockLayout(height=37, width=41, rows=rows, cols=cols, halo=halo)
    rng = np.random.default_rng(rows * 100 + halo)
    top, left = rng.integers(0, 37, 400), rng.integers(0, 41, 400)
    bottom = np.minimum(36, top + rng.integers(0, 2 * halo + 3, 400))
    right = np.minimum(40, left + rng.integers(0, 2 * halo + 3, 400))
    fast = lay.small(top, bottom, left, right)
    slow = [_brute_small(lay, *box) for box in zip(top, bottom, left, right)]
    assert fast.tolist() == slow
    assert fast.any() and not fast.all()
    extent_ok = (bottom - top < halo) & (right - left < halo)
    assert fast[extent_ok].all()  # smaller than the halo: always small


def _one_polygon(gdf, rect):
    assert len(gdf) == 1
    geom = gdf.geometry.iloc[0]
    assert geom.geom_type == "Polygon" and len(geom.exterior.coords) == 5
    assert iou(geom, map_box(*rect)) > 0.999
    assert gdf["area_m2"].iloc[0] == pytest.approx((rect[2] - rect[0]) * (rect[3] - rect[1]) * 0.25)


@pytest.mark.parametrize(
    "rect",
    [
        (10, 35, 20, 47),  # small (< halo), across the column border at 40
        (10, 30, 20, 75),  # wider than the halo, across the column border at 40
        (33, 35, 46, 46),  # small, across the corner (40, 40)
        (25, 25, 55, 55),  # big, across the corner (40, 40)
        (5, 5, 115, 115),  # big, over 3 x 3 blocks
        (0, 0, 120, 120),  # the whole raster
    ],
)
def test_building_across_block_borders_is_one_polygon(tmp_path, rect):
    path = write_prob(tmp_path / "p.tif", draw((120, 120), [rect]))
    _one_polygon(vectorize_raster(path, VectorizeConfig(band_rows=40, halo_rows=16, **EXACT)), rect)


def test_shapes_joined_late_and_holes_across_blocks(tmp_path):
    """A U whose arms meet three block rows down, and a ring around a courtyard over 3 x 3 blocks."""
    u_rects = [(2, 2, 110, 12), (2, 50, 110, 60), (100, 2, 110, 60)]
    ring = draw((120, 200), [(10, 80, 110, 190)])
    ring[30:90, 100:170] = 0
    prob = np.maximum(draw((120, 200), u_rects), ring)
    path = write_prob(tmp_path / "p.tif", prob)
    gdf = vectorize_raster(path, VectorizeConfig(band_rows=30, halo_rows=5, **EXACT))
    single = vectorize_raster(path, VectorizeConfig(**SINGLE, **EXACT))
    assert len(gdf) == len(single) == 2
    u, annulus = sorted(gdf.geometry, key=lambda g: g.bounds[0])
    assert u.geom_type == "Polygon" and len(u.interiors) == 0 and len(u.exterior.coords) == 9
    assert annulus.geom_type == "Polygon" and len(annulus.interiors) == 1
    assert annulus.area == pytest.approx((100 * 110 - 60 * 70) * 0.25)
    assert all(shapely.equals(a, b) for a, b in zip(gdf.geometry, single.geometry))


def test_big_components_are_split_on_their_own_when_they_fit_in_a_window(tmp_path):
    """Two touching 20 x 20 buildings across the corner of 40 x 40 blocks, more than a halo apart."""
    path = write_prob(tmp_path / "p.tif", draw((100, 100), [(25, 25, 45, 45), (35, 45, 55, 65)]))
    single = vectorize_raster(path, VectorizeConfig(**SINGLE, **EXACT))
    assert len(single) == 2
    fits = vectorize_raster(path, VectorizeConfig(band_rows=40, halo_rows=8, **EXACT))  # 30 x 40 px < 56 x 56 window
    assert len(fits) == 2 and all(shapely.equals(a, b) for a, b in zip(single.geometry, fits.geometry))
    assert np.allclose(fits["p_mean"], single["p_mean"])


@pytest.mark.parametrize("band_rows, halo, extra", [(40, 24, 0), (30, 30, 0), (50, 20, 1)])
def test_a_town_of_touching_roofs_larger_than_a_window_is_split_window_by_window(tmp_path, band_rows, halo, extra):
    """A 6 x 6 block of touching 20 px roofs with predicted walls, its box (120 x 120 px) larger than any window here:
    it was kept whole (a 69,256 m2 "building" in a dense town); split one window at a time, it gives the roofs a
    single-block run gives, every pixel once. A halo no wider than a roof (20 px) can cut one roof at a core border: a
    part the two windows split differently is cut rather than joined wrongly."""
    prob = np.zeros((2, 160, 160), np.uint8)
    prob[0, 20:140, 20:140] = 230
    prob[1, 20:140:20, 20:140] = prob[1, 20:140, 20:140:20] = 255
    path = write_prob(tmp_path / "p.tif", prob)
    common = {"boundary_band": 2, "min_part_m2": 0.0, **EXACT}
    single = vectorize_raster(path, VectorizeConfig(**SINGLE, **common))
    town = vectorize_raster(path, VectorizeConfig(band_rows=band_rows, halo_rows=halo, **common))
    assert len(single) == 36 and len(town) == 36 + extra  # the roofs, walls given back to them
    assert_same_cover_without_overlap(town, single)
    # each roof is found again; a 1 px wall between two roofs may go to the other one (19 x 20 px of 20 x 20: 0.86+)
    assert min(max(iou(a, b) for b in town.geometry) for a in single.geometry) > 0.85


def test_a_long_thin_row_of_buildings_is_split_when_its_box_holds_no_more_pixels_than_a_window(tmp_path):
    """A row of houses longer than a window's side was kept whole; its box (18 x 60 px) holds fewer pixels than the
    36 x 36 window, so it is read and split on its own, as a single-block run splits it."""
    import warnings

    path = write_prob(tmp_path / "p.tif", draw((100, 100), [(25, 20, 35, 50), (33, 50, 43, 80)]))
    single = vectorize_raster(path, VectorizeConfig(**SINGLE, **EXACT))
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutputWarning)
        row = vectorize_raster(path, VectorizeConfig(band_rows=20, halo_rows=8, **EXACT))
    assert len(single) == len(row) == 2 and all(shapely.equals(a, b) for a, b in zip(single.geometry, row.geometry))


def _scene_2d(seed: int, shape=(210, 260), cell: int = 21) -> tuple[np.ndarray, np.ndarray]:
    """Building clusters (single, touching pairs, Ls) in ``cell`` x ``cell`` cells (all under ``cell`` px),
    many straddling row, column and corner seams; noisy ground, a little nodata."""
    rng = np.random.default_rng(seed)
    prob_yx = (rng.random(shape) * 110).astype(np.uint8)
    for r, c in itertools.product(range(0, shape[0] - cell, cell), range(0, shape[1] - cell, cell)):
        kind, v = rng.random(), int(rng.integers(140, 256))
        if kind < 0.15:
            continue
        if kind < 0.4:  # two 9 x 9 buildings touching along 4 rows: split in two
            r0, c0 = r + 1 + int(rng.integers(0, cell - 15)), c + 1 + int(rng.integers(0, cell - 19))
            prob_yx[r0 : r0 + 9, c0 : c0 + 9] = prob_yx[r0 + 5 : r0 + 14, c0 + 9 : c0 + 18] = v
            continue
        h, w = int(rng.integers(3, 10)), int(rng.integers(3, 10))
        r0, c0 = r + 1 + int(rng.integers(0, cell - 1 - h)), c + 1 + int(rng.integers(0, cell - 1 - w))
        prob_yx[r0 : r0 + h, c0 : c0 + w] = v
        if kind < 0.6:  # an L
            prob_yx[r0 + h - 2 : r0 + h, c0 : c + cell] = v
    valid_yx = rng.random(shape) > 0.002
    return prob_yx, valid_yx


@pytest.mark.parametrize("min_part", [0.0, 20.0])
@pytest.mark.parametrize("band_rows, cols, halo", [(48, 40, 24), (32, 56, 30), (25, 25, 25), (48, 40, 6), (19, 23, 1)])
def test_block_run_equals_single_block_run(tmp_path, monkeypatch, band_rows, cols, halo, min_part):
    """Clusters here are < 21 px: smaller than the halo (small) or than a window (big, split on their own).

    ``min_part`` 20 m2 (80 px at 0.5 m, the default) merges split-off pieces back: blocks must agree on that too.
    """
    prob_yx, valid_yx = _scene_2d(seed=band_rows)
    path = write_prob(tmp_path / "p.tif", prob_yx, mask_yx=valid_yx)
    common = {"min_area_m2": 1.0, "min_part_m2": min_part}
    single = vectorize_raster(path, VectorizeConfig(**SINGLE, **common))
    monkeypatch.setattr(vr, "BLOCK_COLS", cols)
    blocks = vectorize_raster(path, VectorizeConfig(band_rows=band_rows, halo_rows=halo, **common))
    assert len(single) > 60
    assert len(blocks) == len(single)
    assert all(shapely.equals(a, b) for a, b in zip(single.geometry, blocks.geometry))
    assert np.allclose(blocks["p_mean"], single["p_mean"], rtol=1e-12)
    assert np.array_equal(blocks["area_m2"], single["area_m2"])
    monkeypatch.setattr(vr, "BLOCK_COLS", None)
    unsplit = vectorize_raster(path, VectorizeConfig(**SINGLE, min_area_m2=1.0, split_touching=False))
    every_piece = vectorize_raster(path, VectorizeConfig(**SINGLE, min_area_m2=1.0, min_part_m2=0.0))
    assert len(every_piece) > len(unsplit)  # the scene really has touching buildings to split
    if min_part:
        assert len(unsplit) <= len(single) < len(every_piece)  # pieces merged back


@pytest.mark.parametrize("band_rows, cols, halo", [(16, 16, 1), (20, 13, 3), (7, 30, 2)])
def test_tiny_blocks_keep_every_pixel_exactly_once(tmp_path, monkeypatch, band_rows, cols, halo):
    prob_yx, valid_yx = _scene_2d(seed=3, shape=(120, 150))
    path = write_prob(tmp_path / "p.tif", prob_yx, mask_yx=valid_yx)
    single = vectorize_raster(path, VectorizeConfig(**SINGLE, split_touching=False, **EXACT))
    monkeypatch.setattr(vr, "BLOCK_COLS", cols)
    blocks = vectorize_raster(path, VectorizeConfig(band_rows=band_rows, halo_rows=halo, split_touching=False, **EXACT))
    assert len(blocks) == len(single)  # no splitting: components are the instances, whatever the blocks
    assert all(shapely.equals(a, b) for a, b in zip(single.geometry, blocks.geometry))
    assert np.allclose(blocks["p_mean"], single["p_mean"], rtol=1e-12)
    split = vectorize_raster(path, VectorizeConfig(band_rows=band_rows, halo_rows=halo, **EXACT))
    assert_same_cover_without_overlap(split, single)


def test_reads_are_bounded_in_both_directions(tmp_path, monkeypatch, read_windows):
    path = write_prob(tmp_path / "p.tif", draw((100, 300), [(10, 10, 90, 290)]))
    windows = read_windows
    monkeypatch.setattr(vr, "BLOCK_COLS", 64)
    gdf = vectorize_raster(path, VectorizeConfig(band_rows=32, halo_rows=8))
    assert len(gdf) == 1 and gdf.geometry.iloc[0].geom_type == "Polygon"
    assert len(windows) >= 4 * 5  # the blocks, then the building (80 x 280 px, larger than a window) by windows
    assert max(r1 - r0 for r0, r1, _, _ in windows) <= 32 + 2 * 8
    assert max(c1 - c0 for _, _, c0, c1 in windows) <= 64 + 2 * 8


def test_gdal_cache_setting_is_restored(tmp_path):
    path = write_prob(tmp_path / "p.tif", draw((50, 50), [(10, 10, 30, 30)]))
    before = get_gdal_config("GDAL_CACHEMAX")
    assert len(vectorize_raster(path, VectorizeConfig())) == 1
    assert get_gdal_config("GDAL_CACHEMAX") == before


def test_working_memory_does_not_grow_with_width(tmp_path):
    """Peak of traced (numpy + Python) allocations for a 8x wider raster with the same buildings: about the same."""
    import tracemalloc

    rects = [(20 + 40 * k, 30, 40 + 40 * k, 60) for k in range(5)]
    peaks = []
    for width in (500, 4000):
        path = write_prob(tmp_path / f"p{width}.tif", draw((240, width), rects))
        vectorize_raster(path, VectorizeConfig(band_rows=128, halo_rows=16))  # lazy imports are not the run's memory
        tracemalloc.start()
        gdf = vectorize_raster(path, VectorizeConfig(band_rows=128, halo_rows=16))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert len(gdf) == 5
    assert peaks[1] < 1.3 * peaks[0]  # full-width bands: ~8x
