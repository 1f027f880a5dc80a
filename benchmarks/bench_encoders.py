"""Model speed per encoder: CPU (or CUDA) inference and training-step time of Sci-Net and U-Net.

    python benchmarks/bench_encoders.py --encoders resnet18 resnet34 efficientnet-b0 mobilenet_v2 --threads 2

Inference: batches of 512 x 512 tiles, megapixels/s; ``--precision bf16`` (default) autocasts, ``fp32`` does not.
bf16 is fast only on CPUs with native bf16 (AVX512-BF16 or AMX); elsewhere PyTorch emulates it (docs/training.md).
Training: one AdamW step on a batch of 16 chips of 256 px (``--train-chip``), seconds. ``--memory-format`` (default:
what the engine picks) compares channels_last with contiguous. Random weights: speed does not
depend on them. Accuracy per encoder needs a training run each; see docs/scinet_vs_unet.md.
"""

from __future__ import annotations

import argparse
import json
import time


def _time(fn, repeat: int) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def bench(arch: dict, device: str, tile: int, batch: int, repeat: int, precision: str = "bf16",
          train_chip: int = 256, memory_format: str = "auto") -> dict:
    import torch

    from geoseg.engine.device import uses_channels_last
    from geoseg.models.arch import build_module

    model = build_module(arch).to(device)
    if memory_format == "auto":  # what the engine and `geoseg train` do
        memory_format = "channels_last" if uses_channels_last(device, precision) else "contiguous"
    if memory_format == "channels_last":
        model = model.to(memory_format=torch.channels_last)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    dtype = {"bf16": torch.bfloat16, "fp32": None}[precision]
    x = torch.randn(batch, 3, tile, tile, device=device)

    def infer():
        with torch.inference_mode(), torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
            model.eval()(x)

    infer_s = _time(infer, repeat)
    opt = torch.optim.AdamW(model.parameters())
    xt = torch.randn(16, 3, train_chip, train_chip, device=device)

    def step():
        with torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = model.train()(xt).float().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    step_s = _time(step, max(1, repeat // 2))
    return {"arch": arch["name"], "encoder": arch["encoder"], "precision": precision, "params_m": round(params, 2),
            "infer_mpx_s": round(batch * tile * tile / infer_s / 1e6, 3), "train_step_s": round(step_s, 2), "train_chip": train_chip,
            "memory_format": memory_format}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoders", nargs="+", default=["resnet18", "resnet34", "efficientnet-b0", "mobilenet_v2"])
    ap.add_argument("--archs", nargs="+", default=["scinet", "unet"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--train-chip", type=int, default=256, help="side of the 16 training chips (px)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    ap.add_argument("--memory-format", choices=["auto", "contiguous", "channels_last"], default="auto",
                    help="auto: channels_last where the engine uses it (geoseg.engine.device.uses_channels_last)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    rows = []
    for enc in args.encoders:
        for name in args.archs:
            row = bench({"name": name, "encoder": enc, "in_channels": 3, "classes": 2}, args.device, args.tile, args.batch, args.repeat,
                        args.precision, args.train_chip, args.memory_format)
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"threads": args.threads, "device": args.device, "precision": args.precision, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
