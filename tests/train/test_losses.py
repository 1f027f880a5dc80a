"""Training losses (geoseg.train.losses)."""

import pytest


def test_the_lovasz_loss_is_zero_on_a_confident_right_answer_and_ignores_nodata():
    """train.loss = "bce_lovasz": the hinge part vanishes once every valid pixel is on the right side by a margin
    of 1, grows with the wrong pixels, and pixels outside the valid mask change nothing."""
    import torch

    from geoseg.train.losses import total_loss

    gen = torch.Generator().manual_seed(0)
    target = (torch.rand(2, 1, 32, 32, generator=gen) > 0.6).float()
    valid = torch.ones(2, 1, 32, 32)
    valid[:, :, :8] = 0
    right = (2 * target - 1) * 30  # BCE ~ 0 too
    assert float(total_loss(right, target, valid, [1.0], "bce_lovasz")) < 1e-6
    flipped_nodata = right.clone()
    flipped_nodata[:, :, :8] *= -1
    assert float(total_loss(flipped_nodata, target, valid, [1.0], "bce_lovasz")) < 1e-6
    wrong_some, wrong_more = right.clone(), right.clone()
    wrong_some[:, :, 8:12] *= -1
    wrong_more[:, :, 8:20] *= -1
    some = float(total_loss(wrong_some / 30, target, valid, [1.0], "bce_lovasz"))
    more = float(total_loss(wrong_more / 30, target, valid, [1.0], "bce_lovasz"))
    assert 0 < some < more
    assert some != pytest.approx(float(total_loss(wrong_some / 30, target, valid, [1.0], "bce_dice")))


def test_every_loss_a_config_may_name_exists():
    from geoseg.train.experiment import LOSS_NAMES
    from geoseg.train.losses import LOSSES

    assert set(LOSSES) == set(LOSS_NAMES)
