"""Export a registered model to ONNX or TorchScript, for runtimes without geoseg (or without Python).

The exported graph takes the *normalised* image, exactly what the model sees inside geoseg:

* input ``image``: float32 ``(N, bands, H, W)``, already normalised with the card's
  ``input.normalization`` (``(pixel - mean) / std`` per band);
* output ``logits``: float32 ``(N, classes, H, W)``, one channel per card output
  (apply a sigmoid for probabilities).

Batch, height and width are dynamic. Keep H and W multiples of 32, as geoseg's tiles are: the
encoders downsample by 32, and the exported graph no longer checks the sides. An ONNX file
carries the card's name, outputs, normalization and the weights' sha256 in its
``metadata_props`` (keys ``geoseg.*``, values JSON); a TorchScript file carries the same as
the extra file ``geoseg.json``. Files are written to a temporary name and renamed, so an output
is whole or absent. torch (and onnx) are imported only when a model is exported.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from geoseg.errors import ConfigError

FORMATS = ("onnx", "torchscript")
SUFFIXES = {"onnx": (".onnx",), "torchscript": (".pt", ".ts", ".torchscript")}  # what other runtimes expect
OPSET = 18  # onnxruntime >= 1.14, TensorRT 8.6+, OpenVINO 2023+ all read it
EXAMPLE_BATCH = 2  # an example batch of 1 would be specialised to a fixed batch of 1


def export_metadata(card) -> dict[str, str]:
    """What an exported file records about its model card (string values, JSON where structured)."""
    from geoseg import __version__

    return {
        "geoseg.name": card.name,
        "geoseg.outputs": json.dumps(list(card.outputs)),
        "geoseg.normalization": json.dumps(card.normalization),
        "geoseg.weights_sha256": card.sha256,
        "geoseg.tile_size": str(card.tile_size),
        "geoseg.version": __version__,
    }


def export_model(card_or_name: str, path, fmt: str = "onnx", tile_size: int | None = None) -> Path:
    """Export the model ``card_or_name`` (a registered name, alias or card path) to ``path``.

    ``fmt`` is ``"onnx"`` (needs ``pip install 'geoseg[onnx]'``) or ``"torchscript"`` (a traced
    module: ``torch.jit.load(path)``; TorchScript is deprecated upstream, prefer ONNX).
    ``tile_size`` is the side of the example input the model is traced with (default: the
    card's tile size); the result accepts other sizes too. Returns ``path`` as a :class:`Path`.
    Raises :class:`~geoseg.errors.ConfigError` for an unknown format or a missing onnx package.
    """
    from geoseg.io.atomic import atomic_output, check_writable_dir
    from geoseg.models.loading import load_module
    from geoseg.models.registry import get_card

    fmt = str(fmt).lower()
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    if Path(path).suffix.lower() not in SUFFIXES[fmt]:
        raise ConfigError(f"{path} does not end in {' or '.join(SUFFIXES[fmt])}, the extension of a {fmt} file; "
                          f"name it so, or pick the format with --format ({', '.join(FORMATS)})")
    if tile_size is not None and (not isinstance(tile_size, int) or tile_size < 32 or tile_size % 32):
        raise ConfigError(f"tile size must be a positive number of pixels (a multiple of 32), got {tile_size!r}")
    if fmt == "onnx":
        _require_onnx()
    path = Path(path)
    check_writable_dir(path)
    card = get_card(str(card_or_name))
    module = load_module(card)
    side = tile_size or card.tile_size

    import torch

    example = torch.zeros(EXAMPLE_BATCH, card.bands, side, side, dtype=torch.float32)
    with atomic_output(path) as tmp, torch.no_grad():
        if fmt == "onnx":
            _export_onnx(module, example, tmp, export_metadata(card))
        else:
            _export_torchscript(module, example, tmp, export_metadata(card))
    return path


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401 - torch.onnx's exporter needs it
    except ImportError:
        raise ConfigError("ONNX export needs the onnx extras: pip install 'geoseg[onnx]'") from None


def _export_onnx(module, example, tmp: Path, metadata: dict[str, str]) -> None:
    import torch

    dynamic = ({0: "batch", 2: "height", 3: "width"},)
    with warnings.catch_warnings():
        _quiet_deprecations()
        program = torch.onnx.export(
            module, (example,), input_names=["image"], output_names=["logits"], dynamic_shapes=dynamic,
            opset_version=OPSET, dynamo=True, verbose=False,
        )
    program.model.metadata_props.update(metadata)
    program.save(str(tmp), external_data=False)  # one self-contained file (our models are far below 2 GB)


def _export_torchscript(module, example, tmp: Path, metadata: dict[str, Any]) -> None:
    import torch

    with warnings.catch_warnings():
        _quiet_deprecations()  # torch.jit is deprecated upstream; the user asked for it
        traced = torch.jit.trace(module, example)
        torch.jit.save(traced, str(tmp), _extra_files={"geoseg.json": json.dumps(metadata)})


def _quiet_deprecations() -> None:
    """Inside ``warnings.catch_warnings()``: hide torch's deprecation notices, keep real warnings (e.g. TracerWarning)."""
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category)
