import warnings

import numpy as np
import pytest
from affine import Affine

from geoseg.errors import BandWarning, InputError, RasterReadError
from geoseg.georef import reproject_grid
from geoseg.io.raster import WorkReader, inspect_raster, valid_fraction
from geoseg.window import PixelWindow
from tests.conftest import scene, write_raster


def test_rgb_uint8_passes_through(tmp_path):
    data = scene((40, 50))
    info = inspect_raster(str(write_raster(tmp_path / "a.tif", data)))
    assert info.bands == (1, 2, 3) and info.scale is None
    with WorkReader(info, info.grid) as r:
        got, valid = r.read(info.grid.full_window)
    assert np.array_equal(got, data) and valid.all()


def test_rgba_alpha_becomes_the_mask(tmp_path):

    data = scene((40, 50))
    alpha = np.full((1, 40, 50), 255, np.uint8)
    alpha[:, :, :20] = 0
    path = write_raster(tmp_path / "rgba.tif", np.concatenate([data, alpha]), photometric="RGB", alpha="YES")
    info = inspect_raster(str(path))
    assert info.bands == (1, 2, 3)
    with WorkReader(info, info.grid) as r:
        _, valid = r.read(info.grid.full_window)
    assert not valid[:, :20].any() and valid[:, 20:].all()


def test_rgba_alpha_is_the_mask_when_the_reader_warps(tmp_path):
    """An RGBA ortho in Web Mercator (a common drone export) read onto the metric working grid."""
    from geoseg.georef import metric_crs_for

    data = scene((64, 64))
    alpha = np.full((1, 64, 64), 255, np.uint8)
    alpha[:, :, :32] = 0
    t = Affine(0.3, 0, 1_000_000, 0, -0.3, 3_000_000)
    path = write_raster(tmp_path / "rgba3857.tif", np.concatenate([data, alpha]), crs="EPSG:3857", transform=t,
                        photometric="RGB", alpha="YES")
    info = inspect_raster(str(path))
    work = reproject_grid(info.grid, metric_crs_for(info.grid), 0.3)
    assert not work.same_as(info.grid)
    with WorkReader(info, work) as r:
        got, valid = r.read(work.full_window)
    assert got.shape[0] == 3 and 0.35 < valid.mean() < 0.55
    cols = np.flatnonzero(valid.any(axis=0))
    assert cols.min() > 0.4 * work.width, "the transparent left half is not data"
    assert abs(float(got[:, valid].mean()) - float(data[:, :, 32:].mean())) < 10


def test_single_band_is_replicated_with_a_warning(tmp_path):
    path = write_raster(tmp_path / "gray.tif", scene((30, 30))[:1])
    with pytest.warns(BandWarning, match="replicated"):
        info = inspect_raster(str(path))
    assert info.bands == (1, 1, 1)


def test_bands_named_red_green_blue_are_read_in_model_order(tmp_path):
    """A BGR(N) file that says so: its red, green and blue bands go to the model as red, green, blue."""
    import rasterio
    from rasterio.enums import ColorInterp

    data = np.stack([np.full((20, 20), v, np.uint8) for v in (10, 20, 30, 40)])  # blue, green, red, nir
    path = write_raster(tmp_path / "bgrn.tif", data, photometric="MINISBLACK")
    with rasterio.open(path, "r+") as ds:
        ds.colorinterp = [ColorInterp.blue, ColorInterp.green, ColorInterp.red, ColorInterp.undefined]
    with warnings.catch_warnings():
        warnings.simplefilter("error", BandWarning)
        info = inspect_raster(str(path))
    assert info.bands == (3, 2, 1)
    with WorkReader(info, info.grid) as r:
        got, _ = r.read(info.grid.full_window)
    assert [int(got[i, 0, 0]) for i in range(3)] == [30, 20, 10]


