"""Model cards, the model registry and model construction."""
