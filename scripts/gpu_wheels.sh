#!/usr/bin/env bash
# Download the Python packages train_pair.py needs that the lent GPU machine lacks, as wheels for its Python 3.12,
# into .whl/ (git-ignored; carry it: `carry: [".gpu/r7", ".whl"]`). Pins as in constraints.txt. About 8 MiB.
# The machine has torch, torchvision, timm, huggingface-hub, safetensors, opencv, scipy, pyyaml, numpy, tqdm
# (/work/.library/device/KINDS.md); segmentation-models-pytorch, albumentations and affine it has not.
set -euo pipefail
cd "$(dirname "$0")/.."
pin() { grep -i "^$1==" constraints.txt | head -1 | cut -d= -f3; }
PKGS=(
  "segmentation-models-pytorch==$(pin segmentation-models-pytorch)"
  "albumentations==$(pin albumentations)"
  albucore==0.0.24 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
  typing-extensions==4.16.0 stringzilla==5.3.2 simsimd==6.5.16
  "affine==$(pin affine)"
)
rm -rf .whl && mkdir .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${PKGS[@]}"
du -sh .whl && ls .whl