def test_more_bands_without_colour_names_warn_which_are_used(tmp_path):
    data = np.stack([np.full((20, 20), v, np.uint8) for v in (10, 20, 30, 40)])
    path = write_raster(tmp_path / "four.tif", data, photometric="MINISBLACK")
    with pytest.warns(BandWarning, match="bands 1,2,3 are read as red, green, blue"):
        assert inspect_raster(str(path)).bands == (1, 2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BandWarning)
        assert inspect_raster(str(path), bands=(3, 2, 1)).bands == (3, 2, 1), "--bands says it: no warning"


def test_two_data_bands_is_an_error_naming_the_fix(tmp_path):
    path = write_raster(tmp_path / "two.tif", scene((30, 30))[:2])
    with pytest.raises(InputError, match="2 data bands but the model needs 3; give a raster with 3 bands, or use "
                                         r"\(or train\) a 2-band model") as err:
        inspect_raster(str(path))
    assert "--bands" not in str(err.value)  # choosing among two bands cannot make three


def test_explicit_bands_pick_and_validate(tmp_path):
    path = write_raster(tmp_path / "ms.tif", np.concatenate([scene((30, 30)), scene((30, 30), seed=1)]))
    assert inspect_raster(str(path), bands=(3, 2, 1)).bands == (3, 2, 1)
    with pytest.raises(InputError, match="between 1 and 6"):
        inspect_raster(str(path), bands=(7, 2, 1))


