"""label_instances: splitting touching buildings without over-splitting single ones."""

from __future__ import annotations

import numpy as np
import pytest

from geoseg.footprints.instances import label_instances


def _canvas(shape_yx=(80, 100)) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(shape_yx, np.float32), np.ones(shape_yx, bool)


def _n(labels: np.ndarray) -> int:
    ids = np.unique(labels[labels > 0])
    assert labels.dtype == np.int32
    assert list(ids) == list(range(1, len(ids) + 1)), "labels must be 1..N"
    return len(ids)


def test_two_touching_squares_are_split():
    prob, valid = _canvas()
    prob[10:30, 10:30] = 0.9  # 20x20
    prob[20:40, 30:50] = 0.9  # 20x20, touching the first along 10 pixels
    labels = label_instances(prob, valid, 0.5)
    assert _n(labels) == 2
    assert labels[15, 15] != labels[35, 45]
    sizes = np.bincount(labels.ravel())[1:]
    assert all(300 <= s <= 500 for s in sizes), sizes
    assert _n(label_instances(prob, valid, 0.5, split_touching=False)) == 1


@pytest.mark.parametrize("shape", ["square", "rectangle", "L", "noisy"])
def test_single_buildings_are_not_split(shape):
    prob, valid = _canvas()
    if shape == "square":
        prob[10:60, 10:60] = 1.0
    elif shape == "rectangle":
        prob[10:30, 5:95] = 1.0
    elif shape == "L":
        prob[10:70, 10:30] = 1.0
        prob[50:70, 10:80] = 1.0
    else:  # a square with a jagged outline (+-3 px per row/column), pin holes and a shallow notch
        rng = np.random.default_rng(3)
        for row in range(10, 60):
            prob[row, 10 + rng.integers(-3, 4) : 60 + rng.integers(-3, 4)] = 1.0
        for col in range(12, 58):
            prob[10 + rng.integers(-3, 4) : 60 + rng.integers(-3, 4), col] = 1.0
        prob[rng.integers(15, 55, 6), rng.integers(15, 55, 6)] = 0.0
        prob[30:34, 55:70] = 0.0
    assert _n(label_instances(prob, valid, 0.5)) == 1


def test_nodata_is_never_building():
    prob, valid = _canvas()
    prob[:] = 1.0
    valid[:, 50:] = False
    labels = label_instances(prob, valid, 0.5)
    assert not labels[:, 50:].any()
    assert labels[:, :50].all()
    valid[:] = False
    assert not label_instances(prob, valid, 0.5).any()


def test_nan_probability_is_background():
    prob, valid = _canvas()
    prob[10:20, 10:20] = np.nan
    assert not label_instances(prob, valid, 0.5).any()


def test_min_pixels_drops_small_instances_and_renumbers():
    prob, valid = _canvas()
    prob[5:8, 5:8] = 1.0  # 9 px
    prob[20:30, 20:30] = 1.0  # 100 px
    prob[50:52, 70:75] = 1.0  # 10 px
    labels = label_instances(prob, valid, 0.5, min_pixels=10)
    assert _n(labels) == 2
    assert labels[6, 6] == 0
    assert labels[25, 25] > 0 and labels[51, 72] > 0


def test_threshold_is_inclusive():
    prob, valid = _canvas()
    prob[10:20, 10:20] = 0.5
    assert _n(label_instances(prob, valid, 0.5)) == 1
    assert _n(label_instances(prob, valid, 0.51)) == 0


def test_boundary_channel_splits_what_distance_keeps_whole():
    prob, valid = _canvas()
    prob[20:40, 10:90] = 1.0  # one long block: the distance transform sees one building
    boundary = np.zeros_like(prob)
    boundary[20:40, 49:51] = 1.0  # a predicted wall across it
    assert _n(label_instances(prob, valid, 0.5)) == 1
    labels = label_instances(prob, valid, 0.5, boundary=boundary)
    assert _n(labels) == 2
    assert labels[30, 20] != labels[30, 80]
    assert (labels[20:40, 10:90] > 0).all(), "border pixels still belong to a building"


def test_a_broken_predicted_wall_still_splits():
    """Held-out border outputs are weak and patchy: a wall predicted over most of its length must do."""
    prob, valid = _canvas()
    prob[20:40, 10:90] = 1.0
    boundary = np.zeros_like(prob)
    boundary[20:35, 49:51] = 0.8  # the wall's last 5 rows are not predicted: the two roofs stay connected there
    labels = label_instances(prob, valid, 0.5, boundary=boundary)
    assert _n(labels) == 2
    assert labels[30, 20] != labels[30, 80] and labels[38, 20] != labels[38, 80]
    assert (labels[20:40, 10:90] > 0).all()


