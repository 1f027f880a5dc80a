"""``python -m geoseg.train CONFIG.toml [OUT_DIR]``: train from a TOML experiment config."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from geoseg.train.fit import fit


def main(argv: list[str]) -> int:
    cfg_path = Path(argv[0])
    cfg = tomllib.loads(cfg_path.read_text())
    out = Path(argv[1]) if len(argv) > 1 else Path("runs") / cfg["name"]
    fit(cfg, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
