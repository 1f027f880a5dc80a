"""Export to ONNX and TorchScript (geoseg.models.export and ``geoseg models export``).

Every architecture of the shared model contract (tests/models/test_contract.py's ARCHS) is saved
as a model card with random weights, found through GEOSEG_MODEL_PATH, exported, and run at two
input sizes the export never saw; the outputs must match torch's. ONNX tests skip without the
``onnx`` extra (pip install 'geoseg[onnx]').
"""

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from geoseg.cli.main import cli
from geoseg.errors import ConfigError
from geoseg.models.arch import build_module
from geoseg.models.card import ModelCard, file_sha256
from geoseg.models.export import export_model
from geoseg.models.loading import load_module
from tests.models.test_contract import ARCHS

SIZES = [(2, 64, 64), (2, 96, 160)]  # (batch, H, W); the export traces a 64x64 example


def randomize(module: torch.nn.Module) -> torch.nn.Module:
    """Random weights whose logits stay O(1) through a deep net (torch's default init shrinks them
    towards 0, which would let any export 'match' within an absolute tolerance), and non-trivial
    BatchNorm statistics (exporters fold them into the convolutions)."""
    g = torch.Generator().manual_seed(0)
    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d):
            fan_in = m.weight[0].numel()
            m.weight.data = torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = 0.5 + torch.rand(n, generator=g)
            m.bias.data = 0.1 * torch.randn(n, generator=g)
            m.running_mean = 0.1 * torch.randn(n, generator=g)
            m.running_var = 0.5 + torch.rand(n, generator=g)
    return module.eval()


def save_card(folder: Path, name: str, arch: dict) -> Path:
    """A model card + safetensors (float32) for ``arch`` with random weights, like a shipped model's."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{name}.safetensors"
    module = randomize(build_module(arch))
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(weights))
    card = {
        "name": name, "architecture": arch, "outputs": ["building", "border"][: arch["classes"]],
        "weights": weights.name, "sha256": file_sha256(weights),
        "input": {"bands": ["red", "green", "blue"], "normalization": {"mean": [120.0, 121.0, 122.0], "std": [60.0, 61.0, 62.0]}},
        "gsd_m": 0.3, "gsd_valid_m": [0.2, 0.5], "tile_size": 64, "overlap": 16, "threshold": 0.5,
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(card))
    return path


def assert_close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape and got.dtype == np.float32
    scale = float(np.abs(want).max())
    assert scale > 0.1, f"degenerate reference logits (max |logit| {scale}); the comparison would prove nothing"
    err = float(np.abs(got - want).max())
    assert err <= 1e-4 * scale + 1e-5, f"max abs error {err} for max |logit| {scale}"


@pytest.fixture(scope="module", params=sorted(ARCHS))
def card(request, tmp_path_factory) -> ModelCard:
    folder = tmp_path_factory.mktemp(f"cards-{request.param}")
    return ModelCard.load(save_card(folder, f"export-{request.param}", ARCHS[request.param]))


@pytest.fixture(scope="module")
def reference(card):
    """What geoseg itself runs: the card's verified weights in eval mode."""
    return load_module(card)


@pytest.fixture(scope="module")
def onnx_file(card, tmp_path_factory) -> Path:
    pytest.importorskip("onnxruntime")
    with pytest.MonkeyPatch.context() as mp:  # export by name: the registry finds the card on GEOSEG_MODEL_PATH
        mp.setenv("GEOSEG_MODEL_PATH", str(card.path.parent))
        return export_model(card.name, tmp_path_factory.mktemp("onnx") / "model.onnx", tile_size=64)


def ort_session(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def test_onnx_matches_torch_at_two_sizes(onnx_file, reference):
    session = ort_session(onnx_file)
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name) == ("image", "logits")
    assert inp.shape == ["batch", 3, "height", "width"] and out.shape == ["batch", 2, "height", "width"]
    gen = torch.Generator().manual_seed(1)
    for n, h, w in SIZES:
        x = torch.randn(n, 3, h, w, generator=gen)
        with torch.no_grad():
            want = reference(x).numpy()
        assert_close(session.run(["logits"], {"image": x.numpy()})[0], want)


