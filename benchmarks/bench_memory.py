"""Peak memory (RSS) of a full ``segment()`` run as the raster grows.

Each size runs in a fresh Python process, so one run's peak cannot carry over to the
next; the peak is the child's ``ru_maxrss`` (the whole process: interpreter, torch,
GDAL cache, the engine). "base" is the child's RSS after its imports, before the run.

By default the model is the per-pixel reference model from ``tests/conftest.py``
(1x1 conv, tile 512, overlap 64, 0.3 m) so 20k x 20k finishes in minutes on a CPU;
memory then measures the engine, not the network. ``--real-model`` uses the default
model, scinet-r18-h200 (slow on CPU: use it for small sizes or on a GPU).

    python benchmarks/bench_memory.py --sizes 1k 2k 5k 10k 20k --json mem.json
    python benchmarks/bench_memory.py --sizes 2048x1k 2048x20k          # tall strips: height only
    python benchmarks/bench_memory.py --sizes 1k 2k --real-model
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA_DIR, environment, parse_size, print_table, size_label, vectorizer_available, write_json

MARK = "@@bench_memory "


def reference_card(data_dir: Path) -> Path:
    from tests.conftest import make_pixel_model

    path = data_dir / "models" / "pixel-bench.json"
    return path if path.is_file() else make_pixel_model(path.parent, name="pixel-bench", gsd_m=0.3, valid=(0.1, 1.0),
                                                        tile=512, overlap=64)


def child(raster: str, model: str, device: str, precision: str, batch_size: int, footprints: bool) -> dict:
    """One measured run (in its own process)."""
    import psutil

    from geoseg.config import SegmentConfig
    from geoseg.engine.segment import segment

    proc = psutil.Process()
    base = proc.memory_info().rss
    peak, stop = [base], threading.Event()

    def sample():
        while not stop.wait(0.05):
            peak[0] = max(peak[0], proc.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cfg = SegmentConfig(model=model, device=device, precision=precision, batch_size=batch_size, resume=False)
    with tempfile.TemporaryDirectory(prefix="geoseg-bench-") as tmp:
        out = Path(tmp) / "footprints.gpkg" if footprints else None
        t0 = time.perf_counter()
        res = segment(raster, out, Path(tmp) / "prob.tif", cfg, return_footprints=footprints)
        seconds = time.perf_counter() - t0
    stop.set()
    sampler.join()
    plan = res.plan.describe()
    import torch

    gpu_mb = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    return {"seconds": seconds, "base_rss_mb": base / 2**20, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "sampled_peak_mb": peak[0] / 2**20, "est_peak_mb": plan["est_peak_memory_mb"], "tiles": plan["tiles"],
            "work_shape_yx": plan["work_shape_yx"], "stages_s": res.stats.seconds,
            "gpu_peak_mb": gpu_mb, "footprints": None if res.footprints is None else len(res.footprints)}


def run_size(spec: str, args, model: str) -> dict:
    from make_big_raster import build

    w, h = parse_size(spec)
    raster = build(w, h, args.data_dir)
    cmd = [sys.executable, __file__, "--child", str(raster), "--model", model, "--device", args.device,
           "--precision", args.precision, "--batch-size", str(args.batch_size)] + (["--with-footprints"] * args.with_footprints)
    env = dict(os.environ, **({"GDAL_CACHEMAX": str(args.gdal_cachemax)} if args.gdal_cachemax else {}))
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith(MARK)]
    if p.returncode or not lines:
        sys.exit(f"size {spec} failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
    return {"size": size_label(w, h), "megapixels": w * h / 1e6, **json.loads(lines[-1][len(MARK):])}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["1k", "2k", "5k", "10k", "20k"], help="sides (1024, 20k) or WIDTHxHEIGHT")
    ap.add_argument("--real-model", action="store_true", help="use the default model (scinet-r18-h200) instead of the per-pixel model")
    ap.add_argument("--model", default=None, help="any model name or card path (overrides --real-model)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--with-footprints", action="store_true", help="also vectorize (geoseg.footprints)")
    ap.add_argument("--gdal-cachemax", type=int, default=None, help="GDAL_CACHEMAX (MB) for the runs; default GDAL's")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--child", metavar="RASTER", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        print(MARK + json.dumps(child(args.child, args.model, args.device, args.precision, args.batch_size,
                                      args.with_footprints)), flush=True)
        return {}
    if args.with_footprints and not vectorizer_available():
        sys.exit("--with-footprints needs geoseg.footprints.raster and geoseg.io.vector, which are not importable yet")
    model = args.model or ("default" if args.real_model else str(reference_card(args.data_dir)))
    env = environment(args.device, args.precision)
    print(f"model {Path(model).stem}, device {args.device}, precision {args.precision}, batch {args.batch_size}, "
          f"{env['cpu_count']} CPUs, GDAL_CACHEMAX {args.gdal_cachemax or env['gdal_cachemax']}, footprints {args.with_footprints}")
    rows = []
    for spec in args.sizes:
        rows.append(run_size(spec, args, model))
        r = rows[-1]
        print(f"  {r['size']}: {r['seconds']:.1f} s, peak {r['peak_rss_mb']:.0f} MB", flush=True)
    print()
    print_table(rows, [("size", "size", "s"), ("megapixels", "MP", ".1f"), ("tiles", "tiles", "d"),
                       ("seconds", "seconds", ".1f"), ("base_rss_mb", "base MB", ".0f"),
                       ("peak_rss_mb", "peak RSS MB", ".0f"), ("sampled_peak_mb", "sampled MB", ".0f"),
                       ("est_peak_mb", "plan est MB", "d")]
                + [("gpu_peak_mb", "GPU peak MB", ".0f")] * any(r["gpu_peak_mb"] for r in rows)
                + [("footprints", "footprints", "d")] * args.with_footprints)
    result = {"model": model, "environment": env, "with_footprints": args.with_footprints,
              "gdal_cachemax_mb": args.gdal_cachemax, "runs": rows}
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
