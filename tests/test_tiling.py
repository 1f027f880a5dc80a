import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geoseg.tiling import TileGrid
from geoseg.window import PixelWindow

shapes = st.tuples(st.integers(1, 700), st.integers(1, 700))
tilings = st.integers(16, 256).flatmap(lambda t: st.tuples(st.just(t), st.integers(0, (t - 1) // 2)))


@settings(max_examples=150, deadline=None)
@given(shapes, tilings)
def test_cores_partition_the_raster_and_reads_stay_inside(shape_yx, tiling):
    tile, overlap = tiling
    grid = TileGrid(shape_yx, tile, overlap)
    owner = np.zeros(shape_yx, np.int32)
    full = PixelWindow(0, 0, *shape_yx)
    for t in grid:
        assert full.contains(t.read), "halo left the raster"
        assert t.read.contains(t.core), "core outside its read window"
        assert t.read.height == min(tile, shape_yx[0]) and t.read.width == min(tile, shape_yx[1])
        owner[t.core.slices()] += 1
    assert (owner == 1).all(), "every pixel must be owned by exactly one core"


@settings(max_examples=150, deadline=None)
@given(shapes, tilings)
def test_flush_chunks_partition_rows_and_are_final(shape_yx, tiling):
    tile, overlap = tiling
    grid = TileGrid(shape_yx, tile, overlap)
    covered = np.zeros(shape_yx[0], np.int32)
    for r in range(grid.n_rows):
        chunk = grid.final_rows_after(r)
        covered[chunk.row_off:chunk.row_end] += 1
        later = [grid.row_read_window(j) for j in range(r + 1, grid.n_rows)]
        assert all(w.row_off >= chunk.row_end for w in later), "a later row touches a flushed chunk"
        start = grid.first_row_touching(chunk.row_off)
        earlier = [grid.row_read_window(j) for j in range(start)]
        assert all(w.row_end <= chunk.row_off for w in earlier), "resume start misses a contributing row"
    assert (covered == 1).all()


def test_non_square_non_multiple_raster():
    grid = TileGrid((1000, 333), 128, 32)
    assert grid.col_starts == [0, 96, 192, 205]
    assert grid.row_starts[:3] == [0, 96, 192]
    assert grid.tile(0, 3).read == PixelWindow(0, 205, 128, 128)
    assert grid.tile(0, 3).core == PixelWindow(0, 262, 112, 71)  # halfway into each overlap


def test_raster_smaller_than_tile_is_one_tile():
    grid = TileGrid((50, 70), 256, 32)
    assert len(grid) == 1
    t = grid.tile(0, 0)
    assert t.read == t.core == PixelWindow(0, 0, 50, 70)


@pytest.mark.parametrize("bad", [(0, 10), (10, -1)])
def test_bad_shapes_rejected(bad):
    with pytest.raises(ValueError):
        TileGrid(bad, 64, 8)


def test_overlap_must_be_below_half_tile():
    with pytest.raises(ValueError):
        TileGrid((100, 100), 64, 32)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 2000), tilings, st.integers(1, 900))
def test_column_blocks_partition_columns_and_cover_their_tiles(width, tiling, max_width):
    from geoseg.tiling import column_blocks

    tile, overlap = tiling
    grid = TileGrid((10, width), tile, overlap)
    blocks = column_blocks(grid, max_width)
    owned = np.zeros(width, np.int32)
    for b in blocks:
        owned[b.owned[0]:b.owned[1]] += 1
        for j in range(grid.n_cols):
            read = grid.tile(0, j).read
            touches = read.col_off < b.owned[1] and read.col_end > b.owned[0]
            assert touches == (j in b.tile_cols), "a block must predict exactly the tiles reaching its columns"
        assert b.read_cols[0] <= b.owned[0] and b.owned[1] <= b.read_cols[1]
    assert (owned == 1).all()
    assert all(b.owned[1] - b.owned[0] <= max(max_width, tile) for b in blocks)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 900), tilings, st.data())
def test_an_aligned_span_gives_its_pixels_the_tiles_and_weights_of_the_whole_axis(length, tiling, data):
    from geoseg.blending import window_1d
    from geoseg.tiling import _starts, aligned_span

    tile, overlap = tiling
    start = data.draw(st.integers(0, length - 1))
    end = data.draw(st.integers(start + 1, length))
    s, e = aligned_span(start, end, length, tile, overlap)
    assert 0 <= s <= start < end <= e <= length
    stride = tile - overlap
    whole = [(a, min(a + tile, length)) for a in _starts(length, tile, stride)]
    part = [(s + a, s + min(a + tile, e - s)) for a in _starts(e - s, tile, stride)]
    assert set(part) <= set(whole), "a tile of the span is not a tile of the whole axis"
    for p in range(start, end):
        def taper(spans, p=p):
            return sorted((a, b, float(window_1d(b - a, "cosine")[p - a])) for a, b in spans if a <= p < b)
        assert taper(part) == taper(whole), f"pixel {p} is covered differently"


def test_read_spans_merge_overlapping_read_windows_and_cut_them_to_the_block():
    from geoseg.tiling import read_spans

    g = TileGrid((100, 300), 64, 16)  # column starts 0, 48, 96, 144, 192, 236
    assert g.col_starts == [0, 48, 96, 144, 192, 236]
    assert read_spans(g, 0, [0, 1]) == [(0, 112)]  # overlapping windows merge
    assert read_spans(g, 0, [4, 0]) == [(0, 64), (192, 256)]  # apart: two spans, left to right
    assert read_spans(g, 0, [0, 4], within=(40, 200)) == [(40, 64), (192, 200)]
    assert read_spans(g, 0, []) == []
