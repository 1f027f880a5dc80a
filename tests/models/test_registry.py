import json
import re
import shutil
from pathlib import Path

import pytest

from geoseg.errors import ModelIntegrityError, ModelNotFoundError
from geoseg.models.card import ModelCard
from geoseg.models.registry import available, get_card

SHIPPED = ["default", *sorted(json.loads(p.read_text())["name"] for p in (Path(__file__).parents[2] / "models").glob("*.json"))]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_models_have_complete_cards(name):
    card = get_card(name)
    assert card.name in available()
    for key in ("license", "attribution", "metrics", "training", "data"):
        assert key in card.raw, f"model card lacks {key}"
    lo, hi = card.gsd_valid_m
    assert lo < card.gsd_m < hi
    card.verify_weights()


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ModelNotFoundError) as exc:
        get_card("no-such-model")
    assert "default" in str(exc.value) and "unet-r18-buildings" in str(exc.value)


def test_card_by_path_and_sha256_mismatch(tmp_path, pixel_card):
    card = get_card(str(pixel_card))
    assert card.name == "pixel-test"
    card.verify_weights()
    copy = tmp_path / "m"
    shutil.copytree(pixel_card.parent, copy)
    w = copy / "pixel-test.safetensors"
    w.write_bytes(w.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ModelIntegrityError, match="sha256"):
        get_card(str(copy / "pixel-test.json")).verify_weights()


def test_missing_weights_and_broken_cards(tmp_path, pixel_card):
    raw = json.loads(pixel_card.read_text())
    p = tmp_path / "c.json"
    p.write_text(json.dumps({**raw, "weights": "gone.safetensors"}))
    with pytest.raises(ModelNotFoundError, match="not found"):
        ModelCard.load(p).verify_weights()
    p.write_text("{not json")
    with pytest.raises(ModelIntegrityError, match="not valid JSON"):
        ModelCard.load(p)
    p.write_text(json.dumps({"name": "x"}))
    with pytest.raises(ModelIntegrityError, match="lacks"):
        ModelCard.load(p)


@pytest.mark.parametrize("field,value,needle", [
    ("tile_size", 100, "tile_size must be a multiple of 32"),
    ("overlap", 40, "under half the tile size"),
    ("gsd_valid_m", [0.6, 0.3], "gsd_valid_m must be [finest, coarsest]"),
    ("gsd_valid_m", "0.1-1", "gsd_valid_m must be [finest, coarsest]"),
    ("gsd_m", 0, "gsd_m must be a GSD"),
    ("threshold", 1.5, "threshold must be a probability"),
    ("border_cut", "high", "border_cut must be a probability"),
])
def test_a_card_with_a_field_out_of_range_is_a_one_line_integrity_error(tmp_path, pixel_card, field, value, needle):
    raw = json.loads(pixel_card.read_text())
    p = tmp_path / "c.json"
    p.write_text(json.dumps({**raw, field: value}))
    with pytest.raises(ModelIntegrityError, match=re.escape(needle)) as err:
        ModelCard.load(p)
    assert "\n" not in str(err.value) and "fix the card" in str(err.value)


def test_model_path_env_adds_models(tmp_path, monkeypatch, pixel_card):
    monkeypatch.setenv("GEOSEG_MODEL_PATH", str(pixel_card.parent))
    assert "pixel-test" in available()
    assert get_card("pixel-test").path == pixel_card.resolve()


def test_a_broken_card_on_the_path_is_named_when_its_model_is_asked_for(tmp_path, monkeypatch, pixel_card):
    """A typo in a user's card must not read as "unknown model": the miss names the unreadable file and why."""
    bad = tmp_path / "mine.json"
    bad.write_text(pixel_card.read_text().replace('"name"', '"nam"', 1))
    monkeypatch.setenv("GEOSEG_MODEL_PATH", str(tmp_path))
    assert "unet-r18-buildings" in available(), "the other cards are still found"
    with pytest.raises(ModelNotFoundError) as exc:
        get_card("pixel-test")
    msg = str(exc.value)
    assert "skipped unreadable card" in msg and str(bad) in msg and "lacks" in msg and "\n" not in msg


def test_separator_bands_come_from_the_card_outputs(tmp_path):
    from geoseg.models.card import ModelCard
    from tests.conftest import make_pixel_model

    assert ModelCard.load(make_pixel_model(tmp_path / "a", outputs=("building",))).boundary_band is None
    assert ModelCard.load(make_pixel_model(tmp_path / "b", outputs=("building", "border"))).boundary_band == (2,)
    assert ModelCard.load(make_pixel_model(tmp_path / "c", outputs=("building", "border", "gap"))).boundary_band == (2, 3)
