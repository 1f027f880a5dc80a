"""Validation during training (geoseg.train.validation)."""

import numpy as np
import pytest


def test_validation_scores_per_set_add_up_to_the_overall_score():
    import torch

    from geoseg.models.normalize import DEFAULT_NORMALIZATION
    from geoseg.train.validation import validate

    model = torch.nn.Conv2d(3, 1, 1)
    with torch.no_grad():
        model.weight.fill_(1.0), model.bias.fill_(0.0)  # bright pixels are buildings
    img = np.zeros((3, 32, 32), np.uint8)
    img[:, :, :16] = 255
    lab_left = np.zeros((32, 32), np.uint8)
    lab_left[:, :16] = 1
    valid = np.ones((32, 32), bool)
    sets = {"perfect": [(img, lab_left, valid)], "wrong": [(img, 1 - lab_left, valid)]}
    out = validate(model, sets, DEFAULT_NORMALIZATION, "cpu", None)
    assert out["iou_by_set"] == {"perfect": 1.0, "wrong": 0.0}
    assert out["iou"] == pytest.approx(512 / (512 + 512 + 512))
