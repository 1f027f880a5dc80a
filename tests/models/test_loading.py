import numpy as np
import pytest
import torch

from geoseg.engine.predictor import Predictor
from geoseg.models.loading import load_module
from geoseg.models.registry import get_card


@pytest.mark.parametrize("name", ["default", "scinet-r18-buildings", "scinet-r18-buildings-gap", "scinet-r18-h200"])
def test_shipped_models_load_and_predict_any_tile_shape(name):
    card = get_card(name)
    pred = Predictor(load_module(card), card, device="cpu", precision="fp32", batch_size=2)
    rng = np.random.default_rng(0)
    for shape in [(3, 3, 64, 64), (1, 3, 50, 70)]:  # 50x70 is padded to a multiple of 32 and cropped back
        out = pred(rng.integers(0, 255, size=shape, dtype=np.uint8))
        assert out.shape == (shape[0], len(card.outputs), *shape[2:]) and out.dtype == np.float32
        assert 0 <= out.min() and out.max() <= 1


def test_cuda_request_without_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    from geoseg.engine.device import resolve_device
    from geoseg.errors import ConfigError

    with pytest.raises(ConfigError, match="--device cpu"):
        resolve_device("cuda")
