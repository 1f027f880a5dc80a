"""Load a model card's weights (fp16 or int8 storage, see ``weights.py``) into a torch module (verifies the sha256 first)."""

from __future__ import annotations

from geoseg.errors import ModelIntegrityError
from geoseg.models.arch import build_module
from geoseg.models.card import ModelCard
from geoseg.models.weights import decode_state


def load_module(card: ModelCard):
    """An eval-mode float32 ``torch.nn.Module`` with the card's verified weights."""
    from safetensors.torch import load_file

    card.verify_weights()
    module = build_module(card.architecture)
    state = decode_state(load_file(str(card.weights_path)))
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelIntegrityError(f"weights of {card.name!r} do not fit its architecture ({first}); fix the card") from None
    return module.eval()
