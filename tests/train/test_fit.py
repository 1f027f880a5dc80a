"""Training end to end on a tiny generated raster + labels: the loss goes down, runs resume."""

import json
import os
import re

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from click.testing import CliRunner
from shapely.geometry import box

from geoseg.cli.main import cli
from tests.conftest import scene, write_raster


@pytest.fixture
def experiment(tmp_path):
    rng = np.random.default_rng(0)
    rects = []
    for _ in range(40):
        r, c = rng.integers(0, 360, size=2)
        h, w = rng.integers(8, 30, size=2)
        rects.append((int(r), int(c), int(r + h), int(c + w)))
    t = Affine(0.15, 0, 500000, 0, -0.15, 5000000)
    raster = write_raster(tmp_path / "img.tif", scene((400, 400), rects), transform=t)
    geoms = [box(t.c + c0 * 0.15, t.f - r1 * 0.15, t.c + c1 * 0.15, t.f - r0 * 0.15) for r0, c0, r1, c1 in rects]
    gpd.GeoDataFrame(geometry=geoms, crs=32633).to_crs(4326).to_file(tmp_path / "labels.geojson")
    cfg = f'''
name = "tiny"
[architecture]
name = "unet"
encoder = "resnet18"
in_channels = 3
classes = 2
[data]
base_gsd_m = 0.15
train = [{{ raster = "{raster}", labels = "{tmp_path / 'labels.geojson'}" }}]
val = [{{ raster = "{raster}", labels = "{tmp_path / 'labels.geojson'}", gsd_m = 0.3 }}]
[train]
chip_size = 64
val_chip_size = 64
gsd_range = [0.2, 0.4]
batch_size = 4
steps_per_epoch = 10
epochs = 3
lr = 3e-3
seed = 0
precision = "fp32"
'''
    (tmp_path / "exp.toml").write_text(cfg)
    return tmp_path


def test_training_lowers_the_loss_checkpoints_and_exports(experiment):
    out = experiment / "run"
    card = experiment / "card.json"
    card.write_text(json.dumps({"gsd_m": 0.3, "gsd_valid_m": [0.1, 0.6], "tile_size": 64, "overlap": 16, "threshold": 0.5}))
    r = CliRunner().invoke(cli, ["train", str(experiment / "exp.toml"), "--out", str(out), "--export", str(experiment / "models"), "--card", str(card), "--int8"])
    assert r.exit_code == 0, r.output
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in log] == [0, 1, 2]
    assert log[-1]["loss"] < log[0]["loss"]
    assert (out / "best.pt").is_file() and (out / "last.pt").is_file()
    from geoseg.models.registry import get_card

    exported = get_card(str(experiment / "models" / "tiny.json"))
    exported.verify_weights()
    assert exported.outputs == ("building", "border") and exported.raw["training"]["config"]["name"] == "tiny"
    assert exported.raw["weights_encoding"] == "int8"


def test_an_interrupted_run_resumes_where_it_stopped(experiment):
    import tomllib
    import torch

    from geoseg.train.fit import fit

    out = experiment / "run"
    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    cfg["train"].update(epochs=3, steps_per_epoch=6)
    fit(cfg, out, stop_after=1)
    assert [json.loads(x)["epoch"] for x in (out / "log.jsonl").read_text().splitlines()] == [0]
    assert torch.load(out / "last.pt", weights_only=False)["epoch"] == 0
    fit(cfg, out)
    assert [json.loads(x)["epoch"] for x in (out / "log.jsonl").read_text().splitlines()] == [0, 1, 2]
    import geoseg.train.fit as fit_module

    def no_data(*args):
        raise AssertionError("a finished run loaded its training data")

    real, fit_module.train_regions = fit_module.train_regions, no_data
    try:
        assert fit(cfg, out) == out / "best.pt"
    finally:
        fit_module.train_regions = real
    assert len((out / "log.jsonl").read_text().splitlines()) == 3, "a finished run does not train again"


def test_training_runs_in_channels_last_where_the_engine_does(experiment):
    import tomllib
    import torch

    from geoseg.train.fit import fit

    cfg = tomllib.loads((experiment / "exp.toml").read_text())  # fp32: channels_last on every device
    cfg["train"].update(epochs=1, steps_per_epoch=2)
    fit(cfg, experiment / "cl")
    state = torch.load(experiment / "cl" / "last.pt", weights_only=False)["model"]
    convs = [v for v in state.values() if v.dim() == 4 and v.shape[-1] > 1]
    assert convs and all(v.is_contiguous(memory_format=torch.channels_last) and not v.is_contiguous() for v in convs)


def test_the_same_seed_gives_the_same_run(experiment):
    import tomllib

    from geoseg.train.fit import fit

    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    cfg["train"].update(epochs=1, steps_per_epoch=3)
    logs = []
    for run_dir in ("a", "b"):
        fit(cfg, experiment / run_dir)
        logs.append(json.loads((experiment / run_dir / "log.jsonl").read_text())["loss"])
    cfg["train"]["seed"] = 1
    fit(cfg, experiment / "c")
    assert logs[0] == logs[1] != json.loads((experiment / "c" / "log.jsonl").read_text())["loss"]


def test_chips_from_worker_processes_are_seeded_and_a_resumed_run_draws_the_same(experiment):
    """train.workers = 2: the same seed gives the same run, and stopping after epoch 1 then resuming gives
    exactly the losses of an uninterrupted run (each epoch's workers are seeded from seed and epoch)."""
    import tomllib

    from geoseg.train.fit import fit

    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    cfg["train"].update(epochs=2, steps_per_epoch=3, workers=2)
    cfg["data"]["val"] = []

    def losses(run_dir):
        return [json.loads(line)["loss"] for line in (experiment / run_dir / "log.jsonl").read_text().splitlines()]

    fit(cfg, experiment / "a")
    fit(cfg, experiment / "b", stop_after=1)
    fit(cfg, experiment / "b")
    assert len(losses("a")) == 2 and losses("a") == losses("b")
    cfg["train"]["workers"] = 0  # one process draws other chips: the comparison above is not vacuous
    fit(cfg, experiment / "c")
    assert losses("c") != losses("a")


def test_a_three_output_model_trains_and_exports_building_border_gap(experiment):
    import tomllib
    import torch

    from geoseg.models.registry import get_card
    from geoseg.train.export import export
    from geoseg.train.fit import fit

    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    cfg["architecture"]["classes"] = 3
    cfg["train"].update(epochs=1, steps_per_epoch=2)
    fit(cfg, experiment / "run3")
    assert torch.load(experiment / "run3" / "last.pt", weights_only=False)["model"]["segmentation_head.0.weight"].shape[0] == 3
    extra = {"gsd_m": 0.3, "gsd_valid_m": [0.1, 0.6], "tile_size": 64, "overlap": 16, "threshold": 0.5}
    card = get_card(str(export(experiment / "run3" / "last.pt", experiment / "m", extra)))
    assert card.outputs == ("building", "border", "gap") and card.boundary_band == (2, 3)


