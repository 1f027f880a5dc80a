"""``python -m geoseg.train CONFIG.toml|CONFIG.yaml [OUT_DIR]``: train from a TOML or YAML experiment config."""

from __future__ import annotations

import sys
from pathlib import Path

from geoseg.train.experiment import load_experiment
from geoseg.train.fit import fit


def main(argv: list[str]) -> int:
    cfg_path = Path(argv[0])
    cfg = load_experiment(cfg_path)
    out = Path(argv[1]) if len(argv) > 1 else Path("runs") / cfg["name"]
    fit(cfg, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