def test_uint16_is_scaled_by_percentiles(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(1000, 3000, size=(3, 64, 64)).astype(np.uint16)
    info = inspect_raster(str(write_raster(tmp_path / "u16.tif", data)))
    lo, hi = info.scale[0]
    assert 1000 <= lo < 1100 and 2900 < hi <= 3000
    with WorkReader(info, info.grid) as r:
        got, _ = r.read(info.grid.full_window)
    assert got.dtype == np.uint8 and got.min() == 0 and got.max() == 255
    assert 100 < got.mean() < 155


def test_non_uint8_keeps_its_colour_balance(tmp_path):
    """One range for all bands: a reddish uint16 image stays reddish (a per-band stretch would make it grey)."""
    rng = np.random.default_rng(1)
    base = rng.integers(500, 1500, size=(64, 64))
    data = np.stack([base * 2, base, base // 2]).astype(np.uint16)  # red = 2 x green = 4 x blue
    info = inspect_raster(str(write_raster(tmp_path / "red.tif", data)))
    assert len(set(info.scale)) == 1, "the same range for every band"
    with WorkReader(info, info.grid) as r:
        got, _ = r.read(info.grid.full_window)
    red, green, blue = (got[i].astype(float).mean() for i in range(3))
    assert red > 1.5 * green > 1.5 * blue, (red, green, blue)


def test_float_nan_is_invalid(tmp_path):
    data = np.ones((3, 20, 20), np.float32)
    data[:, :5] = np.nan
    info = inspect_raster(str(write_raster(tmp_path / "f.tif", data)))
    with WorkReader(info, info.grid) as r:
        _, valid = r.read(info.grid.full_window)
    assert not valid[:5].any() and valid[5:].all()


def test_nodata_value_is_invalid(tmp_path):
    data = scene((20, 20))
    data[:, :, :4] = 0
    info = inspect_raster(str(write_raster(tmp_path / "nd.tif", data, nodata=0)))
    with WorkReader(info, info.grid) as r:
        _, valid = r.read(info.grid.full_window)
    assert not valid[:, :4].any() and valid[:, 4:].all()


def test_reading_a_resampled_metric_grid_keeps_the_mask(tmp_path):
    mask = np.ones((100, 100), bool)
    mask[:, 50:] = False
    t = Affine(1e-5, 0, 10.0, 0, -1e-5, 45.0)
    info = inspect_raster(str(write_raster(tmp_path / "geo.tif", scene((100, 100)), crs="EPSG:4326", transform=t, mask=mask)))
    work = reproject_grid(info.grid, "EPSG:32632", 2.0)
    with WorkReader(info, work) as r:
        _, valid = r.read(work.full_window)
    assert 0.3 < valid.mean() < 0.7
    h, w = valid.shape
    assert valid[h // 4: -h // 4, 3: w // 3].all(), "interior of the valid half must stay valid"
    assert not valid[:, -w // 3:].any(), "the masked half must stay invalid"


@pytest.mark.parametrize("dtype, nodata, how", [
    ("float32", float("nan"), "nodata"), ("float32", -9999.0, "nodata"), ("float32", None, "mask"),
    ("int16", -32768, "nodata"), ("uint16", 0, "nodata"), ("uint8", None, "mask")])
def test_a_resampled_read_keeps_the_nodata_of_every_data_type(tmp_path, dtype, nodata, how):
    """GDAL takes a warped VRT's alpha band as its mask for Byte and UInt16 only: float and Int16 imagery must
    not read as valid everywhere (its nodata would be segmented as black ground)."""
    data = scene((100, 100)).astype(dtype)
    mask = np.ones((100, 100), bool)
    mask[:, 60:] = False
    if how == "nodata":
        data[:, ~mask] = nodata
    src = write_raster(tmp_path / f"{dtype}.tif", data, nodata=nodata, mask=mask if how == "mask" else None)
    info = inspect_raster(str(src))
    work = reproject_grid(info.grid, "EPSG:32633", 2.0)  # resampled: read through a warped VRT
    with WorkReader(info, work) as r:
        _, valid = r.read(work.full_window)
    w = valid.shape[1]
    assert valid[:, : w // 2].all(), "the valid part stays valid"
    assert not valid[:, -w // 3:].any(), "nodata stays invalid"


@pytest.mark.parametrize("how", ["whole", "overviews", "probes"])
def test_valid_fraction_reads_small_rasters_whole_and_estimates_large_ones(tmp_path, how):
    side = 300 if how == "whole" else 2400
    data = scene((side, side))
    data[:, :, side // 4:] = 0  # a quarter of the columns hold data; nodata 0 elsewhere
    path = write_raster(tmp_path / "in.tif", data, nodata=0)
    if how == "overviews":
        import rasterio
        from rasterio.enums import Resampling

        with rasterio.open(path, "r+") as ds:
            ds.build_overviews([2, 4, 8], Resampling.nearest)
    share, exact = valid_fraction(inspect_raster(path))
    assert exact == (how == "whole")
    assert share == pytest.approx(0.25, abs=0.0 if exact else 0.02)
    assert valid_fraction(inspect_raster(write_raster(tmp_path / "full.tif", scene((side, side))))) == (1.0, True)


def test_missing_file(tmp_path):
    with pytest.raises(RasterReadError, match="not found") as caught:
        inspect_raster(str(tmp_path / "nope.tif"))
    assert isinstance(caught.value, FileNotFoundError)  # callers may catch the builtin


def test_not_a_raster(tmp_path):
    p = tmp_path / "notes.tif"
    p.write_text("hello, I am not an image")
    with pytest.raises(RasterReadError, match="not a readable raster"):
        inspect_raster(str(p))


def test_empty_file(tmp_path):
    p = tmp_path / "empty.tif"
    p.write_bytes(b"")
    with pytest.raises(RasterReadError):
        inspect_raster(str(p))


def test_truncated_geotiff(tmp_path):
    p = write_raster(tmp_path / "full.tif", scene((512, 512)), tiled=True, blockxsize=128, blockysize=128, compress="deflate")
    blob = p.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(RasterReadError, match="corrupt or truncated"):
        inspect_raster(str(cut))


def test_a_vrt_whose_source_is_gone_names_the_missing_file(tmp_path):
    src = write_raster(tmp_path / "tile.tif", scene((64, 64)))
    vrt = tmp_path / "mosaic.vrt"
    vrt.write_text(
        '<VRTDataset rasterXSize="64" rasterYSize="64"><SRS>EPSG:32633</SRS>'
        '<GeoTransform>500000, 1, 0, 5000000, 0, -1</GeoTransform>'
        '<VRTRasterBand dataType="Byte" band="1"><SimpleSource>'
        '<SourceFilename relativeToVRT="1">tile.tif</SourceFilename><SourceBand>1</SourceBand>'
        '</SimpleSource></VRTRasterBand></VRTDataset>')
    inspect_raster(str(vrt), n_model_bands=1)
    src.unlink()
    with pytest.raises(RasterReadError, match=r"is a VRT whose source is missing \(.*tile.tif: No such file") as err:
        inspect_raster(str(vrt), n_model_bands=1)
    assert "\n" not in str(err.value) and "gdalbuildvrt" in str(err.value)


def test_complex_bands_are_refused(tmp_path):
    p = write_raster(tmp_path / "slc.tif", np.ones((3, 16, 16), np.complex64))
    with pytest.raises(InputError, match="complex numbers .complex64"):
        inspect_raster(str(p))


def test_no_crs(tmp_path):
    p = write_raster(tmp_path / "nocrs.tif", scene((20, 20)), crs=None)
    with pytest.raises(InputError, match="no CRS"):
        inspect_raster(str(p))


def test_no_geotransform(tmp_path):
    import rasterio

    p = tmp_path / "plain.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(p, "w", driver="GTiff", width=20, height=20, count=3, dtype="uint8") as dst:
            dst.write(scene((20, 20)))
    with pytest.raises(InputError, match="no CRS|no geotransform"):
        inspect_raster(str(p))


def test_a_part_of_the_raster_grid_is_read_directly_at_its_offset(tmp_path):
    from geoseg.window import PixelWindow

    data = scene((40, 50))
    info = inspect_raster(str(write_raster(tmp_path / "a.tif", data)))
    part = info.grid[PixelWindow(5, 7, 20, 30)]
    with WorkReader(info, part) as r:
        got, valid = r.read(PixelWindow(2, 3, 10, 12))
        assert r._vrt is None  # no warping for the raster's own pixels
    assert np.array_equal(got, data[:, 7:17, 10:22]) and valid.all()


def test_pixels_outside_within_are_read_but_not_valid(tmp_path):
    from shapely.geometry import Polygon

    data = scene((40, 50))
    info = inspect_raster(str(write_raster(tmp_path / "a.tif", data)))
    t = info.grid.transform
    triangle = Polygon([t @ (0, 0), t @ (50, 0), t @ (0, 40)])  # the upper-left half
    with WorkReader(info, info.grid, within=triangle) as r:
        got, valid = r.read(info.grid.full_window)
    assert np.array_equal(got, data)
    assert valid[0, 0] and valid[5, 5] and not valid[39, 49] and not valid[30, 40]
    assert 0.45 < valid.mean() < 0.55


def test_a_block_corrupt_mid_file_names_the_rows_it_was_reading(tmp_path):
    """The first and last blocks decode (inspect passes); a middle one fails when the run reaches it."""
    import rasterio

    path = write_raster(tmp_path / "mid.tif", scene((1024, 1024)), tiled=True, blockxsize=64, blockysize=64,
                        compress="deflate")
    with rasterio.open(path) as ds:
        offset = int(ds.get_tag_item("BLOCK_OFFSET_8_8", "TIFF", bidx=1))
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\xff" * 64)
    info = inspect_raster(str(path))
    with WorkReader(info, info.grid) as r, pytest.raises(RasterReadError) as caught:
        r.read(PixelWindow(500, 400, 100, 200))
    message = str(caught.value)
    assert "rows 500-600, columns 400-600" in message and "PixelWindow" not in message and "re-export" in message
    assert message.count("IReadBlock") <= 1, message  # GDAL's nested clauses once, not twice