def test_fine_tuning_starts_from_a_run_and_grows_the_head_by_one_output(experiment):
    import tomllib
    import torch

    from geoseg.train.fit import fit

    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    cfg["train"].update(epochs=1, steps_per_epoch=1)
    fit(cfg, experiment / "two")
    two = torch.load(experiment / "two" / "last.pt", weights_only=False)["model"]
    cfg["architecture"]["classes"] = 3
    cfg["train"].update(init_model=str(experiment / "two" / "last.pt"), lr=0.0, steps_per_epoch=1)
    fit(cfg, experiment / "three")
    three = torch.load(experiment / "three" / "last.pt", weights_only=False)["model"]
    head = "segmentation_head.0.weight"
    assert three[head].shape[0] == 3
    assert torch.equal(three[head][:2], two[head]), "building and border outputs carried over"
    assert not torch.equal(three[head][2], torch.zeros_like(three[head][2])), "the gap output starts fresh, not zeroed"
    k = "decoder.blocks.0.conv1.0.weight"
    assert torch.equal(three[k], two[k]), "with lr 0 every shared layer stays as loaded"


def test_a_fine_tune_from_another_architecture_is_refused(experiment):
    import tomllib

    from geoseg.train.fit import fit

    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    cfg["train"].update(epochs=1, steps_per_epoch=1)
    fit(cfg, experiment / "unet")
    cfg["architecture"]["name"] = "scinet"
    cfg["train"]["init_model"] = str(experiment / "unet" / "last.pt")
    with pytest.raises(ValueError, match="does not match the architecture"):
        fit(cfg, experiment / "scinet")
    cfg["train"]["init_encoder"] = "x"
    with pytest.raises(ValueError, match="not both"):
        fit(cfg, experiment / "both")


def test_a_missing_checkpoint_to_start_from_is_a_one_line_cli_error(experiment):
    exp = experiment / "exp.toml"
    exp.write_text(exp.read_text().replace("seed = 0", f'seed = 0\ninit_model = "{experiment / "nope" / "last.pt"}"'))
    r = CliRunner().invoke(cli, ["train", str(exp), "--out", str(experiment / "run")])
    assert r.exit_code == 2 and "not found" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("what", ["card", "export"])
def test_a_bad_card_field_or_export_folder_stops_the_run_before_it_trains(experiment, what):
    card = experiment / "card.json"
    card.write_text(json.dumps({"gsd_m": 0.3, "tile_size": 100} if what == "card" else {"gsd_m": 0.3}))
    (experiment / "afile").write_text("")
    r = CliRunner().invoke(cli, ["train", str(experiment / "exp.toml"), "--out", str(experiment / "run"),
                                 "--card", str(card), "--export", str(experiment / ("m" if what == "card" else "afile"))])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert ("tile_size must be a multiple of 32" if what == "card" else "is a file, not a folder") in r.output
    assert not (experiment / "run").exists(), "nothing was trained"


def test_the_exported_card_runs_tiles_of_the_training_chip_size(experiment):
    import tomllib

    from geoseg.models.registry import get_card
    from geoseg.train.export import export
    from geoseg.train.fit import fit

    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    cfg["train"].update(epochs=1, steps_per_epoch=1, chip_size=96)
    fit(cfg, experiment / "run")
    card = get_card(str(export(experiment / "run" / "last.pt", experiment / "m", {"gsd_m": 0.3, "gsd_valid_m": [0.1, 0.6], "threshold": 0.5})))
    assert (card.tile_size, card.overlap) == (96, 24)
    card = get_card(str(export(experiment / "run" / "last.pt", experiment / "n", {"gsd_m": 0.3, "gsd_valid_m": [0.1, 0.6], "threshold": 0.5, "tile_size": 128, "overlap": 32})))
    assert (card.tile_size, card.overlap) == (128, 32), "a card template may still set its own"


def test_an_export_without_card_fields_loads_and_a_fine_tune_inherits_its_parents_settings(experiment):
    """`geoseg train --export` alone writes a card the engine can load; a fine-tune keeps the threshold, border
    cut and legal fields of the card it started from, and `--card` fields still win."""
    from geoseg.models.registry import get_card

    exp = experiment / "exp.toml"
    exp.write_text(exp.read_text().replace("epochs = 3", "epochs = 1").replace("steps_per_epoch = 10", "steps_per_epoch = 1"))
    r = CliRunner().invoke(cli, ["train", str(exp), "--out", str(experiment / "p"), "--export", str(experiment / "m1")])
    assert r.exit_code == 0, r.output
    first = get_card(str(experiment / "m1" / "tiny.json"))
    first.verify_weights()
    assert first.gsd_valid_m == (0.2, 0.4) and abs(first.gsd_m - (0.2 * 0.4) ** 0.5) < 1e-3 and first.threshold == 0.5
    assert "card_defaults_from" not in first.raw, "started from random weights: nothing inherited"
    assert first.raw["train_command"] == f"geoseg train {exp} --out {experiment / 'p'} --export {experiment / 'm1'}"
    assert first.raw["train_cwd"] == os.getcwd()
    assert "no license or attribution" in r.stderr, "a card without legal fields is exported with a warning"

    parent = json.loads((experiment / "m1" / "tiny.json").read_text())
    parent.update(threshold=0.7, border_cut=0.1, gsd_m=0.3, license="L-1", attribution="A-1")
    (experiment / "m1" / "tiny.json").write_text(json.dumps(parent))
    ft = exp.read_text().replace('name = "tiny"', 'name = "tiny-ft"')
    (experiment / "ft.toml").write_text(ft.replace("seed = 0", f'seed = 0\ninit_model = "{experiment / "m1" / "tiny.json"}"'))
    (experiment / "extra.json").write_text(json.dumps({"license": "mine"}))
    r = CliRunner().invoke(cli, ["train", str(experiment / "ft.toml"), "--out", str(experiment / "f"),
                                 "--export", str(experiment / "m2"), "--card", str(experiment / "extra.json")])
    assert r.exit_code == 0, r.output
    child = get_card(str(experiment / "m2" / "tiny-ft.json"))
    assert (child.threshold, child.raw["border_cut"], child.gsd_m) == (0.7, 0.1, 0.3)
    assert child.raw["attribution"] == "A-1" and child.raw["license"] == "mine"
    assert child.gsd_valid_m == (0.2, 0.4) and child.raw["card_defaults_from"].startswith("tiny: ")
    assert "no license or attribution" not in r.stderr and "--card" in child.raw["train_command"]
    (experiment / "m1" / "tiny.json").unlink()  # the parent is gone (exported elsewhere): a loadable card, and a warning
    from geoseg.train.export import export

    orphan = get_card(str(export(experiment / "f" / "last.pt", experiment / "m3")))
    assert orphan.threshold == 0.5 and "card_defaults_from" not in orphan.raw


