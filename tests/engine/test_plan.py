"""The plan: its time estimate (start-up, the model's passes at the card's measured speed, footprints) and the inputs it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from geoseg.config import SegmentConfig
from geoseg.engine import plan as plan_mod
from geoseg.engine.plan import STARTUP_S, VECTORIZE_S_PER_MP, plan_for, throughput
from geoseg.models.registry import get_card

SAMPLE = Path(__file__).resolve().parents[2] / "sample_tiles" / "banepa_z20_crop_3857.tif"


def test_the_estimate_counts_working_megapixels_start_up_and_footprints():
    card, cfg = get_card("default"), SegmentConfig()
    _, plan = plan_for(str(SAMPLE), card, cfg)
    mps = throughput(card, cfg)
    work_mp = plan.work_grid.width * plan.work_grid.height / 1e6
    shown = plan.describe()
    # the card's speed is per working-grid megapixel end to end, so the model part is not counted per tile (one
    # tile of 512 px holds 0.26 MP, the working grid 0.21 MP here)
    assert shown["est_model_seconds"] == pytest.approx(work_mp / mps, rel=1e-2)
    assert shown["est_seconds"] == pytest.approx(STARTUP_S + work_mp / mps + work_mp * VECTORIZE_S_PER_MP, rel=1e-2)
    # a small tile's run is mostly start-up, with or without native bf16 (fp32 is about 2x slower)
    assert shown["est_seconds"] > 2 * shown["est_model_seconds"] and STARTUP_S > shown["est_model_seconds"]


def test_no_measured_speed_gives_no_estimate(monkeypatch):
    monkeypatch.setattr(plan_mod, "throughput", lambda card, cfg: None)
    _, plan = plan_for(str(SAMPLE), get_card("default"), SegmentConfig())
    assert plan.describe()["est_seconds"] is None and plan.describe()["est_model_seconds"] is None


@pytest.mark.parametrize("px_m, side, message", [
    (1e-6, 64, "implausibly fine"),  # a CRS in metres over a transform in some other unit
    (0.13, 1, "too few to segment; it covers only 0.13 x 0.13 m"),
    (2.0, 5, "too few to segment; run it at a finer GSD (--gsd 2)"),  # run at --gsd 4: 3 x 3 pixels, at 2 m: 5 x 5
])
def test_a_raster_with_nothing_to_segment_is_refused_by_the_plan(tmp_path, pixel_card, px_m, side, message):
    """Before any model loads (segment used to load it, run, then advise a GSD the model refuses)."""
    import numpy as np
    from affine import Affine

    from geoseg.errors import InputError
    from tests.conftest import write_raster

    src = write_raster(tmp_path / "in.tif", np.full((3, side, side), 120, np.uint8),
                       transform=Affine(px_m, 0, 500000.0, 0, -px_m, 5000000.0))
    card = get_card(str(pixel_card))  # runs at 1 m, valid 0.25-4 m
    gsd = 4.0 if px_m == 2.0 else None
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_for(str(src), card, SegmentConfig(model=str(pixel_card), gsd_m=gsd))


def test_a_tile_size_whose_memory_exceeds_the_machines_ram_is_warned():
    from geoseg.errors import InputWarning

    with pytest.warns(InputWarning, match="more than this machine's .* lower --tile-size"):
        plan_for(str(SAMPLE), get_card("default"), SegmentConfig(tile_size=32 * 4096, overlap=64))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        plan_for(str(SAMPLE), get_card("default"), SegmentConfig())  # the card's tiles: no warning


def test_a_projected_dst_crs_that_cuts_the_raster_at_the_antimeridian_is_refused_before_any_work(tmp_path, pixel_card):
    """GDAL's grid there was 0 pixels high: an internal error after the whole run; footprints spanned 360 degrees."""
    import numpy as np
    from affine import Affine
    from rasterio.warp import transform

    from geoseg.errors import ConfigError
    from tests.conftest import write_raster

    (x,), (y,) = transform("EPSG:4326", "EPSG:32760", [180.0], [-16.5])  # UTM 60S, on the antimeridian
    src = write_raster(tmp_path / "fiji.tif", np.full((3, 200, 200), 120, np.uint8), crs="EPSG:32760",
                       transform=Affine(1.0, 0, x - 100, 0, -1.0, y + 100))
    card = get_card(str(pixel_card))
    with pytest.raises(ConfigError, match="crosses the antimeridian .* e.g. its UTM zone EPSG:32"):
        plan_for(str(src), card, SegmentConfig(model=str(pixel_card), dst_crs="EPSG:3857"))  # x jumps by 40,000 km
    plan_for(str(src), card, SegmentConfig(model=str(pixel_card), dst_crs="EPSG:32760"))  # a projected CRS holds it
    _, plan = plan_for(str(src), card, SegmentConfig(model=str(pixel_card), dst_crs="EPSG:4326"))  # runs past 180
    left, _, right, _ = plan.out_grid.bounds
    assert left < 180.0 < right and right - left < 0.01


def test_the_memory_estimate_counts_the_vectorizers_window():
    """It counted the prediction only: 978 MB planned against 1569 MB measured at 3000 x 3000 px (docs/benchmarks.md)."""
    from geoseg.config import VectorizeConfig
    from geoseg.engine.plan import VECTORIZE_BYTES_PER_PX

    card = get_card("default")
    _, whole = plan_for(str(SAMPLE), card, SegmentConfig())
    _, small = plan_for(str(SAMPLE), card, SegmentConfig(vectorize=VectorizeConfig(band_rows=64, halo_rows=16)))
    h, w = whole.work_grid.shape_yx  # the default window (2560 px) holds the whole grid; the small one 96 x 96 px
    assert whole.est_peak_bytes - small.est_peak_bytes == VECTORIZE_BYTES_PER_PX * (h * w - 96 * 96)
