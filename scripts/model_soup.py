"""A model soup: the uniform average of the weights of several fine-tunes of one parent model.

Every ingredient must share the architecture (a training checkpoint ``.pt``, or a model name / card
path for shipped weights). Float tensors, BatchNorm statistics included, are averaged; integer ones
(``num_batches_tracked``) are taken from the first. The result is a checkpoint for
``python -m geoseg.train.export``, with the first checkpoint's training config under ``--name``.

    python scripts/model_soup.py runs/soup/soup6.pt --name scinet-r18-soup6 runs/a/last.pt runs/b/last.pt ...
"""

from __future__ import annotations

import argparse


def load_state(ref: str):
    """``(float state dict, training config)`` of a checkpoint path or a model name / card (the loader
    ``init_model`` uses)."""
    from geoseg.train.checkpoint import source_state

    if ref.endswith(".pt"):
        import torch

        config = torch.load(ref, map_location="cpu", weights_only=False)["config"]
    else:
        from geoseg.models.registry import get_card

        config = dict(get_card(ref).raw["training"]["config"])
    return source_state(ref), config


def soup(states: list[dict]) -> dict:
    keys = list(states[0])
    for s in states[1:]:
        if set(s) != set(keys) or any(s[k].shape != states[0][k].shape for k in keys):
            raise SystemExit("the ingredients do not share one architecture")
    out = {}
    for k in keys:
        if states[0][k].is_floating_point():
            out[k] = sum(s[k].float() for s in states) / len(states)
        else:
            out[k] = states[0][k].clone()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="checkpoint to write (.pt)")
    ap.add_argument("ingredients", nargs="+", help="checkpoints (.pt) or model names / card paths")
    ap.add_argument("--name", required=True, help="the exported model's name")
    args = ap.parse_args()

    import torch

    loaded = [load_state(r) for r in args.ingredients]
    config = loaded[0][1]
    state = soup([s for s, _ in loaded])
    torch.save({"model": {k: v.contiguous() for k, v in state.items()}, "config": dict(config, name=args.name),
                "epoch": None}, args.out)
    print(f"{len(loaded)} ingredients -> {args.out}")


if __name__ == "__main__":
    main()
