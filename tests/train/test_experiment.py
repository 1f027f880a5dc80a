"""Experiment configs load from TOML or YAML alike; bad ones give one-line errors."""

from pathlib import Path

import pytest

from geoseg.errors import ConfigError
from geoseg.train.experiment import load_experiment

TOML = '''
name = "x"
[architecture]
name = "scinet"
[data]
base_gsd_m = 0.15
train = [{ raster = "a.tif", labels = "a.geojson" }]
[train]
gsd_range = [0.075, 1.2]
'''

YAML = '''
name: x
architecture: {name: scinet}
data:
  base_gsd_m: 0.15
  train:
    - {raster: a.tif, labels: a.geojson}
train:
  gsd_range: [0.075, 1.2]
'''


def test_toml_and_yaml_give_the_same_experiment(tmp_path):
    (tmp_path / "e.toml").write_text(TOML)
    (tmp_path / "e.yaml").write_text(YAML)
    assert load_experiment(tmp_path / "e.toml") == load_experiment(tmp_path / "e.yaml")
    assert load_experiment(tmp_path / "e.yaml")["train"]["gsd_range"] == [0.075, 1.2]


@pytest.mark.parametrize("name,text,needle", [
    ("bad.yaml", "name: [x", "not valid YAML"),
    ("bad.toml", "name = ", "not valid TOML"),
    ("part.yml", "name: x\ntrain: {}\n", "lacks architecture, data"),
    ("list.yaml", "- 1\n- 2\n", "must hold a mapping"),
    ("cfg.json", "{}", ".toml, .yaml or .yml"),
])
def test_bad_configs_raise_one_line_config_errors(tmp_path, name, text, needle):
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError) as err:
        load_experiment(tmp_path / name)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_the_yaml_example_in_the_training_guide_loads(tmp_path):
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "training.md").read_text()
    block = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "guide.yaml").write_text(block)
    cfg = load_experiment(tmp_path / "guide.yaml")
    assert cfg["architecture"]["name"] == "scinet" and cfg["train"]["source"] == "tiles"
    assert isinstance(cfg["train"]["lr"], float) and cfg["data"]["val"][0]["gsd_m"] == [0.15, 0.3, 0.6]


