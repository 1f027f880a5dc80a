"""scripts/error_budget.py: the per-chip shift search finds offsets that differ from chip to chip."""

from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).parents[2] / "scripts"


@pytest.fixture
def budget(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    import error_budget

    return error_budget


def _blocks(seed=0, size=64, n=2):
    """Random blocky masks on an ``n`` x ``n`` layout of ``size``-px chips."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((n * size // 8, n * size // 8)) < 0.3
    return np.kron(coarse, np.ones((8, 8), bool))


def test_each_chip_gets_its_own_shift_back(budget):
    truth = _blocks()
    pred = truth.copy()
    shifts = {(0, 0): (2, -3), (0, 1): (-1, 0), (1, 0): (0, 4), (1, 1): (3, 3)}
    for (i, j), (dy, dx) in shifts.items():  # the prediction of each chip is offset on its own
        sl = np.s_[i * 64:(i + 1) * 64, j * 64:(j + 1) * 64]
        pred[sl] = budget._shifted(truth[sl], dy, dx)
    valid = np.ones_like(truth)
    got = budget.per_chip_shift(pred, truth, valid, chip=64, s=5)
    assert got["best"] == 1.0 and got["cv"] == 1.0, got
    assert got["none"] < 0.8


def test_an_aligned_prediction_gains_nothing_out_of_sample(budget):
    truth = _blocks(seed=1)
    rng = np.random.default_rng(2)
    pred = truth ^ (rng.random(truth.shape) < 0.2)  # noise, no offset
    got = budget.per_chip_shift(pred, truth, np.ones_like(truth), chip=64, s=4)
    assert got["best"] >= got["none"] and got["cv"] <= got["none"] + 1e-9, got
