"""scripts/gpu_pack.py + scripts/train_pair.py: two architectures trained on the same batches, exported as cards."""

import json
import subprocess
import sys
from pathlib import Path

from geoseg.models.registry import get_card
from geoseg.train.export import export
from tests.train.test_fit import experiment  # noqa: F401 (fixture)

SCRIPTS = Path(__file__).parents[2] / "scripts"


def _config(base: Path, name: str, arch: str, chip: int = 64) -> Path:
    text = (base / "exp.toml").read_text().replace('name = "tiny"', f'name = "{name}"', 1)
    text = text.replace('name = "unet"', f'name = "{arch}"', 1).replace("chip_size = 64", f"chip_size = {chip}")
    path = base / f"{name}.toml"
    path.write_text(text)
    return path


def _run(*args):
    return subprocess.run([sys.executable, *map(str, args)], check=False, capture_output=True, text=True, timeout=600)


def test_a_pair_trains_on_the_same_steps_and_each_model_exports_as_a_card(experiment):  # noqa: F811
    a, b = _config(experiment, "pair-unet", "unet"), _config(experiment, "pair-scinet", "scinet")
    b.write_text(b.read_text().replace('precision = "fp32"', 'precision = "fp32"\nfreeze_bn = true'))
    data, out = experiment / "packed", experiment / "pair"
    r = _run(SCRIPTS / "gpu_pack.py", a, b, "--out", data)
    assert r.returncode == 0, r.stderr
    assert {p.name for p in data.iterdir()} == {"regions.npz", "val.npz"}  # no init weights asked for
    r = _run(SCRIPTS / "train_pair.py", a, b, "--data", data, "--out", out, "--steps", 3, "--workers", 1, "--device", "cpu")
    assert r.returncode == 0, r.stderr
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    ends = {rec["model"]: rec for rec in log if rec.get("event") == "end"}
    assert set(ends) == {"pair-unet", "pair-scinet"}
    assert {e["steps"] for e in ends.values()} == {3} and {e["chips"] for e in ends.values()} == {12}
    scored = [rec for rec in log if "iou" in rec]
    assert {rec["step"] for rec in scored} == {3} and all(0 <= rec["iou"] <= 1 for rec in scored)
    for name in ends:
        card = get_card(str(export(out / f"{name}.safetensors", experiment / "models", {"gsd_m": 0.3, "gsd_valid_m": [0.15, 0.6], "threshold": 0.5})))
        card.verify_weights()
        assert card.raw["training"]["step"] == 3 and card.raw["training"]["config"]["name"] == name
        assert card.outputs == ("building", "border")
        assert json.loads((out / f"{name}.last.json").read_text())["step"] == 3
    from safetensors.torch import load_file

    means = {n: [v for k, v in load_file(out / f"{n}.last.safetensors").items() if k.endswith("running_mean")] for n in ends}
    assert all(m.abs().max() == 0 for m in means["pair-scinet"]), "freeze_bn: the fresh statistics never moved"
    assert any(m.abs().max() > 0 for m in means["pair-unet"])


def test_a_pair_with_different_chips_is_refused(experiment):  # noqa: F811
    a, b = _config(experiment, "pair-a", "unet"), _config(experiment, "pair-b", "unet", chip=96)
    r = _run(SCRIPTS / "gpu_pack.py", a, "--out", experiment / "packed")
    assert r.returncode == 0, r.stderr
    r = _run(SCRIPTS / "train_pair.py", a, b, "--data", experiment / "packed", "--out", experiment / "o", "--steps", 1)
    assert r.returncode != 0 and "must match the first config" in r.stderr


def test_a_pack_keeps_each_entry_s_base_gsd_and_chip_span(experiment, monkeypatch):  # noqa: F811
    text = (experiment / "exp.toml").read_text()
    entry = text[text.index("train = [{") + 9:text.index("}]\nval") + 1]
    two = (f"train = [{entry[:-1]}, base_gsd_m = 0.15, chip_gsd_m = [0.2, 0.3] }}, "
           f"{entry[:-1]}, base_gsd_m = 0.3, chip_gsd_m = [0.3, 0.4] }}]")
    (experiment / "zooms.toml").write_text(text.replace(f"train = [{entry}]", two, 1))
    r = _run(SCRIPTS / "gpu_pack.py", experiment / "zooms.toml", "--out", experiment / "packed")
    assert r.returncode == 0, r.stderr
    monkeypatch.syspath_prepend(str(SCRIPTS))
    from train_pair import load_data

    regions = load_data(experiment / "packed")[0]
    assert [(r.gsd_m, r.chip_gsd_m) for r in regions] == [(0.15, (0.2, 0.3)), (0.3, (0.3, 0.4))]
    fine, coarse = regions[0].label.shape, regions[1].label.shape
    assert all(abs(f - 2 * c) <= 2 for f, c in zip(fine, coarse)), (fine, coarse)  # the same ground, half the pixels


def test_int8_final_weights_only_load_and_export(experiment):  # noqa: F811
    """``--encoding int8 --no-best`` (what scripts/gpu_r7.sh asks for, to fit the GPU machine's way back): only the
    final weights, in int8 storage, half the size, and they export and load as a card."""
    from safetensors.torch import load_file

    from geoseg.models.weights import SCALE_SUFFIX

    a = _config(experiment, "pair-int8", "scinet")
    data, out = experiment / "packed", experiment / "pair8"
    assert _run(SCRIPTS / "gpu_pack.py", a, "--out", data).returncode == 0
    r = _run(SCRIPTS / "train_pair.py", a, "--data", data, "--out", out, "--steps", 1, "--workers", 0,
             "--device", "cpu", "--encoding", "int8", "--no-best")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["log.jsonl", "pair-int8.last.json", "pair-int8.last.safetensors"]
    stored = load_file(out / "pair-int8.last.safetensors")
    scaled = [k for k in stored if k.endswith(SCALE_SUFFIX)]
    assert scaled and all(stored[k[: -len(SCALE_SUFFIX)]].dtype.is_floating_point is False for k in scaled)
    card = get_card(str(export(out / "pair-int8.last.safetensors", experiment / "models8",
                               {"gsd_m": 0.3, "gsd_valid_m": [0.15, 0.6], "threshold": 0.5}, encoding="int8")))
    card.verify_weights()
    assert card.raw["training"]["step"] == 1
