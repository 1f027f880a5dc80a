"""Starting weights and checkpoints (geoseg.train.checkpoint)."""

import pytest


def _unet(seed: int, classes: int = 2):
    import torch

    from geoseg.models.arch import build_module

    torch.manual_seed(seed)
    return build_module({"name": "unet", "encoder": "resnet18", "in_channels": 3, "classes": classes})


def test_init_encoder_copies_the_encoder_and_leaves_the_decoder_as_it_was(tmp_path):
    import torch
    from safetensors.torch import save_file

    from geoseg.train.checkpoint import init_from

    source, model = _unet(1), _unet(2)
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(tmp_path / "src.safetensors"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    init_from(model, str(tmp_path / "src.safetensors"), whole=False)
    after, src = model.state_dict(), source.state_dict()
    floats = [k for k in after if after[k].is_floating_point()]
    encoder = [k for k in floats if k.startswith("encoder.") and not torch.equal(before[k], src[k])]
    rest = [k for k in floats if not k.startswith("encoder.")]
    assert encoder and rest
    assert all(torch.equal(after[k], src[k]) for k in encoder)
    assert all(torch.equal(after[k], before[k]) for k in rest)


def test_a_whole_model_start_keeps_the_outputs_both_heads_have(tmp_path):
    import torch

    from geoseg.train.checkpoint import init_from, save_checkpoint

    source, model = _unet(1, classes=2), _unet(2, classes=3)
    save_checkpoint(tmp_path / "last.pt", {"model": source.state_dict()})
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"], "no temporary file is left behind"
    init_from(model, str(tmp_path / "last.pt"), whole=True)
    w_src, w_new = source.segmentation_head[0].weight, model.segmentation_head[0].weight
    assert torch.equal(w_new[:2], w_src) and w_new.shape[0] == 3


def test_weights_of_another_architecture_are_refused_with_the_first_mismatched_tensor(tmp_path):
    from geoseg.errors import ConfigError
    from geoseg.models.arch import build_module
    from geoseg.train.checkpoint import init_from, save_checkpoint

    other = build_module({"name": "unet", "encoder": "mobilenet_v2", "in_channels": 3, "classes": 2})
    save_checkpoint(tmp_path / "other.pt", {"model": other.state_dict()})
    with pytest.raises(ConfigError, match="encoder does not match .* e.g. encoder."):
        init_from(_unet(0), str(tmp_path / "other.pt"), whole=False)
