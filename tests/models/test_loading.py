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


@pytest.mark.parametrize("damage", ["truncated", "garbage", "not_tensors"])
def test_unreadable_weights_whose_sha256_matches_are_a_one_line_integrity_error(tmp_path, pixel_card, damage):
    """The card's sha256 was updated to match broken weights: safetensors' own error (SafetensorError: header too
    large / incomplete metadata) came out as an internal error."""
    import json

    from geoseg.errors import ModelIntegrityError
    from geoseg.models.card import file_sha256

    raw = json.loads(pixel_card.read_text())
    good = (pixel_card.parent / raw["weights"]).read_bytes()
    weights = tmp_path / "w.safetensors"
    weights.write_bytes({"truncated": good[: len(good) // 2], "garbage": bytes(range(256)) * 8,
                         "not_tensors": b"\x08\x00\x00\x00\x00\x00\x00\x00not json"}[damage])
    card_path = tmp_path / "c.json"
    card_path.write_text(json.dumps({**raw, "weights": weights.name, "sha256": file_sha256(weights)}))
    card = get_card(str(card_path))
    card.verify_weights()  # the hash matches: only reading the file finds the damage
    with pytest.raises(ModelIntegrityError) as err:
        load_module(card)
    msg = str(err.value)
    assert "\n" not in msg and f"weights {weights} of model 'pixel-test' cannot be read as safetensors" in msg
    assert "reinstall or re-export it" in msg


def test_weights_of_another_shape_are_an_integrity_error(tmp_path, pixel_card):
    import json

    from safetensors.torch import save_file

    from geoseg.errors import ModelIntegrityError
    from geoseg.models.card import file_sha256

    raw = json.loads(pixel_card.read_text())
    weights = tmp_path / "w.safetensors"
    save_file({"weight": torch.zeros(2, 3, 1, 1).half(), "bias": torch.zeros(2).half()}, str(weights))
    card_path = tmp_path / "c.json"
    card_path.write_text(json.dumps({**raw, "weights": weights.name, "sha256": file_sha256(weights)}))
    with pytest.raises(ModelIntegrityError, match="do not fit its architecture"):
        load_module(get_card(str(card_path)))
