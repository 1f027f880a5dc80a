"""AdaBN: re-estimate a model's BatchNorm statistics on unlabelled target imagery, then score it.

Each raster is cut into the card's tiles at the card's GSD (the engine's own plan and reader);
tiles at least ``--min-valid`` valid pass through the network in train mode with a cumulative
average, no gradient. ``--mix A`` keeps ``(1 - A) * trained + A * target`` statistics. The result
is a checkpoint for ``python -m geoseg.train.export``.

    python scripts/adabn.py default runs/adabn/mix25.pt --name scinet-r18-adabn25 --mix 0.25 runs/eval/banepa_chips.vrt
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def target_tiles(card, path: str, min_valid: float):
    """uint8 ``(C, Y, X)`` read windows of ``path``'s tiles on the card's working grid, mostly valid."""
    from geoseg.config import SegmentConfig
    from geoseg.engine.plan import make_plan
    from geoseg.io.raster import WorkReader, inspect_raster

    info = inspect_raster(path, card.bands)
    plan = make_plan(info, card, SegmentConfig(model=card.name))
    with WorkReader(info, plan.work_grid) as reader:
        for r in range(plan.tiles.n_rows):
            for c in range(plan.tiles.n_cols):
                data, valid = reader.read(plan.tiles.tile(r, c).read)
                if valid.mean() >= min_valid and data.shape[1] % 32 == 0 and data.shape[2] % 32 == 0:
                    yield data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="model name or card path")
    ap.add_argument("out", help="checkpoint to write (.pt)")
    ap.add_argument("rasters", nargs="+")
    ap.add_argument("--name", required=True, help="the exported model's name")
    ap.add_argument("--mix", type=float, default=1.0, help="weight of the target statistics (1: AdaBN proper)")
    ap.add_argument("--min-valid", type=float, default=0.9)
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args()

    import torch

    from geoseg.models.loading import load_module
    from geoseg.models.normalize import normalize
    from geoseg.models.registry import get_card

    card = get_card(args.model)
    cfg = dict(card.raw["training"]["config"], name=args.name)
    model = load_module(card).float()
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over every batch
    model = model.to(memory_format=torch.channels_last).train()
    t0, n, batch = time.time(), 0, []

    def forward(b):
        x = normalize(torch.as_tensor(np.stack(b)), cfg["normalization"]).contiguous(memory_format=torch.channels_last)
        model(x)

    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for path in args.rasters:
            for tile in target_tiles(card, path, args.min_valid):
                batch.append(tile)
                if len(batch) == args.batch:
                    forward(batch)
                    n, batch = n + len(batch), []
        if batch:
            forward(batch)
            n += len(batch)
    state = model.state_dict()
    for k, v in state.items():
        if k.endswith(("running_mean", "running_var")):
            state[k] = (1 - args.mix) * trained[k] + args.mix * v
    print(f"{n} tiles in {time.time() - t0:.0f} s; mix {args.mix}")
    torch.save({"model": {k: v.contiguous() for k, v in state.items()}, "config": cfg, "epoch": None}, args.out)


if __name__ == "__main__":
    main()
