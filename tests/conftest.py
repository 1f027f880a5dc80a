"""Shared fixtures: seeded generators of tiny rasters and a tiny per-pixel reference model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_tiles"
SHARED = REPO.parent / "shared" / "data"
FIJI = Affine(1e-5, 0, 179.9985, 0, -1e-5, -16.5)  # EPSG:4326 past 180, as gdalwarp writes it: 180 at column 150


def write_raster(path, data, crs="EPSG:32633", transform=None, mask=None, nodata=None, **extra) -> Path:
    """Write ``data`` ``(C, Y, X)`` as a tiled GeoTIFF; ``mask`` (Y, X) bool -> internal mask."""
    import rasterio

    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    transform = transform or Affine(1.0, 0, 500000.0, 0, -1.0, 5000000.0)
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                   dtype=data.dtype.name, crs=crs, transform=transform, nodata=nodata, **extra)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if mask is not None:
            dst.write_mask(np.where(mask, 255, 0).astype(np.uint8))
    return Path(path)


def scene(shape_yx=(200, 300), rects=(), seed=0, dark=30, bright=225) -> np.ndarray:
    """Dark noisy ground with bright rectangles ``(row0, col0, row1, col1)``: uint8 (3, Y, X)."""
    rng = np.random.default_rng(seed)
    img = rng.normal(dark, 5, size=(3, *shape_yx))
    for r0, c0, r1, c1 in rects:
        img[:, r0:r1, c0:c1] = rng.normal(bright, 5, size=(3, r1 - r0, c1 - c0))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_pixel_model(folder: Path, name="pixel-test", gsd_m=1.0, valid=(0.25, 4.0), tile=64, overlap=16, gain=8.0,
                     outputs=("building",)) -> Path:
    """A real model card + safetensors for the per-pixel linear reference model:
    logit = gain * mean(normalised RGB), so bright pixels are buildings (every output channel alike,
    except a ``border`` channel, which is constant and low)."""
    import torch
    from safetensors.torch import save_file

    from geoseg.models.card import file_sha256

    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{name}.safetensors"
    k = len(outputs)
    weight = torch.full((k, 3, 1, 1), gain / 3)
    bias = torch.zeros(k)
    for i, o in enumerate(outputs):
        if o == "border":
            weight[i], bias[i] = 0.0, -6.0
    save_file({"weight": weight.half(), "bias": bias.half()}, str(weights))
    card = {
        "name": name, "architecture": {"name": "pixel-linear", "in_channels": 3, "classes": k}, "outputs": list(outputs),
        "weights": weights.name, "sha256": file_sha256(weights),
        "input": {"bands": ["red", "green", "blue"], "normalization": {"mean": [127.5] * 3, "std": [127.5] * 3}},
        "gsd_m": gsd_m, "gsd_valid_m": list(valid), "tile_size": tile, "overlap": overlap, "threshold": 0.5,
        "license": "MIT (test fixture)",
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(card))
    return path


@pytest.fixture(scope="session")
def pixel_card(tmp_path_factory) -> Path:
    return make_pixel_model(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def pixel_card_2out(tmp_path_factory) -> Path:
    """Two outputs (building, border), like the shipped model."""
    return make_pixel_model(tmp_path_factory.mktemp("models2"), name="pixel-test-2", outputs=("building", "border"))


@pytest.fixture(scope="session")
def pixel_card_3out(tmp_path_factory) -> Path:
    """Three outputs (building, border, touching-gap)."""
    return make_pixel_model(tmp_path_factory.mktemp("models3"), name="pixel-test-3", outputs=("building", "border", "gap"))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared/data is not available (a user's clone has none)")
    return SHARED


def pytest_collection_modifyitems(config, items):
    """``gpu`` tests run where PyTorch sees a CUDA GPU and are skipped elsewhere (one reason, not one per test)."""
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU (none visible to PyTorch)")
        for item in gpu_items:
            item.add_marker(skip)
