"""Load a model card's weights (fp16 or int8 storage, see ``weights.py``) into a torch module (verifies the sha256 first)."""

from __future__ import annotations

from geoseg.errors import ModelIntegrityError
from geoseg.models.arch import build_module
from geoseg.models.card import ModelCard
from geoseg.models.weights import decode_state


def load_module(card: ModelCard):
    """An eval-mode float32 ``torch.nn.Module`` with the card's verified weights.

    Weights that hash as the card says but are no safetensors file of tensors (truncated or garbage when the card's
    sha256 was made from them) are a one-line :class:`ModelIntegrityError`, as are weights that do not fit the
    architecture."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    card.verify_weights()
    module = build_module(card.architecture)
    try:
        state = decode_state(load_file(str(card.weights_path)))
    except (SafetensorError, OSError, RuntimeError, ValueError, TypeError, KeyError) as exc:
        lines = str(exc).strip().splitlines()
        first = lines[0] if lines else type(exc).__name__
        raise ModelIntegrityError(f"weights {card.weights_path} of model {card.name!r} cannot be read as safetensors "
                                  f"({first}); the file is truncated or not weights: reinstall or re-export it, "
                                  "then update the card's sha256") from None
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelIntegrityError(f"weights of {card.name!r} do not fit its architecture ({first}); fix the card") from None
    return module.eval()
