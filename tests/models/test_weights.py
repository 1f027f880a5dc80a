"""int8 weight storage: large kernels round-trip within int8 precision, the rest as fp16."""

import pytest
import torch

from geoseg.errors import ConfigError, GeosegError
from geoseg.models.weights import INT8_MIN_WEIGHTS, SCALE_SUFFIX, decode_state, encode_state


@pytest.fixture
def state():
    g = torch.Generator().manual_seed(0)
    big = torch.randn(128, 64, 3, 3, generator=g) * torch.linspace(0.01, 2.0, 128).reshape(-1, 1, 1, 1)
    return {"big.weight": big, "small.weight": torch.randn(8, 3, 3, 3, generator=g),
            "bn.running_mean": torch.randn(128, generator=g), "bn.num_batches_tracked": torch.tensor(7)}


def test_large_kernels_go_int8_with_one_scale_per_output_channel(state):
    assert state["big.weight"].numel() >= INT8_MIN_WEIGHTS > state["small.weight"].numel()
    stored = encode_state(state, "int8")
    assert stored["big.weight"].dtype == torch.int8 and stored["big.weight" + SCALE_SUFFIX].shape == (128,)
    assert stored["small.weight"].dtype == torch.float16 and stored["bn.num_batches_tracked"].dtype == torch.int64


def test_decoding_gives_float32_weights_within_half_a_step_of_each_channel(state):
    back = decode_state(encode_state(state, "int8"))
    assert set(back) == set(state) and back["big.weight"].dtype == torch.float32
    w = state["big.weight"]
    step = w.abs().amax(dim=(1, 2, 3)) / 127  # per channel: small channels keep their own precision
    err = (back["big.weight"] - w).abs().amax(dim=(1, 2, 3))
    assert torch.all(err <= step / 2 * 1.001)
    assert torch.allclose(back["small.weight"], state["small.weight"], atol=2e-3)
    assert back["bn.num_batches_tracked"] == 7


def test_fp16_storage_is_plain_half_precision(state):
    stored = encode_state(state)
    assert stored["big.weight"].dtype == torch.float16 and not any(k.endswith(SCALE_SUFFIX) for k in stored)
    assert torch.equal(decode_state(stored)["big.weight"], state["big.weight"].half().float())


def test_an_unknown_encoding_names_the_valid_ones(state):
    with pytest.raises(ConfigError, match="fp16, int8") as err:
        encode_state(state, "int4")
    assert isinstance(err.value, GeosegError)
