"""End-to-end throughput of ``segment()`` versus the model's forward pass alone.

Both runs use the same model, device, precision, batch size, tile size, overlap and
tile count; the model-only run calls ``Predictor`` on pre-read uint8 tile rows (one
call per tile row, as the engine does), so the difference is the engine's reading,
stitching, chunk writing, probability writing (and vectorizing with --with-footprints).

    python benchmarks/bench_throughput.py --size 2048
    python benchmarks/bench_throughput.py --size 10k --precision fp32 --batch-size 8 --json tp_10k.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA_DIR, engine_stage_timer, environment, parse_size, print_table, vectorizer_available, write_json
from make_big_raster import build


def model_only_seconds(predictor, info, plan, n_distinct_rows: int = 2) -> float:
    """Time ``predictor`` on every tile row's worth of tiles; the pixels come from the first
    ``n_distinct_rows`` tile rows, read beforehand and reused (the forward pass does not
    depend on content), so memory stays small for big rasters."""
    from geoseg.io.raster import WorkReader

    tiles = plan.tiles
    rows = []
    with WorkReader(info, plan.work_grid) as reader:
        for r in range(min(n_distinct_rows, tiles.n_rows)):
            win = tiles.row_read_window(r)
            data, _ = reader.read(win)
            rows.append(np.stack([data[(slice(None), *t.read.relative_to(win).slices())] for t in tiles.row(r)]))
    predictor(rows[0][:predictor.batch_size])  # warm-up (kernels, allocator)
    t0 = time.perf_counter()
    for r in range(tiles.n_rows):
        predictor(rows[r % len(rows)])
    if predictor.device == "cuda":
        import torch

        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="2048", help="raster side in pixels (2048, 10k) or WIDTHxHEIGHT")
    ap.add_argument("--model", default="default", help="model name or card path")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    ap.add_argument("--runtime", default="torch", choices=["torch", "onnx"], help="onnx: ONNX Runtime on the CPU")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--with-footprints", action="store_true", help="also vectorize (geoseg.footprints)")
    ap.add_argument("--real-tiff", action="store_true", help="read a materialized GeoTIFF instead of the VRT mosaic")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)

    import torch

    from geoseg.config import SegmentConfig
    from geoseg.engine.onnx_runtime import onnx_module
    from geoseg.engine.plan import make_plan
    from geoseg.engine.predictor import Predictor
    from geoseg.engine.segment import segment
    from geoseg.io.raster import inspect_raster
    from geoseg.models.loading import load_module
    from geoseg.models.registry import get_card

    if args.with_footprints and not vectorizer_available():
        sys.exit("--with-footprints needs geoseg.footprints.raster and geoseg.io.vector, which are not importable yet")

    width, height = parse_size(args.size)
    raster = build(width, height, args.data_dir, real_tiff=args.real_tiff)
    card = get_card(args.model)
    cfg = SegmentConfig(model=args.model, device=args.device, precision=args.precision, runtime=args.runtime,
                        batch_size=args.batch_size, resume=False)
    info = inspect_raster(str(raster), card.bands)
    plan = make_plan(info, card, cfg)
    module = onnx_module(card) if args.runtime == "onnx" else load_module(card)
    predictor = Predictor(module, card, args.device, args.precision, args.batch_size, runtime=args.runtime)
    env = environment(predictor.device, predictor.precision)
    work_mp = plan.work_grid.width * plan.work_grid.height / 1e6
    print(f"{raster.name}: {plan.work_grid.width}x{plan.work_grid.height} px on the working grid ({work_mp:.1f} MP), "
          f"resampled={plan.resampled}, model {card.name}, tile {plan.tiles.tile_size}/{plan.tiles.overlap}, "
          f"{len(plan.tiles)} tiles in {plan.tiles.n_rows} rows")
    print(f"runtime {args.runtime}, device {env['device']}{' (' + env['gpu'] + ')' if env['gpu'] else ''}, precision {env['precision']}, "
          f"batch {args.batch_size}, torch {env['torch']} with {env['torch_threads']} threads, {env['cpu_count']} CPUs")

    t_model = model_only_seconds(predictor, info, plan)
    del predictor
    if torch.cuda.is_available():
        torch.cuda.empty_cache()

    with tempfile.TemporaryDirectory(prefix="geoseg-bench-") as tmp, engine_stage_timer() as timer:
        out = Path(tmp) / "footprints.gpkg" if args.with_footprints else None
        t0 = time.perf_counter()
        res = segment(str(raster), out, Path(tmp) / "prob.tif", cfg, return_footprints=args.with_footprints)
        t_engine = time.perf_counter() - t0
    stages = {**timer.seconds, **res.stats.seconds}
    stages["other"] = t_engine - sum(stages.values())
    n_fp = None if res.footprints is None else len(res.footprints)

    rows = [{"run": "model only", "seconds": t_model, "mps": work_mp / t_model, "overhead": None},
            {"run": "engine (segment)", "seconds": t_engine, "mps": work_mp / t_engine,
             "overhead": 100 * (t_engine / t_model - 1)}]
    print()
    print_table(rows, [("run", "run", "s"), ("seconds", "seconds", ".2f"), ("mps", "MP/s", ".3f"),
                       ("overhead", "overhead %", "+.1f")])
    print("\nengine stages (s): " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))
    print(f"tiles predicted {res.stats.tiles_predicted} (empty {res.stats.tiles_empty}), chunks {res.stats.chunks_written}"
          + (f", footprints {n_fp}" if n_fp is not None else ""))

    result = {"raster": str(raster), "size": [width, height], "work_megapixels": work_mp, "model": card.name,
              "tiles": len(plan.tiles), "tile_size": plan.tiles.tile_size, "overlap": plan.tiles.overlap,
              "batch_size": args.batch_size, "with_footprints": args.with_footprints, "environment": env,
              "model_only": {"seconds": t_model, "mps": work_mp / t_model},
              "engine": {"seconds": t_engine, "mps": work_mp / t_engine, "stages_s": stages,
                         "tiles_predicted": res.stats.tiles_predicted, "footprints": n_fp},
              "overhead_pct": 100 * (t_engine / t_model - 1)}
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