def test_an_int8_export_is_smaller_loads_and_predicts_like_the_fp16_one(experiment):
    import subprocess
    import sys

    import tomllib

    from geoseg.engine.predictor import Predictor
    from geoseg.models.loading import load_module
    from geoseg.models.registry import get_card
    from geoseg.train.export import export
    from geoseg.train.fit import fit

    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    cfg["train"].update(epochs=1, steps_per_epoch=2)
    fit(cfg, experiment / "q")
    half = get_card(str(export(experiment / "q" / "last.pt", experiment / "fp16")))
    subprocess.run([sys.executable, "-m", "geoseg.train.export", str(experiment / "q" / "last.pt"), str(experiment / "int8"), "--int8"],
                   check=True, capture_output=True)
    q = get_card(str(experiment / "int8" / "tiny.json"))
    assert (half.raw["weights_encoding"], q.raw["weights_encoding"]) == ("fp16", "int8")
    assert q.weights_path.stat().st_size < 0.6 * half.weights_path.stat().st_size
    assert sorted(p.name for p in (experiment / "int8").iterdir()) == ["tiny.json", "tiny.safetensors"], "no temp files left"
    assert q.weights_path.stat().st_mode & 0o044 == 0o044, "readable by others, like any installed model"
    tiles = np.random.default_rng(1).integers(0, 255, size=(2, 3, 64, 64), dtype=np.uint8)
    a, b = (Predictor(load_module(c), c, device="cpu", precision="fp32", batch_size=2)(tiles) for c in (half, q))
    assert np.abs(a - b).max() < 0.02, np.abs(a - b).max()


def _train_cli(experiment, labels):
    exp = experiment / "exp.toml"
    text = exp.read_text().replace(str(experiment / "labels.geojson"), str(labels), 1).replace("epochs = 3", "epochs = 1")
    exp.write_text(text.replace("steps_per_epoch = 10", "steps_per_epoch = 1"))
    return CliRunner().invoke(cli, ["train", str(exp), "--out", str(experiment / "run")])


@pytest.mark.parametrize("ext", [".gpkg", ".parquet"])
def test_labels_in_gpkg_or_parquet_in_another_crs_rasterise_like_geojson(experiment, ext):
    from geoseg.train.regions import load_region

    other = experiment / f"labels{ext}"
    gdf = gpd.read_file(experiment / "labels.geojson").to_crs(3857)
    gdf.to_parquet(other) if ext == ".parquet" else gdf.to_file(other)
    ref = load_region(str(experiment / "img.tif"), str(experiment / "labels.geojson"), 0.3)
    got = load_region(str(experiment / "img.tif"), str(other), 0.3)
    assert ref.has_buildings and (got.label > 0).sum() > 1000
    assert ((got.label > 0) != (ref.label > 0)).mean() < 0.002  # the same buildings, up to edge pixels
    assert _train_cli(experiment, other).exit_code == 0


@pytest.mark.parametrize("content,needle", [
    (None, "labels not found"),
    ('{"type": "Feature', "cannot be read as vector data"),
    (('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, '
     '"geometry": {"type": "Point", "coordinates": [3.0, 45.1]}}]}'), "holds no polygons (1 Point features)"),
])
def test_missing_or_corrupt_labels_are_a_one_line_cli_error(experiment, content, needle):
    labels = experiment / "broken.geojson"
    if content is not None:
        labels.write_text(content)
    r = _train_cli(experiment, labels)
    assert r.exit_code == 2 and needle in r.output and "Traceback" not in r.output
    assert not (experiment / "run" / "last.pt").exists()


def test_labels_that_miss_the_raster_warn_and_none_at_all_is_refused(experiment):
    from geoseg.errors import LabelWarning
    from geoseg.train.regions import load_region
    from geoseg.train.tiles import TiledRegion

    far = experiment / "far.geojson"
    gpd.read_file(experiment / "labels.geojson").translate(xoff=1.0).to_file(far)  # 1 degree east
    with pytest.warns(LabelWarning, match="lies on"):
        assert not load_region(str(experiment / "img.tif"), str(far), 0.3).has_buildings
    with pytest.warns(LabelWarning, match="lies on"):
        assert not TiledRegion(str(experiment / "img.tif"), str(far), 0.3, 128).has_buildings
    assert TiledRegion(str(experiment / "img.tif"), str(experiment / "labels.geojson"), 0.3, 128).has_buildings
    r = _train_cli(experiment, far)
    assert r.exit_code == 2 and "no label polygon lies on any training raster" in r.output
    assert "warning: no polygon of" in r.output and "Traceback" not in r.output


def test_a_training_raster_without_imagery_is_a_one_line_error(experiment):
    import rasterio

    with rasterio.open(experiment / "img.tif", "r+") as ds:
        ds.nodata = 0
        ds.write(np.zeros((3, ds.height, ds.width), np.uint8))
    r = _train_cli(experiment, experiment / "labels.geojson")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "nodata or masked" in r.output and r.output.count("\n") <= 3, r.output
    assert not (experiment / "run").exists(), "a run stopped by bad data leaves no empty run folder"


def test_a_run_folder_that_is_a_file_is_a_one_line_error(experiment):
    (experiment / "run").write_text("notes")
    r = _train_cli(experiment, experiment / "labels.geojson")
    assert r.exit_code == 2 and "is a file, not a folder" in r.output and "train regions" not in r.output
    assert (experiment / "run").read_text() == "notes"


def test_resuming_a_run_with_another_architecture_is_a_one_line_error(experiment):
    assert _train_cli(experiment, experiment / "labels.geojson").exit_code == 0
    exp = experiment / "exp.toml"
    exp.write_text(exp.read_text().replace("classes = 2", "classes = 3"))
    r = CliRunner().invoke(cli, ["train", str(exp), "--out", str(experiment / "run")])
    assert r.exit_code == 2 and "is a run of another architecture" in r.output and "Traceback" not in r.output
    assert "classes=2" in r.output and "classes=3" in r.output


def _epoch_losses(run_dir):
    return [json.loads(line)["loss"] for line in (run_dir / "log.jsonl").read_text().splitlines()]


