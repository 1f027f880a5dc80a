"""Network construction from a model card's ``architecture`` block (torch imported here only)."""

from __future__ import annotations

from typing import Any

from geoseg.errors import ModelIntegrityError


def build_module(arch: dict[str, Any]):
    """Build an untrained ``torch.nn.Module`` from an architecture description.

    ``arch`` holds ``name`` (an smp architecture such as ``"unet"``), ``encoder``,
    ``in_channels`` and ``classes``, plus optional ``decoder_channels``.
    """
    name = str(arch.get("name", "unet")).lower()
    if name == "pixel-linear":
        return _pixel_linear(arch)
    if name == "scinet":
        from geoseg.models.scinet import SciNet

        kw = {k: arch[k] for k in ("decoder_channels", "aspp_mid", "aspp_out", "rates") if k in arch}
        try:
            return SciNet(arch.get("encoder", "resnet18"), int(arch.get("in_channels", 3)), int(arch.get("classes", 1)), **kw)
        except (KeyError, ValueError) as exc:
            raise ModelIntegrityError(_cannot_build(arch, exc)) from None
    import segmentation_models_pytorch as smp

    kwargs: dict[str, Any] = {
        "encoder_name": arch.get("encoder", "resnet18"),
        "encoder_weights": None,
        "in_channels": int(arch.get("in_channels", 3)),
        "classes": int(arch.get("classes", 1)),
    }
    if "decoder_channels" in arch:
        kwargs["decoder_channels"] = tuple(arch["decoder_channels"])
    try:
        return smp.create_model(name, **kwargs)
    except (KeyError, ValueError) as exc:
        raise ModelIntegrityError(_cannot_build(arch, exc)) from None


def _cannot_build(arch: dict[str, Any], exc: Exception) -> str:
    """One line for an architecture smp refuses: a misspelt encoder gets the nearest names, not smp's list of 100+."""
    import difflib

    from segmentation_models_pytorch.encoders import get_encoder_names

    encoder = str(arch.get("encoder", "resnet18"))
    names = get_encoder_names()
    if encoder not in names and not encoder.startswith("tu-"):  # tu-*: any timm model, not listed
        near = difflib.get_close_matches(encoder, names, n=3) or ["resnet18", "resnet34", "mobilenet_v2"]
        return (f"architecture.encoder {encoder!r} is not an encoder segmentation-models-pytorch knows; did you mean "
                f"{' or '.join(near)}? (all names: segmentation_models_pytorch.encoders.get_encoder_names())")
    if str(arch.get("name", "")).lower() == "scinet":
        return (f"Sci-Net runs its encoder at output stride 16 (last stage dilated) and {encoder!r} cannot be dilated "
                f"({str(exc).strip()}); choose a resnet, resnext, mobilenet_v2, efficientnet, mit_b* or tu-* encoder")
    return f"architecture {arch!r} cannot be built: {str(exc).strip()}"


def _pixel_linear(arch: dict[str, Any]):
    """A per-pixel linear model (a 1x1 convolution): the reference model for engine tests
    and benchmarks, where the expected output of every pixel is known in closed form."""
    import torch

    return torch.nn.Conv2d(int(arch.get("in_channels", 3)), int(arch.get("classes", 1)), kernel_size=1)
