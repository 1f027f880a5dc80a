"""``python -m geoseg.train`` and ``python -m geoseg.train.export`` (documented entry points) handle errors as the
``geoseg`` command does: a usage error prints the usage and exits 2, bad input is one ``geoseg: error: ...`` line and
exit 2, warnings are ``geoseg: warning: ...``. They printed tracebacks and exited 1."""

import json
import subprocess
import sys

import numpy as np
import pytest
from affine import Affine

from tests.conftest import scene, write_raster
from tests.models.test_export import write_checkpoint

ARCH = {"name": "pixel-linear", "in_channels": 3, "classes": 1}


def _run(module: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=300, check=False)


def _exits_2_with_one_line(capsys, call, needle: str) -> str:
    with pytest.raises(SystemExit) as stop:
        call()
    err = capsys.readouterr().err
    assert stop.value.code == 2, err
    assert err.startswith("geoseg: error: ") and len(err.splitlines()) == 1 and needle in err, err
    return err


# ---- python -m geoseg.train.export ----------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [[], ["only-one.pt"], ["a.pt", "out", "card.json", "extra"], ["a.pt", "out", "--fp8"]])
def test_export_usage_errors_print_the_usage_and_exit_2(tmp_path, args):
    r = _run("geoseg.train.export", *args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("usage: python -m geoseg.train.export") and "CHECKPOINT OUT_DIR" in r.stderr
    assert "Traceback" not in r.stderr and list(tmp_path.iterdir()) == []


def test_export_of_a_missing_checkpoint_is_one_line_and_exit_2(tmp_path):
    r = _run("geoseg.train.export", tmp_path / "runs" / "nope.pt", tmp_path / "out")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    want = (f"geoseg: error: checkpoint not found: {tmp_path / 'runs' / 'nope.pt'}; check the path (a run folder holds "
            "best.pt and last.pt)")
    assert r.stderr.splitlines() == [want]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("what", ["raster", "bytes", "empty", "pickle", "folder"])
def test_export_of_a_file_that_is_no_checkpoint_is_one_line_and_exit_2(tmp_path, capsys, what):
    import torch

    from geoseg.train.export import main

    path = tmp_path / "x.pt"
    if what == "raster":
        path = write_raster(tmp_path / "img.tif", scene((64, 64)))
    elif what == "bytes":
        path.write_bytes(b"PK\x03\x04 not a zip")
    elif what == "empty":
        path.write_bytes(b"")
    elif what == "pickle":
        torch.save({"weights": [1, 2]}, path)  # a torch file, not a run's
    else:
        path.mkdir()
    needle = f"{path} is a folder; give the checkpoint in it" if what == "folder" else f"{path} is not a"
    err = _exits_2_with_one_line(capsys, lambda: main([str(path), str(tmp_path / "out")]), needle)
    assert "best.pt" in err and not (tmp_path / "out").exists()


def test_export_to_an_output_that_is_a_file_is_one_line_and_exit_2(tmp_path, capsys):
    from geoseg.train.export import main

    ck = write_checkpoint(tmp_path / "run" / "last.pt", ARCH)
    (tmp_path / "afile").write_text("mine")
    _exits_2_with_one_line(capsys, lambda: main([str(ck), str(tmp_path / "afile")]),
                           f"OUT_DIR {tmp_path / 'afile'} is a file, not a folder; give a folder")
    assert (tmp_path / "afile").read_text() == "mine"


def test_export_over_another_model_of_the_same_name_is_one_line_and_exit_2(tmp_path, capsys):
    from geoseg.train.export import main

    ours = write_checkpoint(tmp_path / "a" / "last.pt", ARCH)
    assert main([str(ours), str(tmp_path / "m")]) == 0
    capsys.readouterr()
    card = (tmp_path / "m" / "ck-test.json").read_text()
    other = write_checkpoint(tmp_path / "b" / "last.pt", ARCH, lr=1e-4)  # another run, the same name
    _exits_2_with_one_line(capsys, lambda: main([str(other), str(tmp_path / "m")]),
                           "ck-test.json is another model named 'ck-test' (not trained with this config)")
    assert (tmp_path / "m" / "ck-test.json").read_text() == card


@pytest.mark.parametrize("content,needle", [("{bad json", "is not valid JSON"), ('{"licence": "CC"}', "did you mean license?"),
                                            ('{"gsd_m": 5.0}', "gsd_m 5 lies outside gsd_valid_m [0.2, 0.4]")])
def test_export_with_bad_card_fields_is_one_line_and_exit_2(tmp_path, capsys, content, needle):
    """A bad card file was already caught, but exited 1 (sys.exit with a message)."""
    from geoseg.train.export import main

    ck = write_checkpoint(tmp_path / "last.pt", ARCH)
    (tmp_path / "card.json").write_text(content)
    _exits_2_with_one_line(capsys, lambda: main([str(ck), str(tmp_path / "m"), str(tmp_path / "card.json")]), needle)
    assert not (tmp_path / "m").exists()


def test_export_prints_the_card_and_its_warnings_as_the_cli_does(tmp_path, capsys):
    from geoseg.models.registry import get_card
    from geoseg.train.export import main

    ck = write_checkpoint(tmp_path / "last.pt", ARCH)
    assert main([str(ck), str(tmp_path / "m"), "--int8"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(tmp_path / "m" / "ck-test.json")
    assert err.startswith("geoseg: warning: ck-test's card has no license or attribution;"), err
    assert len(err.splitlines()) == 1
    assert get_card(out.strip()).raw["weights_encoding"] == "int8"


# ---- python -m geoseg.train -----------------------------------------------------------------------------------------


def test_train_without_a_config_prints_the_usage_and_exits_2(tmp_path):
    r = _run("geoseg.train", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("usage: python -m geoseg.train") and "CONFIG [OUT_DIR]" in r.stderr
    assert "required: CONFIG" in r.stderr and list(tmp_path.iterdir()) == []


def test_train_with_a_bad_config_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "bad.toml").write_text("name = \n")
    r = _run("geoseg.train", tmp_path / "bad.toml", tmp_path / "run")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith(f"geoseg: error: {tmp_path / 'bad.toml'} is not valid TOML")
    assert not (tmp_path / "run").exists()


@pytest.fixture
def data(tmp_path):
    """A tiny 0.15 m raster, its labels and a config training on them (memory source, two steps)."""
    import geopandas as gpd
    from shapely.geometry import box

    t = Affine(0.15, 0, 500000, 0, -0.15, 5000000)
    raster = write_raster(tmp_path / "img.tif", scene((128, 128), [(20, 20, 50, 60)]), transform=t)
    gpd.GeoDataFrame(geometry=[box(500003, 4999992.5, 500009, 4999997)], crs=32633).to_file(tmp_path / "labels.gpkg")
    (tmp_path / "labels.csv").write_text("id,name\n1,house\n")
    text = f'''
name = "tiny"
[architecture]
name = "unet"
encoder = "resnet18"
[data]
base_gsd_m = 0.15
train = [{{ raster = "{raster}", labels = "{tmp_path / 'labels.gpkg'}" }}]
[train]
chip_size = 64
gsd_range = [0.15, 0.3]
batch_size = 2
steps_per_epoch = 1
epochs = 1
lr = 1e-3
source = "memory"
precision = "fp32"
device = "cpu"
threads = 1
'''
    (tmp_path / "exp.toml").write_text(text)
    return tmp_path


@pytest.mark.parametrize("change,needle", [
    (lambda p: p.write_text(p.read_text().replace("labels.gpkg", "labels.csv")), "labels.csv has no geometry column"),
    (lambda p: p.write_bytes(p.read_text().replace('"tiny"', '"maison-café"').encode("latin-1")),
     "is not UTF-8 text (byte "),
    (lambda p: p.write_text(p.read_text().replace("[0.15, 0.3]", "[0.001, 0.3]")),
     "data.train[0] cannot make chips finer than 0.01875 m"),
    (lambda p: p.unlink(), "experiment config not found: "),
])
def test_train_with_bad_input_is_one_line_and_exit_2(data, capsys, change, needle):
    from geoseg.train.__main__ import main

    change(data / "exp.toml")
    _exits_2_with_one_line(capsys, lambda: main([str(data / "exp.toml"), str(data / "run")]), needle)
    assert not (data / "run").exists()


def test_train_runs_a_config_without_classes_into_a_two_output_model(data, capsys):
    """A config without architecture.classes trains building + border, and its card says so."""
    from geoseg.models.registry import get_card
    from geoseg.train.__main__ import main
    from geoseg.train.export import main as export_main

    assert main([str(data / "exp.toml"), str(data / "run")]) == 0
    assert capsys.readouterr().err.splitlines()[-1] == f"best checkpoint: {data / 'run' / 'best.pt'}"
    assert export_main([str(data / "run" / "best.pt"), str(data / "m")]) == 0
    card = get_card(str(data / "m" / "tiny.json"))
    assert card.outputs == ("building", "border") and card.architecture["classes"] == 2
    assert card.raw["training"]["config"]["architecture"]["classes"] == 2
    assert np.isfinite(json.loads((data / "run" / "log.jsonl").read_text().splitlines()[0])["loss"])