def test_a_run_stopped_inside_an_epoch_resumes_at_that_step_and_matches_an_uninterrupted_run(experiment):
    """Checkpoints inside an epoch: a rerun starts at the next step, with the same model, optimiser, schedule and
    chips (workers draw per-epoch streams, so the comparison is exact)."""
    import tomllib
    import torch

    from geoseg.train.fit import fit

    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    cfg["train"].update(epochs=2, steps_per_epoch=3, workers=2)
    cfg["data"]["val"] = []
    fit(cfg, experiment / "a")
    fit(cfg, experiment / "b", stop_after_steps=4)  # epoch 0, then one step of epoch 1
    ck = torch.load(experiment / "b" / "last.pt", weights_only=False)
    assert ck["epoch"] == 0 and ck["partial"]["epoch"] == 1 and ck["partial"]["step"] == 1
    assert len(_epoch_losses(experiment / "b")) == 1
    from geoseg.train.export import export

    card = json.loads(export(experiment / "b" / "last.pt", experiment / "m").read_text())
    assert card["training"]["epoch"] == 0 and card["training"]["unfinished_epoch"] == {"epoch": 1, "step": 1}
    fit(cfg, experiment / "b")
    assert _epoch_losses(experiment / "b") == _epoch_losses(experiment / "a")
    fit(cfg, experiment / "c", stop_after_steps=3)  # runs out exactly at the end of an epoch
    assert len(_epoch_losses(experiment / "c")) == 1 and "partial" not in torch.load(experiment / "c" / "last.pt", weights_only=False)
    assert "partial" not in torch.load(experiment / "b" / "last.pt", weights_only=False)


