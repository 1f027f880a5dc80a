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


SHIPPED = sorted(p for p in (Path(__file__).parents[2] / "configs").rglob("*") if p.suffix in (".toml", ".yaml", ".yml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(p.parents[1])) if p.parent.name != "configs"
                         else p.name)
def test_shipped_experiment_configs_load_and_are_complete(path, tmp_path, monkeypatch):
    """Every config in configs/ and its folders (the recipes the model cards and docs cite) parses, passes every check
    (no unknown key, a registered model to start from) and names a full schedule."""
    from geoseg.train.experiment import check_experiment

    cfg = load_experiment(path)
    init = cfg["train"].get("init_model") or cfg["train"].get("init_encoder")
    if init and init.endswith(".pt"):  # the run of another shipped recipe: made here as it would be by training it
        names = {load_experiment(p)["name"] for p in SHIPPED}
        assert any(init == f"runs/{n}/last.pt" for n in names), f"{path.name}: {init} is no shipped recipe's run"
        monkeypatch.chdir(tmp_path)
        Path(init).parent.mkdir(parents=True)
        Path(init).write_bytes(b"")
    check_experiment(cfg)
    t = cfg["train"]
    for key in ("chip_size", "gsd_range", "batch_size", "steps_per_epoch", "epochs", "lr"):
        assert key in t, f"{path.name}: train.{key} missing"
    assert t["chip_size"] % 32 == 0 and t["gsd_range"][0] < t["gsd_range"][1]
    n_out = int(cfg["architecture"].get("classes", 2))
    assert len(t.get("channel_weights", [1.0, 0.5, 0.5])) >= n_out
    assert t.get("precision", "auto") == "auto", "shipped recipes let the machine pick bf16 only where it is native"


def test_every_shipped_folder_of_configs_is_checked():
    assert {p.parent.name for p in SHIPPED} >= {"configs", "gpu", "cpu", "encoders", "finetune"}


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


def _changed(change) -> dict:
    import copy

    cfg = copy.deepcopy(FULL)
    change(cfg)
    return cfg


def _one_line_error(cfg) -> str:
    from geoseg.train.experiment import check_experiment

    with pytest.raises(ConfigError) as err:
        check_experiment(cfg)
    assert "\n" not in str(err.value)
    return str(err.value)


@pytest.mark.parametrize("change,needle", [
    (lambda c: c.update(normalisation=c.pop("normalization")), ("normalisation is not a section of an experiment "
                                                              "(did you mean normalization?)")),
    (lambda c: c.update(trian={}), "trian is not a section of an experiment (did you mean train?)"),
    (lambda c: c["architecture"].update(encoder_name="mobilenet_v2"),
     "architecture.encoder_name is not an architecture setting (did you mean encoder?)"),
    (lambda c: c["architecture"].update(classess=3), ("architecture.classess is not an architecture setting (did you "
                                                     "mean classes?)")),
    (lambda c: c["normalization"].update(sdt=[1, 1, 1]), ("normalization.sdt is not a normalization setting (did you "
                                                          "mean std?)")),
    (lambda c: c["data"].update(vall=[]), "data.vall is not a data setting (did you mean val?)"),
    (lambda c: c["data"]["train"][0].update(band=[3, 2, 1]),
     "data.train[0].band is not a setting of a data.train entry (did you mean bands?)"),
    (lambda c: c["data"]["val"][0].update(band=[3, 2, 1]),
     "data.val[0].band is not a setting of a data.val entry (did you mean bands?)"),
    (lambda c: c["data"]["val"][0].update(chip_gsd_m=[0.1, 0.3]), ("data.val[0].chip_gsd_m is not a setting of a "
                                                                    "data.val entry (did you mean gsd_m?)")),
    (lambda c: c["data"]["train"][0].update(zzz=1), "known: aoi, bands, base_gsd_m, chip_gsd_m, labels, name"),
])
def test_an_unknown_key_in_any_section_or_entry_names_the_nearest_known_one(change, needle):
    """A typo outside [train] was ignored: [normalisation] trained with the default normalization, `band` read a BGR
    raster as RGB, `encoder_name` trained a resnet18."""
    assert needle in _one_line_error(_changed(change))


def _set(path: str, value):
    """A change setting ``section.key`` (``data.val.0.gsd_m``: inside a list) of a config to ``value``."""
    def change(cfg):
        *keys, last = path.split(".")
        for k in keys:
            cfg = cfg[int(k)] if k.isdigit() else cfg[k]
        cfg[last] = value
    return change


@pytest.mark.parametrize("path,value,needle", [
    ("architecture", "unet", "architecture must be a table of settings"),
    ("data", "data256", "data must be a table of settings"),
    ("train", [], "train must be a table of settings"),
    ("normalization", "imagenet", "normalization must be a table of settings"),
    ("data.val", {"raster": "v.tif", "labels": "v.gpkg", "gsd_m": 0.3}, "data.val must be a list of entries"),
    ("architecture.classes", 4, "architecture.classes must be 1 (building), 2 (+ border) or 3 (+ gap), not 4"),
    ("architecture.classes", 0, "architecture.classes must be 1"),
    ("architecture.classes", "2", "architecture.classes must be 1"),
    ("architecture.classes", True, "architecture.classes must be 1"),
    ("train.channel_weights", [1.0], "channel_weights must list a loss weight >= 0 for each of the 2 outputs"),
    ("train.channel_weights", "1,0.5", "channel_weights must list"),
    ("train.channel_weights", [float("nan"), 0.5], "channel_weights must list"),
    ("train.channel_weights", [1.0, -0.5], "channel_weights must list"),
    ("train.channel_weights", [1.0, 0.5, 0.5, 0.5], "channel_weights must list"),
    ("train.device", "gpu", "train.device must be cpu or cuda"),
    ("train.device", "auto", "train.device must be cpu or cuda"),
    ("train.precision", "fp23", "train.precision must be auto, fp32, bf16, fp16, not 'fp23'"),
    ("train.seed", "abc", "train.seed must be a whole number >= 0"),
    ("train.seed", 1.5, "train.seed must be a whole number >= 0"),
    ("train.seed", -1, "train.seed must be a whole number >= 0"),
    ("train.val_chip_size", "big", "train.val_chip_size must be a multiple of 32"),
    ("train.val_chip_size", 0, "train.val_chip_size must be a multiple of 32"),
    ("train.val_chip_size", 100, "train.val_chip_size must be a multiple of 32"),
    ("train.gsd_range", [0.3, float("inf")], "gsd_range must be [finest, coarsest]"),
    ("train.lr", float("inf"), "train.lr must be a number >= 0"),
    ("train.lr", float("nan"), "train.lr must be a number >= 0"),
    ("train.lr", False, "train.lr must be a number >= 0"),
    ("train.lr", "fast", "train.lr must be a number >= 0, not 'fast'"),
    ("train.lr", "nan", "train.lr must be a number >= 0, not 'nan'"),
    ("train.checkpoint_every_s", float("inf"), "checkpoint_every_s must be seconds >= 0"),
    ("train.max_seconds", "ten", "train.max_seconds must be a number of seconds > 0"),
    ("train.max_seconds", 0, "train.max_seconds must be a number of seconds > 0"),
    ("train.val_every_s", float("inf"), "train.val_every_s must be a number of seconds > 0"),
    ("normalization.mean", [120, float("nan"), 110], "normalization.mean must list 3 numbers"),
    ("normalization.std", [50, float("inf"), 50], "normalization.std must list 3 numbers"),
    ("data.base_gsd_m", float("inf"), "data.base_gsd_m must be a GSD"),
    ("data.val.0.gsd_m", [0.15, float("inf")], "data.val[0] needs labels"),
    ("name", 5, "name must be a plain folder name"),
    ("name", "runs/x", "name must be a plain folder name"),
    ("name", "..", "name must be a plain folder name"),
    ("name", " ", "name must be a plain folder name"),
])
def test_a_value_of_the_wrong_type_or_range_is_a_one_line_config_error(path, value, needle):
    """Each of these was an internal error (exit 1), an error after all the data had loaded, or a run that trained
    NaN weights."""
    assert needle in _one_line_error(_changed(_set(path, value)))


@pytest.mark.parametrize("path,value", [
    ("architecture.classes", 1), ("architecture.classes", 3), ("train.channel_weights", [1.0, 0.5]),
    ("train.channel_weights", [1, 0, 2]), ("train.device", "cpu"), ("train.precision", "bf16"), ("train.seed", 0),
    ("train.val_chip_size", 256), ("train.max_seconds", 400), ("train.val_every_s", 60.5), ("name", "my-model_2"),
    ("train.lr", 0), ("train.checkpoint_every_s", 0),
])
def test_the_values_fit_trains_with_pass(path, value):
    from geoseg.train.experiment import check_experiment

    check_experiment(_changed(_set(path, value)))


@pytest.mark.parametrize("train,needle", [
    ({"device": "cuda"}, "train.device = cuda needs a CUDA GPU and PyTorch sees none here"),
    ({"precision": "fp16"}, "train.precision = fp16 needs a CUDA GPU"),
])
def test_cuda_asked_for_without_a_gpu_is_a_config_error(monkeypatch, train, needle):
    import torch

    from geoseg.train.experiment import check_experiment

    cfg = _changed(lambda c: c["train"].update(train))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert needle in _one_line_error(cfg)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    check_experiment(cfg)
    check_experiment(_changed(lambda c: c["train"].update(train, device="cpu", precision="fp32")))


@pytest.mark.parametrize("arch,train,needle", [
    ({}, {"init_model": "no-such-model"}, "train.init_model: unknown model 'no-such-model'; valid names: "),
    ({}, {"init_encoder": "models/nope.json"}, "train.init_encoder: model card not found: models/nope.json"),
    ({}, {"init_model": "runs/nope/last.pt"}, ("train.init_model not found: runs/nope/last.pt (relative paths are read "
                                              "from the current folder")),
    ({}, {"init_encoder": "/nowhere/w.safetensors"}, "train.init_encoder not found: /nowhere/w.safetensors; train"),
    ({}, {"init_model": 5}, "train.init_model must be a registered model's name"),
    ({"encoder": "resnet34"}, {"init_encoder": "scinet-r18-h200"},
     ("train.init_encoder 'scinet-r18-h200' does not match the architecture being trained (encoder resnet18 there, "
     "resnet34 here)")),
    ({"name": "unet", "classes": 3}, {"init_model": "scinet-r18-h200"},
     "(name scinet there, unet here)"),
    ({"in_channels": 4}, {"init_encoder": "scinet-r18-h200"}, "(in_channels 3 there, 4 here)"),
    ({}, {"init_model": "scinet-r18-h200", "init_encoder": "scinet-r18-h200"}, ("init_model (fine-tune a whole model) "
                                                                               "or train.init_encoder, not both")),
])
def test_the_weights_to_start_from_are_found_before_any_data_is_read(arch, train, needle):
    cfg = _changed(lambda c: (c["architecture"].update(arch), c["train"].update(train)))
    if arch.get("in_channels") == 4:
        cfg["normalization"] = {"mean": [127.5] * 4, "std": [127.5] * 4}
    assert needle in _one_line_error(cfg)


def test_weights_that_fit_the_architecture_pass(tmp_path):
    from geoseg.train.experiment import check_experiment

    (tmp_path / "last.pt").write_bytes(b"")
    for train in ({"init_model": "scinet-r18-h200"}, {"init_model": "default"}, {"init_encoder": "scinet-r18-h200"},
                  {"init_model": str(tmp_path / "last.pt")}):
        check_experiment(_changed(lambda c: c["train"].update(train)))  # noqa: B023 - called at once
    check_experiment(_changed(lambda c: (c["architecture"].update(name="unet"),
                                         c["train"].update(init_encoder="scinet-r18-h200"))))


YAML_FLOATS = YAML + """  chip_size: 256
  batch_size: 8
  steps_per_epoch: 10
  epochs: 2
  lr: 5e-4
  checkpoint_every_s: 6e2
  channel_weights: [1, 5e-1]
"""


def test_yaml_numbers_without_a_dot_are_read_as_numbers(tmp_path):
    """PyYAML (YAML 1.1) reads 5e-4 as the text '5e-4': `lr: 5e-4` was refused as "not a number"."""
    from geoseg.train.experiment import check_experiment

    (tmp_path / "e.yaml").write_text(YAML_FLOATS.replace("base_gsd_m: 0.15", "base_gsd_m: 15e-2"))
    cfg = load_experiment(tmp_path / "e.yaml")
    assert cfg["train"]["lr"] == "5e-4", "PyYAML still reads it as text"
    check_experiment(cfg)
    t = cfg["train"]
    assert (t["lr"], t["checkpoint_every_s"], t["channel_weights"], cfg["data"]["base_gsd_m"]) == (5e-4, 600.0, [1, 0.5],
                                                                                                  0.15)
    (tmp_path / "bad.yaml").write_text(YAML_FLOATS.replace("lr: 5e-4", "lr: 5e-4x"))
    assert "train.lr must be a number >= 0, not '5e-4x'" in _one_line_error(load_experiment(tmp_path / "bad.yaml"))


@pytest.mark.parametrize("name", ["5", "'a/b'", "'..'"])
def test_a_name_that_is_no_folder_name_is_refused_when_the_file_loads(tmp_path, name):
    """`geoseg train` makes runs/<name> before fit checks the config: name = 5 was an internal TypeError."""
    (tmp_path / "e.toml").write_text(TOML.replace('name = "x"', f"name = {name}"))
    with pytest.raises(ConfigError, match="name must be a plain folder name"):
        load_experiment(tmp_path / "e.toml")


def test_the_cli_refuses_an_unknown_section_before_reading_data(tmp_path):
    from click.testing import CliRunner

    from geoseg.cli.main import cli

    text = TOML + "chip_size = 64\nbatch_size = 2\nsteps_per_epoch = 1\nepochs = 1\nlr = 1e-3\n"
    (tmp_path / "e.toml").write_text(text + "[normalisation]\nmean = [0, 0, 0]\nstd = [1, 1, 1]\n")
    r = CliRunner().invoke(cli, ["train", str(tmp_path / "e.toml"), "--out", str(tmp_path / "run")])
    assert r.exit_code == 2 and "normalisation is not a section of an experiment (did you mean normalization?)" in r.output
    assert len([line for line in r.output.splitlines() if line.strip()]) == 1 and not (tmp_path / "run").exists()


def test_a_config_without_classes_gets_the_two_outputs_fit_trains_written_in(tmp_path):
    """build_module and the export read a missing architecture.classes as 1, the config check and fit as 2: a config
    without it trained a one-output model whose matching channel_weights = [1.0] were refused. Now the config says 2
    (building, border) for every later reader, whether it comes from a file or as a dict."""
    import copy

    from geoseg.models.arch import build_module
    from geoseg.train.experiment import check_experiment

    (tmp_path / "e.toml").write_text(TOML)
    assert load_experiment(tmp_path / "e.toml")["architecture"] == {"name": "scinet", "classes": 2}
    cfg = copy.deepcopy(FULL)
    del cfg["architecture"]["classes"]  # FULL may have been checked (and filled in) by an earlier test
    check_experiment(cfg)
    assert cfg["architecture"]["classes"] == 2
    head = build_module({**cfg["architecture"], "name": "unet"}).segmentation_head[0]
    assert head.out_channels == 2, "the model fit builds from the checked config has both outputs"
    cfg["architecture"]["classes"] = 1  # given: kept
    check_experiment(cfg)
    assert cfg["architecture"]["classes"] == 1


@pytest.mark.parametrize("change,needle", [
    (lambda c: c["train"].update(gsd_range=[0.001, 1.2]),
     ("data.train[0] cannot make chips finer than 0.004688 m (8 pixels of its 0.15 m base grid on a 256 px chip) but "
      "is asked for 0.001 m; raise the low end of train.gsd_range to 0.004688 or more (or lower data.base_gsd_m)")),
    (lambda c: c["train"].update(chip_size=32, gsd_range=[0.03, 1.2]),  # 8 * 0.15 / 32 = 0.0375
     "data.train[0] cannot make chips finer than 0.0375 m"),
    (lambda c: (c["train"].update(gsd_range=[0.01, 1.2]),  # fine for the 0.15 m entry, not for the 0.6 m one
                c["data"]["train"].append({"raster": "b.tif", "labels": "b.gpkg", "base_gsd_m": 0.6})),
     "data.train[1] cannot make chips finer than 0.01875 m (8 pixels of its 0.6 m base grid"),
    (lambda c: (c["train"].update(gsd_range=[0.01, 1.2]),
                c["data"]["train"][0].update(chip_gsd_m=[0.01, 0.3], base_gsd_m=0.6),
                c["data"]["train"].append({"raster": "b.tif", "labels": "b.gpkg", "chip_gsd_m": [0.3, 1.2]})),
     "data.train[0] cannot make chips finer than 0.01875 m"),
    (lambda c: (c["train"].update(gsd_range=[0.01, 1.2]),
                c["data"]["train"][0].update(chip_gsd_m=[0.01, 0.3]),
                c["data"]["train"].append({"raster": "b.tif", "labels": "b.gpkg", "chip_gsd_m": [0.015, 1.2],
                                           "base_gsd_m": 0.6})),
     ("data.train[1] cannot make chips finer than 0.01875 m (8 pixels of its 0.6 m base grid on a 256 px chip) but "
      "is asked for 0.015 m; raise the low end of its chip_gsd_m to 0.01875 or more (or lower "
      "data.train[1].base_gsd_m)")),
])
def test_a_gsd_range_finer_than_the_sampler_can_make_is_a_config_error(change, needle):
    """A chip is at least 8 pixels of its entry's base grid (chips.ChipSampler.sample_with_gsd): gsd_range [0.001,
    0.002] on 0.3 m data trained every chip at 0.0375 m and the card advertised [0.001, 0.002]."""
    assert needle in _one_line_error(_changed(change))


def test_a_gsd_range_the_sampler_can_make_passes():
    from geoseg.train.experiment import check_experiment

    check_experiment(_changed(lambda c: c["train"].update(gsd_range=[0.0046875, 1.2])))  # exactly 8 base pixels
    check_experiment(_changed(lambda c: (  # the coarse entry serves only coarse chips: its base is no limit below them
        c["data"]["train"][0].update(chip_gsd_m=[0.075, 0.3]),
        c["data"]["train"].append({"raster": "b.tif", "labels": "b.gpkg", "chip_gsd_m": [0.3, 1.2], "base_gsd_m": 0.6}),
        c["data"]["train"].append({"raster": "c.tif", "labels": "c.gpkg", "chip_gsd_m": [5.0, 9.0], "base_gsd_m": 60}))))


def test_the_cli_refuses_a_gsd_range_finer_than_the_chips_in_one_line(tmp_path):
    from click.testing import CliRunner

    from geoseg.cli.main import cli

    text = TOML.replace("[0.075, 1.2]", "[0.001, 0.002]") + "chip_size = 64\nbatch_size = 2\nsteps_per_epoch = 1\n" \
        "epochs = 1\nlr = 1e-3\n"
    (tmp_path / "e.toml").write_text(text)
    r = CliRunner().invoke(cli, ["train", str(tmp_path / "e.toml"), "--out", str(tmp_path / "run")])
    assert r.exit_code == 2 and r.stderr.startswith("geoseg: error: data.train[0] cannot make chips finer than 0.01875 m")
    assert len(r.stderr.splitlines()) == 1 and not (tmp_path / "run").exists()


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16", "cp1252"])
def test_a_config_that_is_not_utf8_says_to_save_it_as_utf8(tmp_path, encoding):
    """A config saved by a Windows editor as Latin-1 or "Unicode" (UTF-16) was an internal UnicodeDecodeError."""
    path = tmp_path / "e.yaml"
    path.write_bytes(YAML.replace("name: x", "name: café").encode(encoding))
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    msg = str(err.value)
    assert msg.startswith(f"{path} is not UTF-8 text") and "save it as UTF-8" in msg and "\n" not in msg


def test_a_utf8_config_with_a_byte_order_mark_loads_and_a_missing_one_is_named(tmp_path):
    (tmp_path / "e.toml").write_bytes(TOML.replace('name = "x"', 'name = "café"').encode("utf-8-sig"))
    assert load_experiment(tmp_path / "e.toml")["name"] == "café"
    with pytest.raises(ConfigError, match=r"experiment config not found: .*none\.toml; check the path"):
        load_experiment(tmp_path / "none.toml")
    (tmp_path / "d.toml").mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        load_experiment(tmp_path / "d.toml")
