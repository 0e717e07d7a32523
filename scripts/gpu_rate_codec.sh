#!/usr/bin/env bash
# One accelerator call: make a fixed-rate photo codec rate-adaptive (SwinJSCC-style latent prefix,
# --rates) by fine-tuning it on photo crops, then bring it back as fp16 (one file < 16 MiB).
#
#   bash scripts/gpu_rate_codec.sh OUT_DIR [MINUTES]
#
# Carried in .gpu/: init-codec/ (model.safetensors + config.json of the start codec) and photos/.
# Env: RATES (8,16,32), CROP (128), BATCH (64), LR (2e-4), EXTRA (more `sccdm train codec` flags).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:?OUT dir}"); MIN=${2:-7}
RUN=/tmp/rate-codec
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 SCCDM_CACHE=${SCCDM_CACHE:-/tmp/sccdm-cache}
(nvidia-smi -L 2>&1 || true) > "$OUT/train.log"
timeout $(python3 -c "print(int($MIN*60+90))") python3 -m sccdm.train codec --preset paper --out $RUN \
  --minutes "$MIN" --batch "${BATCH:-64}" --lr "${LR:-2e-4}" --init .gpu/init-codec --channel awgn \
  --data .gpu/photos/train --crop "${CROP:-128}" --rates "${RATES:-8,16,32}" --val 24 --val-every 1000 \
  --log-every 100 --ckpt-every 100000 ${EXTRA:-} >> "$OUT/train.log" 2>&1
echo "train rc=$?" >> "$OUT/train.log"
python3 scripts/export_fp16.py "$RUN" "$OUT/codec.safetensors" --config "$OUT/codec.json" >> "$OUT/train.log" 2>&1
tail -c 20000 $RUN/train.log > "$OUT/run-tail.log" 2>/dev/null || true
ls $RUN >> "$OUT/train.log"
