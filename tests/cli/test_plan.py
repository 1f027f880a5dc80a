"""`geoseg plan` refuses a model card that `geoseg segment` would refuse, and warns when its weights are missing."""

import json

import pytest
from click.testing import CliRunner

from geoseg.cli.main import cli
from tests.conftest import scene, write_raster


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def src(tmp_path):
    return write_raster(tmp_path / "in.tif", scene((300, 200)))


@pytest.mark.parametrize("field,value,needle", [
    ("architecture", "pixel-linear", "architecture must be an object"),
    ("sha256", 12345, "sha256 must be the weights file's SHA-256"),
    ("input", {}, "input.normalization is missing"),
    ("outputs", "building", "outputs must list the model's output names"),
    ("outputs", [], "outputs must list the model's output names"),
])
def test_plan_refuses_a_malformed_card_with_exit_2(tmp_path, src, pixel_card, field, value, needle):
    bad = tmp_path / "bad.json"
    raw = json.loads(pixel_card.read_text())
    bad.write_text(json.dumps({**raw, field: value, "weights": str(pixel_card.parent / raw["weights"])}))
    for command in (["plan", src], ["segment", src, "-o", tmp_path / "o.gpkg", "--progress", "none"]):
        r = run(*command, "--model", bad)
        assert r.exit_code == 2, (command[0], r.output)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"geoseg: error: model card {bad}: ") and needle in lines[0]
        assert lines[0].endswith("; fix the card") and r.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json", "in.tif"], "segment did no work"


def test_plan_warns_when_the_weights_are_missing_and_still_plans(tmp_path, src, pixel_card):
    card = tmp_path / "c.json"
    card.write_text(json.dumps({**json.loads(pixel_card.read_text()), "weights": "gone.safetensors"}))
    r = run("plan", src, "--model", card, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["tiles"] == 24
    warning = [line for line in r.stderr.splitlines() if line.startswith("geoseg: warning: ")]
    assert len(warning) == 1 and f"not found at {tmp_path / 'gone.safetensors'}" in warning[0]
    assert "`geoseg segment` would stop there" in warning[0]
    import geoseg

    with pytest.warns(UserWarning, match="would stop there"):  # the Python API says it too
        assert geoseg.plan(str(src), str(card))["tiles"] == 24


def test_plan_with_a_good_card_warns_of_nothing(src, pixel_card):
    r = run("plan", src, "--model", pixel_card, "--json")
    assert r.exit_code == 0, r.output
    assert "warning" not in r.stderr


def test_a_missing_card_path_says_where_to_look(tmp_path, src):
    r = run("plan", src, "--model", tmp_path / "none.json")
    assert r.exit_code == 2
    assert "model card not found" in r.stderr and "geoseg models list" in r.stderr


def test_models_list_names_a_broken_card_on_the_search_path(tmp_path, monkeypatch, pixel_card):
    raw = json.loads(pixel_card.read_text())
    (tmp_path / "broken.json").write_text(json.dumps({**raw, "name": "broken", "sha256": 12345}))
    monkeypatch.setenv("GEOSEG_MODEL_PATH", str(tmp_path))
    r = run("models", "list")
    assert r.exit_code == 0, r.output
    assert f"geoseg: warning: skipped unreadable model card {tmp_path / 'broken.json'}: " in r.stderr
    assert "sha256 must be" in r.stderr and "broken" not in r.stdout and "unet-r18-buildings" in r.stdout
