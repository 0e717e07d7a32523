#!/usr/bin/env bash
# One accelerator call: fine-tune a refiner (refine1 then refine2) on a rate-adaptive codec's outputs
# (the stages draw one of the codec's rates per batch), then bring it back as fp16, split below 16 MiB
# (join: cat refiner.safetensors.part* > refiner.safetensors).
#
#   bash scripts/gpu_rate_refiner.sh OUT_DIR [REFINE1_MIN] [REFINE2_MIN]
#
# Carried in .gpu/: rate-codec/ and init-refiner/ (model.safetensors + config.json each), photos/.
# Env: EXTRA (more flags for both stages).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:?OUT dir}"); M1=${2:-2.5}; M2=${3:-1}
RUN=/tmp/rate-refiner
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 SCCDM_CACHE=${SCCDM_CACHE:-/tmp/sccdm-cache}
common=(--preset paper-s --batch 32 --lr 1e-4 --codec .gpu/rate-codec --channel awgn --data .gpu/photos/train
        --crop 128 --val 24 --log-every 50 --ckpt-every 100000)
timeout $(python3 -c "print(int($M1*60+60))") python3 -m sccdm.train refine1 "${common[@]}" --out $RUN/refine1 \
  --minutes "$M1" --init .gpu/init-refiner --val-every 100000 ${EXTRA:-} > "$OUT/train.log" 2>&1
echo "refine1 rc=$?" >> "$OUT/train.log"
timeout $(python3 -c "print(int($M2*60+60))") python3 -m sccdm.train refine2 "${common[@]}" --out $RUN/refine2 \
  --minutes "$M2" --init $RUN/refine1 --val-every 100000 ${EXTRA:-} >> "$OUT/train.log" 2>&1
echo "refine2 rc=$?" >> "$OUT/train.log"
python3 scripts/export_fp16.py "$RUN/refine2" "$OUT/refiner.safetensors" --config "$OUT/refiner.json" \
  --split 16500000 >> "$OUT/train.log" 2>&1
ls -la "$OUT" >> "$OUT/train.log"
