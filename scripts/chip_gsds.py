"""Which GSDs a training config's chips really get: the share of chips in equal log-bins of train.gsd_range.

    python scripts/chip_gsds.py CONFIG.toml [--chips 3000] [--old] [--json out.json]

Loads the config's training regions as `geoseg train` does and draws chips with its sampler (no augmentation).
Reports each bin's share of the chips (log-uniform: 1/6 each) and of the windows tried that were kept.
``--old`` replays the sampler before 2026-11-30: windows placed uniformly over a memory region, and a new GSD
drawn whenever a window was too masked (which starved the coarse GSDs).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import tomllib

BINS = 6


def _old_draw(sampler, region_index_p):
    """One chip's (gsd, windows tried) as the old loop drew it: a new region and GSD on every miss."""
    tried = 0
    for _ in range(100):
        region = sampler.regions[sampler.rng.choice(len(sampler.regions), p=region_index_p)]
        gsd = sampler._gsd()
        crop = max(8, round(sampler.size * gsd / region.gsd_m))
        h, w = region.valid.shape
        tried += 1
        if crop > h or crop > w:
            continue
        y, x = int(sampler.rng.integers(0, h - crop + 1)), int(sampler.rng.integers(0, w - crop + 1))
        if region.valid[y:y + crop, x:x + crop].mean() >= sampler.min_valid:
            return gsd, tried
    raise RuntimeError("could not draw a valid chip")


def _new_draw(sampler, calls):
    calls[0] = 0
    return sampler.sample_with_gsd()[0], calls[0]


def main() -> None:
    from geoseg.train.chips import ChipSampler
    from geoseg.train.fit import train_regions

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config")
    ap.add_argument("--chips", type=int, default=3000)
    ap.add_argument("--old", action="store_true", help="replay the sampler before 2026-11-30 (memory regions only)")
    ap.add_argument("--json")
    a = ap.parse_args()
    cfg = tomllib.loads(Path(a.config).read_text())
    tcfg = cfg["train"]
    regions = train_regions(cfg["data"], tcfg)
    calls = [0]
    if not a.old:  # count the windows each chip tries
        for r in regions:
            def counted(rng, crop, draw=r.draw):
                calls[0] += 1
                return draw(rng, crop)
            object.__setattr__(r, "draw", counted)
    sampler = ChipSampler(regions, int(tcfg["chip_size"]), tuple(tcfg["gsd_range"]), seed=int(tcfg.get("seed", 0)),
                          augment=False, n_targets=1)
    t0 = time.perf_counter()
    drawn = [_old_draw(sampler, sampler.p) if a.old else _new_draw(sampler, calls) for _ in range(a.chips)]
    seconds = time.perf_counter() - t0
    gsds, tried = np.array([g for g, _ in drawn]), np.array([t for _, t in drawn])
    lo, hi = sampler.gsd_range
    edges = np.exp(np.linspace(math.log(lo), math.log(hi), BINS + 1))
    which = np.clip(np.searchsorted(edges, gsds, side="right") - 1, 0, BINS - 1)
    rows = [{"bin_m": [round(edges[i], 3), round(edges[i + 1], 3)], "share_of_chips": round(float((which == i).mean()), 3)}
            for i in range(BINS)]
    if not a.old:  # the old loop redrew the GSD, so its misses belong to no chip's bin
        for i, row in enumerate(rows):
            row["windows_kept"] = round(float((which == i).sum() / tried[which == i].sum()), 3) if (which == i).any() else None
    out = {"config": a.config, "sampler": "old" if a.old else "current", "chips": a.chips, "bins": rows,
           "windows_kept": round(a.chips / float(tried.sum()), 3), "s_per_chip": round(seconds / a.chips, 4)}
    print(json.dumps(out, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