def test_a_predicted_outline_does_not_cut_a_building():
    prob, valid = _canvas()
    prob[20:50, 20:70] = 1.0
    boundary = np.zeros_like(prob)
    boundary[20:50, 20:70] = 0.9
    boundary[22:48, 22:68] = 0.05  # border probability high only on the outline ring
    labels = label_instances(prob, valid, 0.5, boundary=boundary)
    assert _n(labels) == 1 and (labels[20:50, 20:70] > 0).all()


def test_weak_border_below_the_cut_changes_nothing():
    prob, valid = _canvas()
    prob[20:40, 10:90] = 1.0
    boundary = np.zeros_like(prob)
    boundary[20:40, 49:51] = 0.3  # below BORDER_CUT: not a wall
    assert _n(label_instances(prob, valid, 0.5, boundary=boundary)) == 1


def test_a_lower_border_cut_splits_along_a_weaker_wall():
    """Models differ in how high their border output runs: the cut is per model (card ``border_cut``)."""
    prob, valid = _canvas()
    prob[20:40, 10:90] = 1.0
    boundary = np.zeros_like(prob)
    boundary[20:40, 49:51] = 0.08  # a faint predicted wall
    boundary[25:35, 20:30] = 0.03  # fainter noise inside the left roof
    assert _n(label_instances(prob, valid, 0.5, boundary=boundary, border_cut=0.5)) == 1
    labels = label_instances(prob, valid, 0.5, boundary=boundary, border_cut=0.05)
    assert _n(labels) == 2 and labels[30, 20] != labels[30, 80] and (labels[20:40, 10:90] > 0).all()


def _two_rooms_and_a_shed() -> tuple[np.ndarray, np.ndarray]:
    """Two touching 20x20 roofs (as above) and a 10x10 shed hanging off the first by a 2-px neck."""
    prob, valid = _canvas()
    prob[10:30, 10:30] = 0.9
    prob[20:40, 30:50] = 0.9
    prob[30:34, 18:20] = 0.9  # the neck
    prob[34:44, 14:24] = 0.9  # the shed: 100 px
    return prob, valid


def test_a_split_off_piece_under_min_part_joins_its_neighbour():
    prob, valid = _two_rooms_and_a_shed()
    every = label_instances(prob, valid, 0.5)
    assert _n(every) == 3 and every[38, 18] not in (every[15, 15], every[35, 45])  # the shed is a piece of its own
    merged = label_instances(prob, valid, 0.5, min_part_px=150)
    assert _n(merged) == 2
    assert merged[38, 18] == merged[15, 15] != merged[35, 45]  # it joined the roof it hangs off, not the other
    assert np.array_equal(merged > 0, every > 0), "merging moves no pixel in or out of a building"
    assert _n(label_instances(prob, valid, 0.5, min_part_px=99)) == 3  # a limit below its size keeps it


def test_a_component_of_small_pieces_ends_whole():
    prob, valid = _two_rooms_and_a_shed()
    labels = label_instances(prob, valid, 0.5, min_part_px=2000)  # every piece is under the limit
    assert _n(labels) == 1


def test_small_pieces_merge_smallest_first_into_the_longest_shared_border():
    from geoseg.footprints.instances import _merge_small_parts

    labels = np.zeros((12, 40), np.int64)
    labels[:, :15] = 1  # 180 px
    labels[:, 25:] = 2  # 180 px
    labels[0:8, 15:25] = 3  # 80 px: 8 px of border with 1, 8 with 2, 10 with 4
    labels[8:12, 15:25] = 4  # 40 px: 10 px of border with 3, 4 with 1, 4 with 2
    out = _merge_small_parts(labels, min_part_px=100)
    # 4 (smallest) joins 3 (10 px of border against 4 and 4); 3+4 (120 px) is no longer small
    assert out[10, 20] == out[2, 20] != out[2, 5]
    assert len(np.unique(out)) == 3  # 1, 2 and 3+4
    out = _merge_small_parts(labels, min_part_px=130)  # now 3+4 is small too: it joins 1 (first of the equal borders)
    assert len(np.unique(out)) == 2 and out[2, 20] == out[10, 20] == out[2, 5] != out[2, 30]
    assert np.array_equal(_merge_small_parts(labels, min_part_px=0), labels)


def test_shape_mismatch_is_an_error():
    prob, valid = _canvas()
    with pytest.raises(ValueError):
        label_instances(prob, valid[:10], 0.5)
