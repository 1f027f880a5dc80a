"""geoseg.config: run configurations refuse values that make no sense, with one-line errors."""

from __future__ import annotations

import pytest

from geoseg.config import VectorizeConfig
from geoseg.errors import ConfigError


@pytest.mark.parametrize("field", ["threshold", "border_cut", "regularize_min_iou"])
@pytest.mark.parametrize("value", [-0.01, 1.01, float("nan")])
def test_probabilities_outside_0_1_are_config_errors(field, value):
    with pytest.raises(ConfigError, match="from 0 to 1"):
        VectorizeConfig(**{field: value})


@pytest.mark.parametrize("field", ["min_area_m2", "min_part_m2", "simplify_m"])
def test_negative_sizes_are_config_errors(field):
    with pytest.raises(ConfigError, match="0 or more"):
        VectorizeConfig(**{field: -1.0})


def test_the_edges_and_the_defaults_are_accepted():
    assert VectorizeConfig(threshold=0.0, border_cut=1.0, min_area_m2=0.0, simplify_m=0.0).threshold == 0.0
    assert VectorizeConfig().threshold is None


def test_a_config_error_is_also_a_value_error():
    with pytest.raises(ValueError):
        VectorizeConfig(threshold=2)