SHIPPED = sorted((Path(__file__).parents[2] / "configs").rglob("*.toml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_experiment_configs_load_and_are_complete(path):
    """Every config in configs/ (the recipes the model cards and docs cite) parses and names a full schedule."""
    from geoseg.train.experiment import check_experiment

    cfg = load_experiment(path)
    check_experiment(cfg)
    t = cfg["train"]
    for key in ("chip_size", "gsd_range", "batch_size", "steps_per_epoch", "epochs", "lr"):
        assert key in t, f"{path.name}: train.{key} missing"
    assert t["chip_size"] % 32 == 0 and t["gsd_range"][0] < t["gsd_range"][1]
    n_out = int(cfg["architecture"].get("classes", 2))
    assert len(t.get("channel_weights", [1.0, 0.5, 0.5])) >= n_out
    assert t.get("precision", "auto") == "auto", "shipped recipes let the machine pick bf16 only where it is native"


FULL = {
    "name": "x", "architecture": {"name": "scinet"}, "normalization": {"mean": [120, 120, 110], "std": [50, 50, 50]},
    "data": {"base_gsd_m": 0.15, "train": [{"raster": "a.tif", "labels": "a.gpkg"}],
             "val": [{"raster": "v.tif", "labels": "v.gpkg", "gsd_m": [0.15, 0.3]}]},
    "train": {"chip_size": 256, "gsd_range": [0.075, 1.2], "batch_size": 8, "steps_per_epoch": 10, "epochs": 2, "lr": 1e-3},
}


@pytest.mark.parametrize("section,key,value,needle", [
    ("train", "chip_size", 250, "multiple of 32"),
    ("train", "batch_size", 0, "whole number >= 1"),
    ("train", "epochs", 2.5, "whole number >= 1"),
    ("train", "gsd_range", [1.2, 0.075], "[finest, coarsest]"),
    ("train", "gsd_range", [0.3], "[finest, coarsest]"),
    ("train", "lr", -1e-3, "lr must be a number >= 0"),
    ("train", "lr", None, "train.lr is missing"),
    ("train", "checkpoint_every_s", -1, "checkpoint_every_s must be seconds >= 0"),
    ("train", "color_shift", -5, "color_shift must be grey levels 0-255"),
    ("train", "color_shift", 300, "color_shift must be grey levels 0-255"),
    ("train", "color_shift", 12.5, "color_shift must be grey levels 0-255"),
    ("train", "color_shift", True, "color_shift must be grey levels 0-255"),
    ("train", "accumulate", 0, "accumulate must be a whole number"),
    ("train", "accumulate", 1.5, "accumulate must be a whole number"),
    ("train", "accumulate", True, "accumulate must be a whole number"),
    ("train", "freeze_bn", "yes", "freeze_bn must be true or false"),
    ("train", "loss", "dice", "loss must be bce_dice or bce_lovasz"),
    ("train", "freze_bn", True, "train.freze_bn is not a training setting (did you mean freeze_bn?)"),
    ("train", "source", "bogus", "train.source must be 'tiles'"),
    ("train", "threads", 0, "train.threads must be a whole number >= 1"),
    ("train", "workers", -1, "train.workers must be a whole number >= 0"),
    ("train", "deterministic", "on", "deterministic must be true or false"),
    ("data", "base_gsd_m", 0, "base_gsd_m must be"),
    ("data", "train", [], "at least one"),
    ("data", "train", [{"raster": "a.tif"}], "needs raster (or raster_glob) and labels"),
    ("data", "train", [{"raster": "a.tif", "raster_glob": "*.tif", "labels": "a.gpkg"}], "both raster and raster_glob"),
    ("data", "train", [{"raster": "a.tif", "labels": "a.gpkg", "base_gsd_m": 0}], "train[0].base_gsd_m must be"),
    ("data", "train", [{"raster": "a.tif", "labels": "a.gpkg", "chip_gsd_m": [0.3, 0.1]}], "[finest, coarsest] chip"),
    ("data", "train", [{"raster": "a.tif", "labels": "a.gpkg", "chip_gsd_m": 0.3}], "[finest, coarsest] chip"),
    ("data", "train", [{"raster": "a.tif", "labels": "a.gpkg", "chip_gsd_m": [0.075, 0.3]},
                       {"raster": "b.tif", "labels": "b.gpkg", "chip_gsd_m": [0.6, 1.2]}], "between 0.3 and 0.6 m"),
    ("data", "train", [{"raster": "a.tif", "labels": "a.gpkg", "chip_gsd_m": [0.1, 1.2]}], "between 0.075 and 0.1 m"),
    ("data", "train", [{"raster": "a.tif", "labels": "a.gpkg", "chip_gsd_m": [0.075, 0.6]}], "between 0.6 and 1.2 m"),
    ("data", "val", [{"raster": "v.tif", "labels": "v.gpkg"}], "gsd_m (one GSD or a list)"),
    ("data", "val", [{"labels": "v.gpkg", "gsd_m": 0.3}], "raster (or raster_glob)"),
    ("data", "train", [{"raster": "a.tif", "labels": "a.gpkg", "bands": [1, 2]}], "train[0].bands must list 3 band"),
    ("data", "train", [{"raster": "a.tif", "labels": "a.gpkg", "bands": [0, 1, 2]}], "1-based"),
    ("data", "val", [{"raster": "v.tif", "labels": "v.gpkg", "gsd_m": 0.3, "bands": "rgb"}], "val[0].bands must list"),
    ("data", "train", [{"raster": "a.tif", "labels": "a.gpkg", "aoi": 5}], "train[0].aoi must be the path of a polygon"),
    ("data", "val", [{"raster": "v.tif", "labels": "v.gpkg", "gsd_m": 0.3, "aoi": ""}], "val[0].aoi must be the path"),
    ("architecture", "in_channels", 0, "in_channels must be a whole number of bands"),
    ("architecture", "in_channels", 4, "normalization.mean must list 4 numbers"),
])
def test_values_fit_cannot_train_with_are_one_line_config_errors(section, key, value, needle):
    import copy

    from geoseg.train.experiment import check_experiment

    check_experiment(FULL)
    cfg = copy.deepcopy(FULL)
    if value is None:
        del cfg[section][key]
    else:
        cfg[section][key] = value
    with pytest.raises(ConfigError) as err:
        check_experiment(cfg)
    assert needle in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("norm,needle", [({"mean": [1, 2], "std": [1, 1, 1]}, "mean must list 3"),
                                         ({"mean": [1, 2, 3]}, "std must list 3"),
                                         ({"mean": [1, 2, 3], "std": [1, 0, 1]}, "std must be > 0")])
def test_a_normalization_that_does_not_fit_the_bands_is_a_config_error(norm, needle):
    import copy

    from geoseg.train.experiment import check_experiment

    cfg = copy.deepcopy(FULL)
    cfg["normalization"] = norm
    with pytest.raises(ConfigError, match=needle):
        check_experiment(cfg)


def test_the_cli_refuses_a_bad_config_before_reading_data(tmp_path):
    from click.testing import CliRunner

    from geoseg.cli.main import cli

    (tmp_path / "e.toml").write_text(TOML + "chip_size = 100\nbatch_size = 2\nsteps_per_epoch = 1\nepochs = 1\nlr = 1e-3\n")
    r = CliRunner().invoke(cli, ["train", str(tmp_path / "e.toml"), "--out", str(tmp_path / "run")])
    assert r.exit_code == 2 and "chip_size must be a multiple of 32" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "run").exists()


def test_a_validation_glob_that_matches_nothing_is_a_config_error(tmp_path):
    from geoseg.train.validation import val_sets

    with pytest.raises(ConfigError, match="matches no file"):
        val_sets([{"raster_glob": str(tmp_path / "none" / "*.tif"), "labels": "v.gpkg", "gsd_m": 0.3}], 64)


def test_a_colour_shift_needs_three_bands():
    import copy

    from geoseg.train.experiment import check_experiment

    cfg = copy.deepcopy(FULL)
    cfg["architecture"]["in_channels"] = 4
    cfg["normalization"] = {"mean": [127.5] * 4, "std": [127.5] * 4}
    check_experiment(cfg)
    cfg["train"]["color_shift"] = 20
    with pytest.raises(ConfigError, match="needs in_channels = 3"):
        check_experiment(cfg)


def test_a_missing_file_in_any_entry_is_named_before_any_data_is_read(tmp_path, monkeypatch):
    from geoseg.train.experiment import check_paths

    (tmp_path / "a.tif").write_bytes(b"")
    (tmp_path / "a.gpkg").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    data = {"train": [{"raster": "a.tif", "labels": "a.gpkg"}, {"raster": "b.tif", "labels": "a.gpkg"}],
            "val": [{"raster_glob": "v/*.tif", "labels": "a.gpkg", "gsd_m": 0.3}]}
    with pytest.raises(ConfigError, match=r"data.train\[1\].raster not found: b.tif \(relative paths are read from "
                                          r"the current folder, .*\)") as err:
        check_paths(data)
    assert "\n" not in str(err.value)
    data["train"].pop()
    with pytest.raises(ConfigError, match=r"data.val\[0\].raster_glob 'v/\*.tif' matches no file"):
        check_paths(data)
    data["val"][0]["labels"] = str(tmp_path / "gone.gpkg")
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "x.tif").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"data.val\[0\].labels not found: /.*gone.gpkg; check the path"):
        check_paths(data)
    data["val"][0]["labels"] = "a.gpkg"
    check_paths(data)
    data["train"][0]["aoi"] = "area.gpkg"
    with pytest.raises(ConfigError, match=r"data.train\[0\].aoi not found: area.gpkg"):
        check_paths(data)