def test_an_interrupt_inside_an_epoch_keeps_the_steps_taken(experiment, monkeypatch):
    """Ctrl-C (or SIGTERM through the CLI) during step 3 of an epoch: last.pt holds steps 1-2 and a rerun goes on
    from there to the end."""
    import tomllib
    import torch

    from geoseg.train import fit as fit_module

    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    cfg["train"].update(epochs=1, steps_per_epoch=4)
    cfg["data"]["val"] = []
    real, calls = fit_module.train_step, []

    def interrupted_on_the_third(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(fit_module, "train_step", interrupted_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        fit_module.fit(cfg, experiment / "run")
    ck = torch.load(experiment / "run" / "last.pt", weights_only=False)
    assert ck["epoch"] == -1 and ck["partial"]["step"] == 2 and len(ck["partial"]["losses"]) == 2
    resumed = []
    monkeypatch.setattr(fit_module, "train_step", lambda *args: resumed.append(1) or real(*args))
    fit_module.fit(cfg, experiment / "run")
    assert len(_epoch_losses(experiment / "run")) == 1
    assert len(resumed) == 2, "steps 3 and 4 only: the two steps kept were not taken again"


def test_accumulated_batches_take_the_step_of_one_batch_of_their_total_size():
    """train.accumulate: gradients of two half batches, averaged, give the parameters one full batch gives."""
    import torch

    from geoseg.train.fit import train_step

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 16, 16, generator=gen)
    y = (torch.rand(4, 2, 16, 16, generator=gen) > 0.7).float()
    v = torch.ones(4, 1, 16, 16)
    after = []
    for batches in ((x, y, v), [(x[:2], y[:2], v[:2]), (x[2:], y[2:], v[2:])]):
        torch.manual_seed(1)
        model = torch.nn.Conv2d(3, 2, 3, padding=1)
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        loss = train_step(model, opt, None, batches, [1.0, 0.5], "cpu", None)
        after.append((float(loss), torch.cat([p.detach().flatten() for p in model.parameters()])))
    assert after[0][0] == pytest.approx(after[1][0], rel=1e-5)
    moved = (after[0][1] - torch.cat([p.detach().flatten() for p in _fresh_conv().parameters()])).abs().max()
    assert moved > 1e-3, "the step changed the weights"
    assert torch.allclose(after[0][1], after[1][1], atol=1e-6)


def _fresh_conv():
    import torch

    torch.manual_seed(1)
    return torch.nn.Conv2d(3, 2, 3, padding=1)


def test_freeze_bn_keeps_the_batchnorm_statistics_while_the_weights_learn(experiment):
    import tomllib
    import torch

    from geoseg.train.fit import fit

    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    cfg["train"].update(epochs=1, steps_per_epoch=3)
    cfg["data"]["val"] = []
    fit(cfg, experiment / "init")
    start = torch.load(experiment / "init" / "last.pt", weights_only=False)["model"]
    states = {}
    for freeze in (False, True):
        run = dict(cfg, train=dict(cfg["train"], freeze_bn=freeze, init_model=str(experiment / "init" / "last.pt")))
        fit(run, experiment / f"ft_{freeze}")
        states[freeze] = torch.load(experiment / f"ft_{freeze}" / "last.pt", weights_only=False)["model"]
    stats = [k for k in start if k.endswith(("running_mean", "running_var"))]
    weights = [k for k in start if k.endswith(".weight") and start[k].dim() == 4]
    assert stats and weights
    assert all(torch.equal(states[True][k], start[k]) for k in stats)
    assert not all(torch.equal(states[False][k], start[k]) for k in stats)
    assert not all(torch.equal(states[True][k], start[k]) for k in weights), "the weights still learn"


def test_an_accumulating_run_stopped_inside_an_epoch_resumes_like_an_uninterrupted_one(experiment):
    """With train.accumulate = 2 each step draws two batches; a resumed run must skip both per step it holds."""
    import tomllib

    from geoseg.train.fit import fit

    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    cfg["train"].update(epochs=2, steps_per_epoch=3, workers=2, accumulate=2, batch_size=2)
    cfg["data"]["val"] = []
    fit(cfg, experiment / "a")
    fit(cfg, experiment / "b", stop_after_steps=4)
    fit(cfg, experiment / "b")
    assert _epoch_losses(experiment / "b") == _epoch_losses(experiment / "a")
    cfg["train"]["accumulate"] = 1
    fit(cfg, experiment / "c")
    assert _epoch_losses(experiment / "c") != _epoch_losses(experiment / "a")


def test_training_on_the_lovasz_loss_lowers_it(experiment):
    out = experiment / "run"
    toml = experiment / "exp.toml"
    toml.write_text(toml.read_text().replace('precision = "fp32"', 'precision = "fp32"\nloss = "bce_lovasz"'))
    r = CliRunner().invoke(cli, ["train", str(toml), "--out", str(out)])
    assert r.exit_code == 0, r.output
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < log[0]["loss"]
    import torch

    assert torch.load(out / "last.pt", weights_only=False)["config"]["train"]["loss"] == "bce_lovasz"


def test_a_four_band_model_trains_on_the_bands_its_entries_pick_and_segments_them(experiment):
    """in_channels = 4: four bands are read (an entry's ``bands`` in its order), normalised per band, and the
    exported card runs through the engine on the same four-band raster."""
    import rasterio

    from geoseg.config import SegmentConfig
    from geoseg.engine.segment import segment
    from geoseg.models.registry import get_card

    with rasterio.open(experiment / "img.tif") as ds:
        rgb, t = ds.read(), ds.transform
    noise = np.random.default_rng(1).integers(0, 255, size=rgb.shape[1:], dtype=np.uint8)
    write_raster(experiment / "img4.tif", np.stack([noise, *rgb]), transform=t)  # bands 2-4 hold the scene
    text = (experiment / "exp.toml").read_text().replace(str(experiment / "img.tif"), str(experiment / "img4.tif"))
    text = text.replace("in_channels = 3", "in_channels = 4").replace('labels.geojson" }]', 'labels.geojson", bands = [2, 3, 4, 1] }]')
    text = text.replace("gsd_m = 0.3 }]", "gsd_m = 0.3, bands = [2, 3, 4, 1] }]")
    assert text.count("bands = [2, 3, 4, 1]") == 2
    text += '[normalization]\nmean = [127.5, 127.5, 127.5, 127.5]\nstd = [127.5, 127.5, 127.5, 127.5]\n'
    (experiment / "exp4.toml").write_text(text)
    card = experiment / "card.json"
    card.write_text(json.dumps({"gsd_m": 0.3, "gsd_valid_m": [0.1, 0.6], "tile_size": 64, "overlap": 16, "threshold": 0.5}))
    r = CliRunner().invoke(cli, ["train", str(experiment / "exp4.toml"), "--out", str(experiment / "run4"),
                                 "--export", str(experiment / "m4"), "--card", str(card)])
    assert r.exit_code == 0, r.output
    log = [json.loads(line) for line in (experiment / "run4" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < log[0]["loss"]
    exported = get_card(str(experiment / "m4" / "tiny.json"))
    assert exported.bands == 4 and exported.input["bands"] == ["band_1", "band_2", "band_3", "band_4"]
    assert len(exported.normalization["mean"]) == 4
    res = segment(str(experiment / "img4.tif"), experiment / "o.gpkg", None,
                  SegmentConfig(model=str(experiment / "m4" / "tiny.json"), bands=(2, 3, 4, 1)))
    assert (experiment / "o.gpkg").is_file() and res.plan.n_channels >= 1


def test_an_entrys_bands_are_read_in_its_order(experiment):
    import rasterio

    from geoseg.train.regions import load_region

    with rasterio.open(experiment / "img.tif") as ds:
        rgb, t = ds.read(), ds.transform
    bands = np.stack([rgb[0], rgb[0] // 2, rgb[0] // 4])  # three distinct bands
    write_raster(experiment / "abc.tif", bands, transform=t)
    plain = load_region(str(experiment / "abc.tif"), str(experiment / "labels.geojson"), 0.15)
    picked = load_region(str(experiment / "abc.tif"), str(experiment / "labels.geojson"), 0.15, bands=(3, 2, 1))
    np.testing.assert_array_equal(picked.image, plain.image[::-1])
    two = load_region(str(experiment / "abc.tif"), str(experiment / "labels.geojson"), 0.15, n_bands=2, bands=(3, 1))
    np.testing.assert_array_equal(two.image, plain.image[[2, 0]])


def test_a_second_run_on_the_same_folder_stops_at_once(experiment):
    from geoseg.runlock import run_lock

    with run_lock(experiment / "run" / ".geoseg-lock", "x"):
        r = _train_cli(experiment, experiment / "labels.geojson")
    assert r.exit_code == 2 and "another geoseg run" in r.output and "Traceback" not in r.output, r.output
    assert not (experiment / "run" / "last.pt").exists()
    assert _train_cli(experiment, experiment / "labels.geojson").exit_code == 0
    assert not (experiment / "run" / ".geoseg-lock").exists()


@pytest.mark.parametrize("source", ["tiles", "memory"])
def test_a_glob_of_tiles_trains_with_one_shared_label_file(experiment, source):
    """`raster_glob` in a training entry: one region per tile, each with the labels that touch it."""
    import rasterio

    from geoseg.train.fit import train_regions

    with rasterio.open(experiment / "img.tif") as ds:
        img, t = ds.read(), ds.transform
    (experiment / "tiles").mkdir()
    write_raster(experiment / "tiles" / "a.tif", img[:, :, :200], transform=t)
    write_raster(experiment / "tiles" / "b.tif", img[:, :, 200:], transform=t @ Affine.translation(200, 0))
    dcfg = {"base_gsd_m": 0.15, "train": [{"name": "town", "raster_glob": str(experiment / "tiles" / "*.tif"),
                                           "labels": str(experiment / "labels.geojson")}]}
    tcfg = {"chip_size": 64, "gsd_range": [0.2, 0.4], "source": source}
    regions = train_regions(dcfg, tcfg)
    assert [r.name for r in regions] == ["town/a", "town/b"]
    assert all(r.has_buildings for r in regions)
    if source == "tiles":  # each keeps only the label polygons that touch it
        assert len(regions[0].geoms) < 40 and len(regions[1].geoms) < 40
        assert len(regions[0].geoms) + len(regions[1].geoms) >= 40
    text = (experiment / "exp.toml").read_text()
    text = text.replace(f'train = [{{ raster = "{experiment / "img.tif"}"',
                        f'train = [{{ raster_glob = "{experiment / "tiles" / "*.tif"}"')
    assert "raster_glob" in text
    (experiment / "glob.toml").write_text(text.replace("epochs = 3", "epochs = 2"))
    r = CliRunner().invoke(cli, ["train", str(experiment / "glob.toml"), "--out", str(experiment / "run_glob")])
    assert r.exit_code == 0, r.output
    log = [json.loads(line) for line in (experiment / "run_glob" / "log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and log[-1]["loss"] < log[0]["loss"]


@pytest.mark.parametrize("source", ["tiles", "memory"])
def test_an_aoi_limits_training_and_validation_to_where_the_labels_are_complete(experiment, source):
    """Labels drawn only in the west half, with that half as the aoi: the run trains (loss falls) and its
    validation scores only the west half, so the unlabelled east neither teaches nor scores 'no building'."""
    t = Affine(0.15, 0, 500000, 0, -0.15, 5000000)
    west = box(t.c, t.f - 400 * 0.15, t.c + 200 * 0.15, t.f)
    gpd.GeoDataFrame(geometry=[west], crs=32633).to_crs(4326).to_file(experiment / "aoi.geojson")
    labels = gpd.read_file(experiment / "labels.geojson").to_crs(32633)
    labels[labels.intersects(west)].to_file(experiment / "west_labels.gpkg")
    aoi = experiment / "aoi.geojson"
    text = (experiment / "exp.toml").read_text().replace("labels.geojson", "west_labels.gpkg")
    text = text.replace('west_labels.gpkg" }', f'west_labels.gpkg", aoi = "{aoi}" }}')
    text = text.replace('gsd_m = 0.3 }', f'gsd_m = 0.3, aoi = "{aoi}" }}').replace("epochs = 3", "epochs = 2")
    text = text.replace('seed = 0', f'seed = 0\nsource = "{source}"')
    assert text.count("aoi =") == 2
    (experiment / "aoi.toml").write_text(text)
    r = CliRunner().invoke(cli, ["train", str(experiment / "aoi.toml"), "--out", str(experiment / "run_aoi")])
    assert r.exit_code == 0, r.output
    log = [json.loads(line) for line in (experiment / "run_aoi" / "log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and log[-1]["loss"] < log[0]["loss"]
    import tomllib

    from geoseg.train.validation import val_sets

    val = val_sets(tomllib.loads(text)["data"]["val"], 64)
    full = val_sets(tomllib.loads((experiment / "exp.toml").read_text())["data"]["val"], 64)
    n_val, n_full = (sum(int(c[2].sum()) for chips in v.values() for c in chips) for v in (val, full))
    assert 0 < n_val <= n_full / 2, "validation chips only where the aoi is"


def test_training_reports_each_step_as_json_lines(experiment):
    exp = experiment / "exp.toml"
    exp.write_text(exp.read_text().replace("epochs = 3", "epochs = 2").replace("steps_per_epoch = 10", "steps_per_epoch = 4"))
    r = CliRunner().invoke(cli, ["train", str(exp), "--out", str(experiment / "run"), "--progress", "json"])
    assert r.exit_code == 0, r.output
    lines = r.stderr.splitlines()
    assert lines and all(line.startswith('{"stage"') for line in lines), "with --progress json stderr is only JSON"
    recs = [json.loads(line) for line in lines]
    steps = [(x["stage"], x["done"], x["total"]) for x in recs if x["stage"].startswith("epoch")]
    assert steps == [(f"epoch {e}/2", d, 4) for e in (1, 2) for d in range(5)]
    assert recs[-1]["stage"] == "done" and os.path.isfile(recs[-1]["best"])


def test_a_reporter_that_cancels_stops_training_and_keeps_the_steps_taken(experiment):
    """The QGIS feedback's cancel (or any Progress): the epoch stops before its next step, last.pt keeps the rest."""
    import tomllib
    import torch

    from geoseg.errors import Cancelled
    from geoseg.train.fit import fit

    class CancelAfter:
        def __init__(self, n):
            self.n, self.seen = n, []

        def update(self, done, total, stage):
            self.seen.append((stage, done))

        def cancelled(self):
            return len(self.seen) > self.n

    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    cfg["train"].update(epochs=1, steps_per_epoch=6)
    cfg["data"]["val"] = []
    reporter = CancelAfter(3)  # updates at 0, 1, 2, 3 done: cancelled before the fourth step
    with pytest.raises(Cancelled, match="rerun the same command"):
        fit(cfg, experiment / "run", show_progress=reporter)
    ck = torch.load(experiment / "run" / "last.pt", weights_only=False)
    assert ck["partial"]["step"] == 3 and reporter.seen[-1] == ("epoch 1/1", 3)
    assert not (experiment / "run" / ".geoseg-lock").exists()


@pytest.mark.parametrize("total", [1, 2, 9, 10, 11, 20, 37])
def test_the_one_cycle_schedule_warms_up_then_anneals_for_any_number_of_steps(total):
    """10 steps once divided by zero in PyTorch's OneCycleLR (a warm-up ending at step 0), 1 step trained at lr 0."""
    import torch

    from geoseg.train.fit import one_cycle

    opt = torch.optim.AdamW(torch.nn.Linear(1, 1).parameters(), lr=1e-3)
    sched = one_cycle(opt, 1e-3, total)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(total):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert max(lrs) <= 1e-3 * (1 + 1e-9) and lrs[0] < max(lrs) / 10 and min(lrs[1:]) > 0
    if total >= 20:
        assert lrs[-1] < max(lrs) / 100, "a whole cycle anneals to (almost) zero"


def test_a_run_of_exactly_ten_steps_trains(experiment):
    exp = experiment / "exp.toml"
    exp.write_text(exp.read_text().replace("epochs = 3", "epochs = 1"))  # 1 x 10 steps
    r = CliRunner().invoke(cli, ["train", str(exp), "--out", str(experiment / "run")])
    assert r.exit_code == 0, r.output
    assert json.loads((experiment / "run" / "log.jsonl").read_text())["epoch"] == 0


def test_bf16_autocast_on_the_cpu_trains_and_lowers_the_loss(experiment):
    """The documented CPU path: bf16 autocast (emulated where the CPU lacks native bf16), no gradient scaler."""
    import tomllib
    import torch

    from geoseg.train.fit import amp, fit

    assert amp("cpu", "bf16") == (torch.bfloat16, None) and amp("cpu", "fp32") == (None, None)
    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    cfg["train"]["precision"] = "bf16"
    fit(cfg, experiment / "run")
    log = [json.loads(line) for line in (experiment / "run" / "log.jsonl").read_text().splitlines()]
    assert len(log) == 3 and log[-1]["loss"] < log[0]["loss"] and 0 <= log[-1]["iou"] <= 1


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_mixed_precision_on_cuda_lowers_the_loss(experiment, precision):
    """fp16 gets a gradient scaler, bf16 none; both train (runs where PyTorch sees a CUDA GPU)."""
    import tomllib
    import torch

    from geoseg.train.fit import amp, fit

    dtype, scaler = amp("cuda", precision)
    assert (dtype, scaler is not None) == ((torch.float16, True) if precision == "fp16" else (torch.bfloat16, False))
    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    cfg["train"].update(precision=precision, device="cuda")
    fit(cfg, experiment / "run")
    log = [json.loads(line) for line in (experiment / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < log[0]["loss"]


def test_deterministic_kernels_repeat_a_run_and_restore_the_process_settings(experiment):
    import tomllib
    import torch

    from geoseg.train.fit import fit

    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    cfg["train"].update(epochs=1, steps_per_epoch=3, deterministic=True)
    losses = []
    for run_dir in ("a", "b"):
        fit(cfg, experiment / run_dir)
        losses.append(json.loads((experiment / run_dir / "log.jsonl").read_text())["loss"])
    assert losses[0] == losses[1]
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize("arch, needle", [
    ({"name": "scinet", "encoder": "resnet181"}, "did you mean resnet18"),
    ({"name": "scinet", "encoder": "vgg11"}, "cannot be dilated"),
    ({"name": "unet", "encoder": "resnet181"}, "did you mean resnet18"),
])
def test_a_bad_encoder_is_a_one_line_cli_error_before_the_data_loads(experiment, arch, needle):
    exp = experiment / "exp.toml"
    text = exp.read_text().replace('name = "unet"', f'name = "{arch["name"]}"')
    exp.write_text(text.replace('encoder = "resnet18"', f'encoder = "{arch["encoder"]}"'))
    r = CliRunner().invoke(cli, ["train", str(exp), "--out", str(experiment / "run")])
    assert r.exit_code == 2 and needle in r.output and "Traceback" not in r.output
    assert "train regions" not in r.output, "the data was loaded before the architecture was checked"
    assert len([line for line in r.output.splitlines() if line.strip()]) == 1


def _cfg(experiment, **train):
    import tomllib

    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    cfg["train"].update(train)
    return cfg


def test_without_validation_best_pt_is_the_lowest_loss_epoch_and_exports(experiment):
    """No data.val (a laptop fine-tune on one labelled patch): the best score started at -1.0 and a loss above 1
    never beat it, so best.pt was never written and --export failed after training."""
    import torch

    from geoseg.train.fit import fit

    cfg = _cfg(experiment, epochs=2, steps_per_epoch=3)
    cfg["data"]["val"] = []
    best = fit(cfg, experiment / "run")
    assert best.is_file()
    losses = _epoch_losses(experiment / "run")
    assert losses[0] > 1.0, "the case that failed: every epoch's loss is above 1"
    assert torch.load(best, weights_only=False)["epoch"] == int(np.argmin(losses))


def test_a_validation_set_without_chips_warns_and_none_at_all_is_refused(experiment):
    from geoseg.errors import ConfigError, LabelWarning
    from geoseg.train.validation import val_sets

    entry = {"raster": str(experiment / "img.tif"), "labels": str(experiment / "labels.geojson")}
    with pytest.warns(LabelWarning, match=r"validation set tiny@4 gives no chip"):
        sets = val_sets([{**entry, "name": "tiny", "gsd_m": [0.3, 4.0]}], 64)  # 400 px at 0.15 m: 15 px at 4 m
    assert list(sets) == ["tiny@0.3"]
    with pytest.raises(ConfigError, match=r"data.val gives no validation chip \(tiny@4\)"):
        val_sets([{**entry, "name": "tiny", "gsd_m": 4.0}], 64)


def test_an_interrupt_during_validation_keeps_the_epochs_steps(experiment, monkeypatch):
    """Ctrl-C while validating: nothing was kept since the last checkpoint (in the first epoch, the run folder was
    removed); now last.pt holds all the epoch's steps and a rerun validates them without taking them again."""
    import torch

    from geoseg.train import fit as fit_module

    cfg = _cfg(experiment, epochs=1, steps_per_epoch=3)
    real_validate, real_step = fit_module.validate, fit_module.train_step

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(fit_module, "validate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fit_module.fit(cfg, experiment / "run")
    ck = torch.load(experiment / "run" / "last.pt", weights_only=False)
    assert ck["partial"]["step"] == 3 and len(ck["partial"]["losses"]) == 3
    steps = []
    monkeypatch.setattr(fit_module, "validate", real_validate)
    monkeypatch.setattr(fit_module, "train_step", lambda *args: steps.append(1) or real_step(*args))
    fit_module.fit(cfg, experiment / "run")
    log = [json.loads(x) for x in (experiment / "run" / "log.jsonl").read_text().splitlines()]
    assert steps == [] and len(log) == 1 and "iou" in log[0]
    assert log[0]["loss"] == pytest.approx(float(np.mean(ck["partial"]["losses"])))


def test_an_in_process_run_resumed_between_epochs_matches_an_uninterrupted_one(experiment):
    """workers = 0 (the default): the sampler was reseeded on resume but not in an uninterrupted run, so epoch 2
    drew other chips (loss 1.707 against 1.824 in the audit); now every epoch draws from its own seed."""
    from geoseg.train.fit import fit

    cfg = _cfg(experiment, epochs=2, steps_per_epoch=3)
    cfg["data"]["val"] = []
    fit(cfg, experiment / "a")
    fit(cfg, experiment / "b", stop_after=1)
    fit(cfg, experiment / "b")
    assert _epoch_losses(experiment / "b") == _epoch_losses(experiment / "a")


@pytest.mark.parametrize("change, key", [
    ({"lr": 1e-5}, "train.lr"), ({"chip_size": 96}, "train.chip_size"), ({"gsd_range": [0.3, 0.6]}, "train.gsd_range"),
])
def test_resuming_with_a_changed_training_config_is_refused_but_a_longer_schedule_is_not(experiment, change, key):
    from geoseg.errors import ConfigError
    from geoseg.train.fit import fit

    cfg = _cfg(experiment, epochs=1, steps_per_epoch=2)
    cfg["data"]["val"] = []
    fit(cfg, experiment / "run")
    with pytest.raises(ConfigError, match=rf"was started with another config \({re.escape(key)} changed\)"):
        fit(_cfg(experiment, epochs=1, steps_per_epoch=2, **change) | {"data": cfg["data"]}, experiment / "run")
    fit(_cfg(experiment, epochs=2, steps_per_epoch=2, workers=0) | {"data": cfg["data"]}, experiment / "run")
    assert len(_epoch_losses(experiment / "run")) == 2


def test_an_export_with_only_a_tile_size_loads_and_never_replaces_another_model(experiment):
    """--card {"tile_size": 32} kept the overlap of a quarter of the 64 px chips (16, half the tile): a card that
    would not load. Exporting into a folder that holds another model of the same name replaced it silently."""
    from geoseg.errors import ConfigError
    from geoseg.models.registry import get_card
    from geoseg.train.export import export
    from geoseg.train.fit import fit

    cfg = _cfg(experiment, epochs=1, steps_per_epoch=2)
    cfg["data"]["val"] = []
    fit(cfg, experiment / "run")
    card = export(experiment / "run" / "last.pt", experiment / "m", {"tile_size": 32})
    assert (get_card(str(card)).tile_size, get_card(str(card)).overlap) == (32, 8)
    export(experiment / "run" / "last.pt", experiment / "m")  # the same run again: fine
    other = _cfg(experiment, epochs=1, steps_per_epoch=2, lr=1e-4)
    other["data"]["val"] = []
    fit(other, experiment / "run2")
    with pytest.raises(ConfigError, match=r"tiny\.json is another model named 'tiny'"):
        export(experiment / "run2" / "last.pt", experiment / "m")
    with pytest.raises(ConfigError, match=r"card fields: .*threshold"):
        export(experiment / "run2" / "last.pt", experiment / "m2", {"threshold": 5})
    assert not (experiment / "m2").exists(), "nothing written for a card that would not load"


def test_a_resumed_run_does_not_need_the_weights_it_started_from(experiment):
    from geoseg.train.fit import fit

    cfg = _cfg(experiment, epochs=2, steps_per_epoch=2)
    cfg["data"]["val"] = []
    fit(cfg, experiment / "parent", stop_after=1)
    child = _cfg(experiment, epochs=2, steps_per_epoch=2, init_model=str(experiment / "parent" / "last.pt"))
    child["data"]["val"] = []
    fit(child, experiment / "child", stop_after=1)
    (experiment / "parent" / "last.pt").unlink()
    fit(child, experiment / "child")
    assert len(_epoch_losses(experiment / "child")) == 2


def test_a_resumed_run_reading_many_tiles_draws_what_an_uninterrupted_one_draws(experiment):
    """Tiles cached in one epoch steered the next epoch's draws, and a resumed process starts with no cache: on a
    raster of many tiles (no worker processes) its losses differed from an uninterrupted run's."""
    import tomllib

    from geoseg.train.fit import fit

    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    cfg["train"].update(epochs=2, steps_per_epoch=3, tile_size=128, cache_tiles=2, gsd_range=[0.15, 0.25])  # 16 tiles
    cfg["data"]["val"] = []
    fit(cfg, experiment / "a")
    fit(cfg, experiment / "b", stop_after_steps=4)  # epoch 0, then one step of epoch 1
    fit(cfg, experiment / "b")
    assert _epoch_losses(experiment / "b") == _epoch_losses(experiment / "a")


def test_a_single_band_model_trains(experiment):
    """in_channels = 1: cv2 dropped the band axis of a resized chip, which then broadcast to 64 bands."""
    import tomllib

    from geoseg.train.fit import fit

    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    cfg["architecture"]["in_channels"] = 1
    cfg["normalization"] = {"mean": [127.5], "std": [127.5]}
    for entry in cfg["data"]["train"] + cfg["data"]["val"]:
        entry["bands"] = [2]
    cfg["train"].update(epochs=2, steps_per_epoch=4)
    fit(cfg, experiment / "one")
    log = [json.loads(line) for line in (experiment / "one" / "log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and all(np.isfinite(x["loss"]) for x in log) and "iou" in log[-1]


def test_a_resume_with_another_validation_set_chooses_best_pt_afresh(experiment):
    """An IoU of the old set (about 0.5) beat every later epoch's -loss once data.val was dropped: best.pt froze."""
    import tomllib
    import torch

    from geoseg.train.fit import fit

    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    cfg["train"].update(epochs=3, steps_per_epoch=4)
    fit(cfg, experiment / "run", stop_after=1)
    assert torch.load(experiment / "run" / "best.pt", weights_only=False)["epoch"] == 0
    cfg["data"]["val"] = []
    fit(cfg, experiment / "run")
    assert torch.load(experiment / "run" / "best.pt", weights_only=False)["epoch"] >= 1


def test_a_resume_whose_raster_glob_matches_other_files_is_refused(experiment):
    import shutil

    import tomllib

    from geoseg.errors import ConfigError
    from geoseg.train.fit import fit

    (experiment / "g").mkdir()
    shutil.copy(experiment / "img.tif", experiment / "g" / "a.tif")
    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    cfg["data"]["train"] = [{"raster_glob": str(experiment / "g" / "*.tif"), "labels": str(experiment / "labels.geojson")}]
    cfg["data"]["val"] = []
    cfg["train"].update(epochs=2, steps_per_epoch=2)
    fit(cfg, experiment / "run", stop_after=1)
    shutil.copy(experiment / "img.tif", experiment / "g" / "b.tif")
    with pytest.raises(ConfigError, match=r"raster_glob now matches 1 new and misses 0 earlier file\(s\) \(.*b\.tif\)"):
        fit(cfg, experiment / "run")
    (experiment / "g" / "b.tif").unlink()
    fit(cfg, experiment / "run")  # the same files again: it resumes
    assert len(_epoch_losses(experiment / "run")) == 2
    from geoseg.train.export import export

    card = json.loads(export(experiment / "run" / "best.pt", experiment / "m").read_text())
    assert card["training"]["data_files"] == [str(experiment / "g" / "a.tif")]  # the glob's files, not the pattern


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not a whole checkpoint"])
def test_a_truncated_checkpoint_is_a_one_line_cli_error(experiment, content):
    (experiment / "run").mkdir()
    (experiment / "run" / "last.pt").write_bytes(content)
    r = CliRunner().invoke(cli, ["train", str(experiment / "exp.toml"), "--out", str(experiment / "run")])
    assert r.exit_code == 2 and "last.pt is not a readable checkpoint" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_a_kill_between_an_epochs_checkpoint_and_its_log_line_leaves_one_line_per_epoch(experiment):
    """The log line used to be written first: a kill before the checkpoint redid the epoch and logged it twice."""
    import tomllib

    from geoseg.train.fit import fit

    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    cfg["train"].update(epochs=3, steps_per_epoch=2)
    cfg["data"]["val"] = []
    log = experiment / "run" / "log.jsonl"
    fit(cfg, experiment / "run", stop_after=1)
    first = log.read_text()
    log.write_text("")  # killed after the checkpoint, before the line: the checkpoint holds it
    fit(cfg, experiment / "run", stop_after=1)
    assert [json.loads(x)["epoch"] for x in log.read_text().splitlines()] == [0, 1]
    assert log.read_text().startswith(first)
    log.write_text(log.read_text() + log.read_text().splitlines()[-1] + "\n" + '{"epoch": 2, "lo')  # doubled, cut
    fit(cfg, experiment / "run")
    assert [json.loads(x)["epoch"] for x in log.read_text().splitlines()] == [0, 1, 2]


def test_validation_labels_that_miss_their_rasters_are_refused(experiment):
    """Every validation IoU was 0, so best.pt stayed at the first epoch without a word."""
    import tomllib

    from geoseg.errors import ConfigError, LabelWarning
    from geoseg.train.validation import val_sets

    far = gpd.GeoDataFrame(geometry=[box(600000, 6000000, 600010, 6000010)], crs=32633)
    far.to_file(experiment / "far.geojson")
    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    entry = {**cfg["data"]["val"][0], "labels": str(experiment / "far.geojson")}
    with pytest.warns(LabelWarning, match="validation there counts every building found as a false alarm"), \
            pytest.raises(ConfigError, match="data.val's labels hold no building"):
        val_sets([entry], 64)
    sets = val_sets([cfg["data"]["val"][0]], 64)  # the real labels: chips with buildings
    assert sum(len(v) for v in sets.values()) > 0


def test_a_run_saved_before_classes_was_filled_in_resumes_as_the_one_output_model_it_built(experiment):
    """Configs without architecture.classes built one output until 2026-12-02; they now mean two (what fit trained)."""
    import tomllib
    import torch

    from geoseg.errors import ConfigError
    from geoseg.train.fit import fit

    cfg = tomllib.loads((experiment / "exp.toml").read_text())
    cfg["architecture"]["classes"] = 1
    cfg["train"].update(epochs=2, steps_per_epoch=2)
    cfg["data"]["val"] = []
    fit(cfg, experiment / "run", stop_after=1)
    ck = torch.load(experiment / "run" / "last.pt", weights_only=False)
    del ck["config"]["architecture"]["classes"]  # as such a run saved it
    torch.save(ck, experiment / "run" / "last.pt")
    without = {**cfg, "architecture": {k: v for k, v in cfg["architecture"].items() if k != "classes"}}
    with pytest.raises(ConfigError, match="another architecture .*classes=1.* this config asks for .*classes=2"):
        fit(without, experiment / "run")
    fit(cfg, experiment / "run")  # classes = 1 given: it resumes
    assert len(_epoch_losses(experiment / "run")) == 2
