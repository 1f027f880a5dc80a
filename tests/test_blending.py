import numpy as np
import pytest

from geoseg.blending import tile_weights, window_1d
from geoseg.tiling import TileGrid


@pytest.mark.parametrize("kind", ["cosine", "gaussian"])
def test_tapers_are_symmetric_positive_and_peak_in_the_middle(kind):
    w = window_1d(64, kind)
    assert np.allclose(w, w[::-1])
    assert (w > 0).all() and w.max() == pytest.approx(1.0)
    assert w[32] > w[16] > w[0]


def test_crop_weights_partition_the_raster():
    grid = TileGrid((150, 170), 64, 16)
    total = np.zeros(grid.shape_yx, np.float32)
    for t in grid:
        total[t.read.slices()] += tile_weights(t, "crop")
    assert np.array_equal(total, np.ones_like(total))


def test_unknown_blend_rejected():
    with pytest.raises(ValueError, match="cosine"):
        window_1d(8, "box")
