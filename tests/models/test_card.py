"""Malformed model cards are one-line ModelIntegrityErrors naming the field, raised when the card is loaded (by
get_card, before any work), never an AttributeError or a broadcast error halfway through a run."""

import json
import re

import pytest

from geoseg.errors import GeosegError, ModelIntegrityError, ModelNotFoundError
from geoseg.models.card import ModelCard, card_field_problem
from geoseg.models.registry import get_card


def _write(tmp_path, raw, name="c.json"):
    p = tmp_path / name
    p.write_text(json.dumps(raw))
    return p


def _with(raw, dotted, value):
    """A copy of card ``raw`` with ``dotted`` (e.g. ``input.normalization.mean``) set to ``value``."""
    out = json.loads(json.dumps(raw))
    *parents, last = dotted.split(".")
    node = out
    for key in parents:
        node = node[key]
    node[last] = value
    return out


BAD_FIELDS = [
    ("name", None, "name must be the model's name (text), not None"),
    ("name", "", "name must be the model's name"),
    ("architecture", "scinet", "architecture must be an object such as"),
    ("architecture.in_channels", "3", "architecture.in_channels must be a whole number >= 1, not '3'"),
    ("architecture.classes", 0, "architecture.classes must be a whole number >= 1"),
    ("architecture.name", 5, "architecture.name must be a name (text)"),
    ("architecture.decoder_channels", "256,128", "architecture.decoder_channels must be a list of whole numbers"),
    ("weights", 5, "weights must be the path of the weights file"),
    ("sha256", 12345, "sha256 must be the weights file's SHA-256 (64 hex digits"),
    ("sha256", "abc123", "sha256 must be the weights file's SHA-256"),
    ("sha256", "g" * 64, "sha256 must be the weights file's SHA-256"),
    ("input", "rgb", "input must be an object"),
    ("input", {}, "input.normalization is missing"),
    ("input.normalization", "imagenet", "input.normalization must be {\"mean\": [...], \"std\": [...]}"),
    ("input.normalization", {"mean": [0, 0, 0]}, "input.normalization must be"),
    ("input.normalization.mean", [127.5, 127.5], "input.normalization.mean must list 3 numbers"),
    ("input.normalization.std", "127.5", "input.normalization.std must list 3 numbers"),
    ("input.normalization.std", [127.5, 0, 127.5], "input.normalization.std must be > 0 for every band"),
    ("input.normalization.mean", [1, "2", 3], "input.normalization.mean must list 3 numbers"),
    ("input.bands", "rgb", "input.bands must name the 3 bands"),
    ("outputs", "building", "outputs must list the model's output names"),
    ("outputs", [], "outputs must list the model's output names"),
    ("outputs", ["building", 2], "outputs must list the model's output names"),
    ("outputs", ["building", "border"], "outputs lists 2 names but architecture.classes is 1"),
    ("tile_size", "512", "tile_size must be a multiple of 32"),
    ("tile_size", True, "tile_size must be a multiple of 32"),
    ("overlap", 16.0, "overlap must be whole pixels"),
    ("gsd_m", "0.3", "gsd_m must be a GSD"),
    ("gsd_valid_m", [0.1], "gsd_valid_m must be [finest, coarsest]"),
    ("threshold", "0.5", "threshold must be a probability above 0 and below 1"),
    ("threshold", 0, "threshold must be a probability above 0 and below 1"),
    ("threshold", 1, "threshold must be a probability above 0 and below 1"),
    ("border_cut", 0, "border_cut must be a probability above 0, at most 1"),
    ("throughput_mps", {"cpu": "fast"}, "throughput_mps must be an object of measured speeds"),
    ("throughput_mps", [1.0], "throughput_mps must be an object of measured speeds"),
    ("metrics", [0.5], "metrics must be an object"),
]


@pytest.mark.parametrize("field,value,needle", BAD_FIELDS)
def test_a_field_of_the_wrong_type_is_a_one_line_error_naming_it(tmp_path, pixel_card, field, value, needle):
    p = _write(tmp_path, _with(json.loads(pixel_card.read_text()), field, value))
    with pytest.raises(ModelIntegrityError) as err:
        get_card(str(p))  # what segment and plan call first
    msg = str(err.value)
    assert needle in msg and msg.startswith(f"model card {p}: ") and msg.endswith("; fix the card")
    assert "\n" not in msg and len(msg) < 400
    assert isinstance(err.value, GeosegError) and isinstance(err.value, ValueError)


def test_the_shipped_bad_cards_of_the_audit_are_refused(tmp_path):
    """The audit's cards: the shipped scinet-r18-h200 card with one field broken (architecture a string, sha256 an
    int, outputs a string or empty, input empty or a string normalization)."""
    shipped = get_card("scinet-r18-h200")
    raw = json.loads(shipped.path.read_text())
    raw["weights"] = str(shipped.weights_path)
    cases = {"architecture": "scinet", "sha256": 12345, "outputs": "building", "input": {}}
    for field, value in cases.items():
        with pytest.raises(ModelIntegrityError, match=re.escape(field)):
            get_card(str(_write(tmp_path, {**raw, field: value})))
    with pytest.raises(ModelIntegrityError, match="outputs must list"):
        get_card(str(_write(tmp_path, {**raw, "outputs": []})))
    with pytest.raises(ModelIntegrityError, match=r"input\.normalization must be"):
        get_card(str(_write(tmp_path, {**raw, "input": {"normalization": "imagenet"}})))
    with pytest.raises(ModelIntegrityError, match="outputs lists 2 names but architecture.classes is 3"):
        get_card(str(_write(tmp_path, {**raw, "outputs": ["building", "border"]})))
    assert get_card(str(_write(tmp_path, raw))).outputs == ("building", "border", "gap"), "the unbroken card loads"


