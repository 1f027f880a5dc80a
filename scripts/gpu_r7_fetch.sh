#!/usr/bin/env bash
# Join what scripts/gpu_r7.sh sent back (the device tool's files_at folder, $1) into runs/r7/, check that each
# model's weights load, and export each as a card in runs/r7/export (int8 storage, as the default ships).
set -euo pipefail
FROM=${1:?usage: $0 FILES_AT_FOLDER}
cd "$(dirname "$0")/.."
mkdir -p runs/r7/export
cp "$FROM/log.jsonl" "$FROM/gpu_checks.txt" runs/r7/ 2>/dev/null || true
for name in scinet-r18-r7 scinet-r18-r7-frozenbn; do
  cat "$FROM/$name.last.safetensors.part"* > "runs/r7/$name.last.safetensors"
  cp "$FROM/$name.last.json" "runs/r7/$name.last.json"
  python -m geoseg.train.export "runs/r7/$name.last.safetensors" runs/r7/export configs/gpu/scinet_r18_r7.card.json --int8
done
ls -l runs/r7 runs/r7/export
