#!/usr/bin/env bash
# The GPU path, measured: execute every notebook's full profile on a CUDA machine with each
# notebook's default device="auto" (so CUDA, with no change to any notebook), then print where
# the time went, per notebook and per section, with the device each notebook recorded.
#   bash scripts/gpu_book.sh          # on a machine with an NVIDIA GPU
# Outputs go to _build/gpu/ (executed notebooks, records, execution.json); the book's own
# outputs are left alone. The shared digit U-Net is trained first on the GPU unless
# _build/artifacts already holds it (COLD=1 removes it first, to count its training).
# JOBS notebooks share the GPU at once (default 4); the CPU cores are split between them.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE="${PROFILE:-full}"
EXTRAS="${EXTRAS:-book}"
source scripts/_setup.sh
python - <<'PY'
import torch
if not torch.cuda.is_available():
    raise SystemExit(
        f"no CUDA device (torch {torch.__version__}): this script measures the GPU path; "
        'install a CUDA build of torch (TORCH_SPEC="torch==2.13.0") on a GPU machine'
    )
print("== GPU:", torch.cuda.get_device_name(0), "| torch", torch.__version__, "| CUDA", torch.version.cuda)
PY
if [ "${COLD:-0}" = "1" ]; then
  rm -f _build/artifacts/digit_unet-*.pt
fi
JOBS="${JOBS:-4}"
start=$(date +%s)
diffctrl-book execute --profile "$PROFILE" --jobs "$JOBS" --force --out _build/gpu
echo "== all notebooks in $(( $(date +%s) - start )) s wall"
diffctrl-book profile --executed _build/gpu --min-seconds 5
