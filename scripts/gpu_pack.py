"""Pack what ``scripts/train_pair.py`` needs into one folder, for a GPU machine that has neither
``../shared`` nor the geo wheels (rasterio, pyproj, shapely).

    python scripts/gpu_pack.py CONFIG.toml [CONFIG.toml ...] --out .gpu/data

Writes ``regions.npz`` (the training regions of the configs' ``[data]`` at ``base_gsd_m``: image, instance
labels, valid mask), ``val.npz`` (the validation chips per ``name@gsd``) and, for a ``train.init_encoder``
or ``train.init_model``, ``init.safetensors`` with those weights (the encoder's only for ``init_encoder``).
Images are stored as JPEG (quality 95, about 8x smaller than deflate) so the folder fits the GPU machine's
64 MiB transfer limit; the sources are JPEG-compressed mosaics already.
The configs must share one ``[data]`` section: the pair is trained on the same batches.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def jpeg(image: np.ndarray) -> np.ndarray:
    """``(3, Y, X)`` uint8 RGB as JPEG bytes (uint8 1-D); :func:`unjpeg` reverses it."""
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(image[::-1].transpose(1, 2, 0)), [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise SystemExit("JPEG encoding failed")
    return buf.ravel()


def unjpeg(buf: np.ndarray) -> np.ndarray:
    import cv2

    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR).transpose(2, 0, 1)[::-1])


def main() -> int:
    from safetensors.torch import save_file

    from geoseg.models.weights import encode_state
    from geoseg.train.checkpoint import source_state
    from geoseg.train.experiment import load_experiment
    from geoseg.train.fit import train_regions
    from geoseg.train.validation import val_sets

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--init-encoding", choices=("fp16", "int8"), default="fp16",
                    help="how to store the starting weights: int8 halves them, and loses nothing for a model "
                         "shipped in int8 (the default model) since it is stored that way already")
    args = ap.parse_args()
    cfgs = [load_experiment(p) for p in args.configs]
    if any(c["data"] != cfgs[0]["data"] for c in cfgs[1:]):
        raise SystemExit("the configs must share one [data] section")
    dcfg, tcfg = cfgs[0]["data"], {**cfgs[0]["train"], "source": "memory"}
    args.out.mkdir(parents=True, exist_ok=True)
    regions = train_regions(dcfg, tcfg)
    arrays = {}
    for i, r in enumerate(regions):
        arrays.update({f"{i}_image": jpeg(r.image), f"{i}_label": r.label, f"{i}_valid": r.valid})
    meta = {"names": [r.name for r in regions], "gsd_m": [r.gsd_m for r in regions],
            "chip_gsd_m": [r.chip_gsd_m for r in regions]}  # per region: an entry may have its own base and span
    np.savez_compressed(args.out / "regions.npz", meta=json.dumps(meta), **arrays)
    val = val_sets(dcfg.get("val", []), int(tcfg.get("val_chip_size", 192)))
    varr = {}
    for key, chips in val.items():
        for j, name in enumerate(("image", "label", "valid")):
            stack = np.stack([c[j] for c in chips])
            varr[f"{key}|{name}"] = jpeg(np.concatenate(list(stack), axis=1)) if name == "image" else stack
    np.savez_compressed(args.out / "val.npz", **varr)
    inits = {(c["train"].get("init_encoder"), c["train"].get("init_model")) for c in cfgs} - {(None, None)}
    if len(inits) > 1:
        raise SystemExit(f"the configs start from different weights: {sorted(inits)}")
    if inits:
        encoder, model = inits.pop()
        prefix = "encoder." if encoder else ""
        state = {k: v for k, v in source_state(encoder or model).items() if k.startswith(prefix)}
        save_file(encode_state(state, args.init_encoding), str(args.out / "init.safetensors"))
    for p in sorted(args.out.iterdir()):
        print(f"{p}: {p.stat().st_size / 2**20:.1f} MiB")
    print("regions:", [(r.name, r.image.shape) for r in regions], "val chips:", {k: len(v) for k, v in val.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
