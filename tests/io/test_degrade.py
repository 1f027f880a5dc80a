"""Writing a raster as imagery of a coarser (or finer) ground resolution."""

import numpy as np
import pytest
import rasterio
from affine import Affine

from geoseg.errors import Cancelled, RasterReadError
from geoseg.io.degrade import write_at_gsd
from tests.conftest import scene, write_raster

T = Affine(1.0, 0, 500000.0, 0, -1.0, 5000000.0)


def test_coarser_gsd_averages_blocks_and_keeps_the_footprint(tmp_path):
    data = scene((64, 96), [(8, 8, 40, 40)], seed=3)
    src = write_raster(tmp_path / "in.tif", data, transform=T)
    grid = write_at_gsd(src, 2.0, tmp_path / "out.tif")
    with rasterio.open(tmp_path / "out.tif") as ds:
        assert ds.res == (2.0, 2.0) and ds.crs.to_epsg() == 32633 and ds.count == 3 and ds.dtypes[0] == "uint8"
        assert (ds.height, ds.width) == grid.shape_yx == (32, 48)
        assert ds.bounds == pytest.approx((500000, 4999936, 500096, 5000000))
        out = ds.read()
        assert (ds.dataset_mask() == 255).all()
    means = data.astype(float).reshape(3, 32, 2, 48, 2).mean(axis=(2, 4))
    assert np.abs(out - means).max() <= 1.0, "each coarse pixel is the mean of the 2x2 pixels under it"


def test_strips_are_bounded_by_pixels_and_give_the_same_raster(tmp_path, monkeypatch):
    from geoseg.io import degrade

    src = write_raster(tmp_path / "in.tif", scene((64, 96), [(8, 8, 40, 40)], seed=3), transform=T)
    write_at_gsd(src, 2.0, tmp_path / "whole.tif")
    monkeypatch.setattr(degrade, "STRIP_PIXELS", 48 * 5)  # 5 rows of the 48-px-wide output per strip
    seen = _CancelAt(10**9)
    write_at_gsd(src, 2.0, tmp_path / "strips.tif", progress=seen)
    assert seen.seen == 7, "32 rows in strips of 5"
    with rasterio.open(tmp_path / "whole.tif") as a, rasterio.open(tmp_path / "strips.tif") as b:
        assert (a.read() == b.read()).all() and (a.dataset_mask() == b.dataset_mask()).all()


def test_nodata_stays_masked(tmp_path):
    mask = np.ones((64, 64), bool)
    mask[:, 32:] = False
    src = write_raster(tmp_path / "in.tif", scene((64, 64)), transform=T, mask=mask)
    write_at_gsd(src, 2.0, tmp_path / "out.tif")
    with rasterio.open(tmp_path / "out.tif") as ds:
        valid = ds.dataset_mask() > 0
    assert valid[:, :15].all() and not valid[:, 17:].any()


def test_a_geographic_raster_is_written_on_a_metric_grid(tmp_path):
    deg = 1.0 / 111_320  # about 1 m at the equator
    src = write_raster(tmp_path / "in.tif", scene((100, 100)), crs="EPSG:4326", transform=Affine(deg, 0, 15.0, 0, -deg, 0.0005))
    write_at_gsd(src, 2.0, tmp_path / "out.tif")
    with rasterio.open(tmp_path / "out.tif") as ds:
        assert ds.crs.to_epsg() == 32633 and ds.res == (2.0, 2.0)
        assert abs(ds.width - 50) <= 1 and abs(ds.height - 50) <= 1


def test_finer_gsd_interpolates(tmp_path):
    src = write_raster(tmp_path / "in.tif", scene((32, 32), [(8, 8, 24, 24)]), transform=T)
    write_at_gsd(src, 0.5, tmp_path / "out.tif")
    with rasterio.open(tmp_path / "out.tif") as ds:
        assert (ds.height, ds.width) == (64, 64)
        out = ds.read(1)
    assert out[20:44, 20:44].mean() > 200 and out[:10].mean() < 60


class _CancelAt:
    def __init__(self, n):
        self.n, self.seen = n, 0

    def update(self, done, total, stage):
        assert stage == "degrade"
        self.seen += 1

    def cancelled(self):
        return self.seen >= self.n


def test_cancelled_or_failed_writes_leave_nothing(tmp_path, monkeypatch):
    from geoseg.io import degrade

    monkeypatch.setattr(degrade, "STRIP_ROWS", 16)  # several strips
    src = write_raster(tmp_path / "in.tif", scene((128, 64)), transform=T)
    with pytest.raises(Cancelled):
        write_at_gsd(src, 2.0, tmp_path / "out.tif", progress=_CancelAt(2))
    with pytest.raises(RasterReadError):
        write_at_gsd(tmp_path / "missing.tif", 2.0, tmp_path / "out.tif")
    assert list(tmp_path.iterdir()) == [src], "no output and no temporary file"
