import pytest

import geoseg.footprints.raster as vr


@pytest.fixture
def read_windows(monkeypatch) -> list[tuple[int, int, int, int]]:
    """Every window ``vectorize_raster`` reads, in order (the reads still happen)."""
    windows: list[tuple[int, int, int, int]] = []
    real_read = vr.read_window

    def spy(ds, window, boundary_band):
        windows.append(window)
        return real_read(ds, window, boundary_band)

    monkeypatch.setattr(vr, "read_window", spy)
    return windows
