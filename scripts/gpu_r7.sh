#!/usr/bin/env bash
# Round 7 on a lent GPU machine (docs/training.md, "On a GPU"). Run through the `device` tool from the repo root,
# with `carry: [".gpu/r7", ".whl"]` and a timeout of about 560 s, after this on the CPU machine:
#   python scripts/gpu_pack.py configs/gpu/scinet_r18_r7.toml configs/gpu/scinet_r18_r7_frozenbn.toml --out .gpu/r7 --init-encoding int8
#   bash scripts/gpu_wheels.sh && bash scripts/device_tree.sh hide && bash scripts/device_tree.sh size .gpu/r7 .whl
# then `bash scripts/device_tree.sh restore` at once after the call. Training seconds: $1 (default 400).
# What comes back ($OUT: at most 8 files of 16 MiB): the log, and each model's final weights (int8 storage,
# 17.8 MB) in two parts with their JSON; join them with scripts/gpu_r7_fetch.sh. The best-check weights are left
# behind on purpose: the checks are on held-out Banepa.
set -euo pipefail
: "${OUT:?run this through the device tool, which sets OUT}"
BUDGET=${1:-400}
if [ -z "${SKIP_WHEELS:-}" ]; then  # SKIP_WHEELS=1: a dry run on the CPU machine, whose venv has the packages
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"; } | tee "$OUT/gpu_checks.txt"
# the CUDA half of the model contract and mixed-precision training steps (fp16 with a GradScaler, bf16)
python3 -m pytest -q -p no:cacheprovider -m gpu tests/models/test_contract.py tests/train/test_train_step.py 2>&1 \
  | tail -4 | tee -a "$OUT/gpu_checks.txt" || true
python3 scripts/train_pair.py configs/gpu/scinet_r18_r7.toml configs/gpu/scinet_r18_r7_frozenbn.toml \
  --data .gpu/r7 --out runs/r7 --seconds "$BUDGET" --encoding int8 --no-best > /dev/null
cp runs/r7/log.jsonl "$OUT/log.jsonl"
for name in scinet-r18-r7 scinet-r18-r7-frozenbn; do
  cp "runs/r7/$name.last.json" "$OUT/$name.last.json"
  split -b 15M -d "runs/r7/$name.last.safetensors" "$OUT/$name.last.safetensors.part"
done
ls -l "$OUT"
