"""Training targets from instance rasters: building, border and touching-gap masks."""

import numpy as np
from scipy import ndimage

from geoseg.train.regions import border_mask, gap_mask, instance_targets


def _reference(instances: np.ndarray, border_w: int = 1, gap_w: int = 2):
    """The definitions written with scipy's filters (windows cut at the edges)."""
    s = 2 * border_w + 1
    border = (ndimage.maximum_filter(instances, size=s) != ndimage.minimum_filter(instances, size=s)) & (instances > 0)
    s = 2 * gap_w + 1
    big = np.iinfo(np.int32).max
    hi = ndimage.maximum_filter(instances, size=s)
    lo = ndimage.minimum_filter(np.where(instances > 0, instances, big), size=s)
    gap = (instances == 0) & (lo < big) & (hi != lo)
    return border.astype(np.uint8), gap.astype(np.uint8)


def test_border_and_gap_masks_match_the_scipy_definitions_on_random_label_maps():
    rng = np.random.default_rng(0)
    for _ in range(20):
        h, w = rng.integers(5, 60, size=2)
        inst = np.zeros((h, w), np.int32)
        for i in range(1, rng.integers(2, 12)):  # rectangles that touch, overlap and reach the edges
            y, x = rng.integers(0, h), rng.integers(0, w)
            inst[y:y + rng.integers(1, 15), x:x + rng.integers(1, 15)] = i * 1000
        border, gap = _reference(inst)
        assert np.array_equal(border_mask(inst), border)
        assert np.array_equal(gap_mask(inst), gap)


def test_two_touching_buildings_share_a_border_and_a_gap_lies_between_near_ones():
    inst = np.zeros((7, 12), np.int32)
    inst[1:6, 1:4] = 1
    inst[1:6, 4:7] = 2  # touches building 1
    inst[1:6, 9:11] = 3  # two background columns from building 2
    t = instance_targets(inst, 3)
    assert t.shape == (3, 7, 12)
    assert t[1, 3, 3] == 1 and t[1, 3, 4] == 1  # the shared wall is border on both sides
    assert t[1, 3, 2] == 0  # a pixel inside building 1
    assert t[2, 3, 7] == 1 and t[2, 3, 8] == 1  # the gap between buildings 2 and 3
    assert t[2, 3, 11] == 0  # background next to one building only
    assert not (t[2] & t[0]).any()  # a gap is never on a building


def test_color_shift_moves_the_channels_apart_and_is_off_by_default():
    import numpy as np

    from geoseg.train.chips import _augmentations

    grey, mask = np.full((64, 64, 3), 128, np.uint8), np.zeros((64, 64), np.uint8)

    def widest_channel_gap(aug) -> float:  # brightness, contrast, saturation and hue keep a grey image grey
        means = [aug(image=grey, mask=mask)["image"].reshape(-1, 3).mean(0) for _ in range(40)]
        return max(float(m.max() - m.min()) for m in means)

    assert widest_channel_gap(_augmentations(0)) < 3
    assert widest_channel_gap(_augmentations(0, color_shift=40)) > 15