def test_a_card_that_is_not_an_object_says_so(tmp_path):
    for value in ([1, 2, 3], "hello", 5):
        with pytest.raises(ModelIntegrityError, match="a model card must be a JSON object of fields") as err:
            ModelCard.load(_write(tmp_path, value))
        assert "lacks" not in str(err.value) and "fix the card" in str(err.value)


def test_a_multi_output_model_must_list_its_outputs(tmp_path, pixel_card_3out):
    raw = json.loads(pixel_card_3out.read_text())
    del raw["outputs"]
    with pytest.raises(ModelIntegrityError, match="outputs is missing, and architecture.classes is 3"):
        ModelCard.load(_write(tmp_path, raw))


def test_a_card_folder_is_not_called_invalid_json(tmp_path):
    (tmp_path / "m.json").mkdir()
    with pytest.raises(ModelIntegrityError, match="is a folder, not a card file"):
        ModelCard.load(tmp_path / "m.json")


def test_a_missing_card_says_what_to_do(tmp_path):
    with pytest.raises(ModelNotFoundError) as err:
        get_card(str(tmp_path / "none.json"))
    msg = str(err.value)
    assert msg.startswith(f"model card not found: {tmp_path / 'none.json'}; check the path")
    assert "geoseg models list" in msg and "\n" not in msg
    assert isinstance(err.value, FileNotFoundError)  # a path that is not there: also the builtin


def test_get_card_takes_a_path_object_and_refuses_a_non_name(pixel_card):
    from geoseg.errors import ConfigError

    assert get_card(pixel_card).name == "pixel-test"
    with pytest.raises(ConfigError, match="neither a model name nor a card path"):
        get_card(5)


def test_good_cards_and_partial_fields_still_pass(pixel_card, pixel_card_2out, pixel_card_3out):
    for card in (pixel_card, pixel_card_2out, pixel_card_3out):
        assert card_field_problem(json.loads(card.read_text())) is None
    # what `geoseg train --card` adds on export: a part of a card, checked alone
    assert card_field_problem({"gsd_m": 0.3, "gsd_valid_m": [0.1, 0.6], "threshold": 0.5, "border_cut": 1}) is None
    assert card_field_problem({"outputs": ["building", "border", "gap"]}) is None  # no architecture here to compare
    assert card_field_problem({"input": {"normalization": {"mean": [1, 2, 3], "std": [4, 5, 6]}}}) is None
    assert "threshold" in card_field_problem({"threshold": 5})


def test_a_missing_weights_file_is_found_without_hashing(tmp_path, pixel_card):
    raw = json.loads(pixel_card.read_text())
    card = ModelCard.load(_write(tmp_path, {**raw, "weights": "gone.safetensors"}))
    assert "not found at" in card.weights_problem() and "fix the card's 'weights'" in card.weights_problem()
    with pytest.raises(ModelNotFoundError, match="not found at"):
        card.verify_weights()
    assert ModelCard.load(pixel_card).weights_problem() is None


def test_a_gsd_m_outside_the_cards_own_valid_range_is_refused(tmp_path, pixel_card):
    """`--card {"gsd_m": 5.0}` on a model valid at 0.3-0.6 m was exported, and segment then ran it at 5 m."""
    raw = json.loads(pixel_card.read_text())  # valid 0.25-4 m
    for gsd in (5.0, 0.1):
        with pytest.raises(ModelIntegrityError, match=rf"gsd_m {gsd:g} lies outside gsd_valid_m \[0.25, 4\]") as err:
            get_card(str(_write(tmp_path, {**raw, "gsd_m": gsd})))
        assert "give a gsd_m inside the range, or widen gsd_valid_m" in str(err.value)
    assert "outside gsd_valid_m" in card_field_problem({"gsd_m": 5.0, "gsd_valid_m": [0.3, 0.6]})
    for gsd in (0.3, 0.6, 0.45):  # the ends are inside
        assert card_field_problem({"gsd_m": gsd, "gsd_valid_m": [0.3, 0.6]}) is None
    assert card_field_problem({"gsd_m": 5.0}) is None, "a part of a card without the range: checked once merged"


@pytest.mark.parametrize("key,needle", [("licence", "licence is not a model card field (did you mean license?)"),
                                        ("treshold", "(did you mean threshold?)"),
                                        ("gsd", "(did you mean gsd_m?)"),
                                        ("zzzz", "zzzz is not a model card field (see models/README.md")])
def test_card_fields_a_caller_adds_must_be_card_fields(key, needle):
    """A misspelt `--card` field (licence) was written to the card as is, and ignored."""
    from geoseg.models.card import card_extra_problem

    problem = card_extra_problem({"gsd_m": 0.3, key: "x"})
    assert needle in problem and problem.endswith("; fix or remove it") and "\n" not in problem


def test_every_shipped_card_and_card_template_holds_only_card_fields():
    """The fields of the shipped cards (models/), their installed copies and the --card templates (configs/) are all
    known, so the unknown-field check refuses none of them, and every shipped card still loads."""
    from pathlib import Path

    from geoseg.models.card import FIELDS, card_extra_problem
    from geoseg.models.registry import get_card

    root = Path(__file__).parents[2]
    cards = sorted((root / "models").glob("*.json"))
    templates = sorted((root / "configs").rglob("*.card.json"))
    assert cards and templates
    for path in cards + templates:
        raw = json.loads(path.read_text())
        assert card_extra_problem(raw) is None, path
        assert set(raw) <= FIELDS
    for path in cards:
        get_card(str(path))
    readme = (root / "models" / "README.md").read_text()
    assert all(f"`{k}`" in readme for k in FIELDS - {"train_cwd", "description"}), "each field is documented"
