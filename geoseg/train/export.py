"""Export a training checkpoint as fp16 safetensors plus a model card (JSON).

The card's tile size defaults to the training chip size (a card template may override it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from geoseg.models.card import file_sha256
from geoseg.train.regions import TARGETS


def inference_tiles(tcfg: dict[str, Any]) -> dict[str, int]:
    """Tile size and overlap the engine should use: the training chip size, because a model
    trained on small chips (DenseASPP's wide dilations above all) sees different context on
    larger tiles and loses recall there (docs/scinet_vs_unet.md, round 3)."""
    size = int(tcfg["chip_size"])
    return {"tile_size": size, "overlap": size // 4}


def read_checkpoint(checkpoint: Path) -> dict[str, Any]:
    """A ``geoseg train`` checkpoint (``*.pt``), or weights as ``NAME.safetensors`` beside a ``NAME.json`` holding
    ``config`` plus ``step`` and ``metrics`` (what ``scripts/train_pair.py`` writes)."""
    checkpoint = Path(checkpoint)
    if checkpoint.suffix == ".safetensors":
        from safetensors.torch import load_file

        side = json.loads(checkpoint.with_suffix(".json").read_text())
        return {"model": load_file(str(checkpoint)), "config": side["config"], "epoch": None,
                "step": side.get("step"), "metrics": side.get("metrics")}
    import torch

    return torch.load(checkpoint, weights_only=False, map_location="cpu")


def export(checkpoint: Path, out_dir: Path, card_extra: dict[str, Any]) -> Path:
    from safetensors.torch import save_file

    ck = read_checkpoint(checkpoint)
    cfg = ck["config"]
    name = cfg["name"]
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{name}.safetensors"
    save_file({k: v.detach().half().contiguous() for k, v in ck["model"].items()}, str(weights), metadata={"name": name})
    card = {
        "name": name,
        "architecture": cfg["architecture"],
        "outputs": list(TARGETS[: int(cfg["architecture"].get("classes", 1))]),
        "weights": weights.name,
        "sha256": file_sha256(weights),
        "input": {"bands": ["red", "green", "blue"], "normalization": cfg.get("normalization"),
                  "dtype_rule": "uint8 as is; other dtypes: each band's 2nd-98th percentile mapped linearly to 0-255"},
        "training": {"config": cfg, "epoch": ck.get("epoch"), **({"step": ck["step"]} if ck.get("step") is not None else {}),
                     "val_metrics_during_training": ck.get("metrics")},
        **inference_tiles(cfg["train"]),
        **card_extra,
    }
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(card, indent=2) + "\n")
    return path


if __name__ == "__main__":
    ckpt, out, extra = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(Path(sys.argv[3]).read_text())
    print(export(ckpt, out, extra))