def test_onnx_metadata_describes_the_card(onnx_file, card):
    import onnx

    model = onnx.load(str(onnx_file))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["geoseg.name"] == card.name
    assert json.loads(meta["geoseg.outputs"]) == list(card.outputs) == ["building", "border"]
    assert json.loads(meta["geoseg.normalization"]) == card.normalization
    assert meta["geoseg.weights_sha256"] == card.sha256 == file_sha256(card.weights_path)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert [p.name for p in onnx_file.parent.iterdir()] == ["model.onnx"], "one self-contained file, no temporaries"


def test_torchscript_round_trip(card, reference, tmp_path):
    path = export_model(str(card.path), tmp_path / "model.pt", fmt="torchscript", tile_size=64)
    extra = {"geoseg.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated upstream
        loaded = torch.jit.load(str(path), _extra_files=extra)
    assert json.loads(extra["geoseg.json"])["geoseg.weights_sha256"] == card.sha256
    gen = torch.Generator().manual_seed(2)
    for n, h, w in SIZES:
        x = torch.randn(n, 3, h, w, generator=gen)
        with torch.no_grad():
            assert_close(loaded(x).numpy(), reference(x).numpy())


def test_unknown_format_is_a_config_error(pixel_card, tmp_path):
    with pytest.raises(ConfigError) as err:
        export_model(str(pixel_card), tmp_path / "m.tflite", fmt="tflite")
    assert "\n" not in str(err.value) and "onnx, torchscript" in str(err.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("side", [0, 100, 16])
def test_an_example_side_that_is_not_a_multiple_of_32_is_a_config_error(pixel_card, tmp_path, side):
    with pytest.raises(ConfigError, match="multiple of 32") as err:
        export_model(str(pixel_card), tmp_path / "m.pt", fmt="torchscript", tile_size=side)
    assert "\n" not in str(err.value) and list(tmp_path.iterdir()) == []


def test_missing_onnx_package_says_what_to_install(pixel_card, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # makes `import onnxscript` raise ImportError
    with pytest.raises(ConfigError, match=r"pip install 'geoseg\[onnx\]'"):
        export_model(str(pixel_card), tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


# ---- CLI ---------------------------------------------------------------------------------------


def test_cli_export_writes_a_working_onnx_file(pixel_card, tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "pixel.onnx"
    r = CliRunner().invoke(cli, ["models", "export", str(pixel_card), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert f"wrote {out}" in r.stdout and [p.name for p in tmp_path.iterdir()] == ["pixel.onnx"]
    x = np.random.default_rng(0).normal(size=(2, 3, 32, 96)).astype(np.float32)
    logits = ort_session(out).run(["logits"], {"image": x})[0]
    # the conftest reference model: logit = 8 * mean of the normalised bands
    np.testing.assert_allclose(logits[:, 0], 8.0 * x.mean(axis=1), atol=2e-2)


def test_cli_unknown_format_exits_2_with_one_line(pixel_card, tmp_path):
    r = CliRunner().invoke(cli, ["models", "export", str(pixel_card), "-o", str(tmp_path / "m.x"), "--format", "tflite"])
    assert r.exit_code == 2, r.output
    assert r.stderr.splitlines() == ["geoseg: error: unknown export format 'tflite'; valid formats: onnx, torchscript"]
    assert "Traceback" not in r.output and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, fmt", [("m.xyz", "onnx"), ("m.pt", "onnx"), ("m.onnx", "torchscript")])
def test_a_file_name_that_does_not_fit_the_format_is_refused(pixel_card, tmp_path, name, fmt):
    r = CliRunner().invoke(cli, ["models", "export", str(pixel_card), "-o", str(tmp_path / name), "--format", fmt])
    assert r.exit_code == 2 and "the extension of a" in r.stderr and len(r.stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


# ---- geoseg.train.export: a training checkpoint as weights + card ---------------------------------------------------


def write_checkpoint(path: Path, arch: dict, out_channels: int | None = None, name: str = "ck-test", **train) -> Path:
    """A ``geoseg train`` checkpoint (``last.pt``) of an untrained pixel-linear model: what ``export`` reads. The
    weights have ``out_channels`` outputs (default ``arch["classes"]``), as a run's model would."""
    n = out_channels or arch["classes"]
    model = build_module({**arch, "classes": n})
    cfg = {"name": name, "architecture": arch, "data": {"base_gsd_m": 0.3, "train": []},
           "train": {"chip_size": 64, "gsd_range": [0.2, 0.4], **train}}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "config": cfg, "epoch": 0, "metrics": {}}, path)
    return path


@pytest.mark.parametrize("n", [1, 2, 3])
def test_a_checkpoint_without_classes_exports_the_outputs_its_weights_have(tmp_path, n):
    """The export read a missing architecture.classes as 1 (two outputs trained, one listed), fit and the config
    check as 2. Configs now always carry it; a checkpoint from before that gets the size of its output layer, and
    the card states classes, so the card loads and builds the model the weights fit."""
    from geoseg.train.export import export

    ck = write_checkpoint(tmp_path / "run" / "last.pt", {"name": "pixel-linear", "in_channels": 3}, out_channels=n)
    with pytest.warns(UserWarning, match="no license or attribution"):
        card = ModelCard.load(export(ck, tmp_path / "m"))
    assert card.architecture["classes"] == n and card.outputs == ("building", "border", "gap")[:n]
    assert load_module(card)(torch.zeros(1, 3, 32, 32)).shape == (1, n, 32, 32)
    assert "classes" not in card.raw["training"]["config"]["architecture"], "the training config is kept as it was"


def test_a_checkpoint_with_classes_exports_them(tmp_path):
    from geoseg.train.export import export

    ck = write_checkpoint(tmp_path / "last.pt", {"name": "pixel-linear", "in_channels": 3, "classes": 2})
    card = ModelCard.load(export(ck, tmp_path / "m", {"license": "L", "attribution": "A"}))
    assert card.outputs == ("building", "border") and card.architecture["classes"] == 2


@pytest.mark.parametrize("extra,needle", [
    ({"licence": "CC"}, "card fields: licence is not a model card field (did you mean license?); fix or remove it"),
    ({"gsd_m": 5.0}, "card fields: gsd_m 5 lies outside gsd_valid_m [0.2, 0.4]"),  # the training range, by default
    ({"gsd_valid_m": [0.5, 1.0]}, "gsd_m 0.2828 lies outside gsd_valid_m [0.5, 1]"),  # the default gsd_m: outside
])
def test_card_fields_the_card_cannot_hold_are_refused_before_anything_is_written(tmp_path, extra, needle):
    from geoseg.train.export import card_fields, export

    ck = write_checkpoint(tmp_path / "last.pt", {"name": "pixel-linear", "in_channels": 3, "classes": 1})
    for call in (lambda: export(ck, tmp_path / "m", extra), lambda: card_fields(torch.load(ck)["config"], extra)):
        with pytest.raises(ConfigError) as err:
            call()
        assert needle in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "m").exists()


def test_export_warnings_are_warnings_the_cli_prints_as_its_own(tmp_path):
    """They were printed as `warning: ...`; under the geoseg command (and python -m geoseg.train.export) they are
    `geoseg: warning: ...` like every other warning, and a library caller can filter or record them."""
    from geoseg.train.export import export

    ck = write_checkpoint(tmp_path / "last.pt", {"name": "pixel-linear", "in_channels": 3, "classes": 1},
                          init_model=str(tmp_path / "gone.json"))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        export(ck, tmp_path / "m")
    said = [str(w.message) for w in seen]
    assert any(s.startswith(f"card defaults not inherited from {tmp_path / 'gone.json'}: ") for s in said), said
    assert any(s.startswith("ck-test's card has no license or attribution") for s in said), said
