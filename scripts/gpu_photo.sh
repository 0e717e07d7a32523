#!/usr/bin/env bash
# One accelerator call: continue the fixed-rate photo model (codec, then its refiner on the new
# codec's outputs) on photo crops over a wider SNR range, and bring both back as fp16
# (codec one file < 16 MiB; refiner split: cat refiner.safetensors.part* > refiner.safetensors).
#
#   bash scripts/gpu_photo.sh OUT_DIR [CODEC_MIN] [REFINE1_MIN] [REFINE2_MIN]
#
# Carried in .gpu/: init-codec/ and init-refiner/ (model.safetensors + config.json of the start
# model, e.g. sc-cdm-paper-photo's parts), photos/ (scripts/prepare_photos.py output).
# Env: CHANNEL (awgn; rayleigh: block fading, MMSE), INIT_CODEC (.gpu/init-codec), SNR_MIN (-1), SNR_MAX (16), CROP (128), BATCH (64), LR (2e-4), EXTRA (more codec flags).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:?OUT dir}"); MC=${2:-5.3}; M1=${3:-1.2}; M2=${4:-0.6}
RUN=/tmp/photo-run
rm -rf "$RUN"; mkdir -p "$OUT" "$RUN"
export PYTHONUNBUFFERED=1 SCCDM_CACHE=${SCCDM_CACHE:-/tmp/sccdm-cache}
PY=${PY:-python3}
(nvidia-smi -L 2>&1 || true) > "$OUT/train.log"
snr=(--snr-min "${SNR_MIN:--1}" --snr-max "${SNR_MAX:-16}" --channel "${CHANNEL:-awgn}" --data .gpu/photos/train
     --crop "${CROP:-128}" --val "${VAL:-24}" --log-every 100 --ckpt-every 100000)
t0=$(date +%s)
timeout $($PY -c "print(int($MC*60+90))") $PY -m sccdm.train codec --preset paper --out $RUN/codec \
  --minutes "$MC" --batch "${BATCH:-64}" --lr "${LR:-2e-4}" --init "${INIT_CODEC:-.gpu/init-codec}" "${snr[@]}" \
  --val-every 1000 ${EXTRA:-} >> "$OUT/train.log" 2>&1
echo "codec rc=$? at $(( $(date +%s) - t0 )) s" >> "$OUT/train.log"
codec=$RUN/codec; [ -f $codec/model.safetensors ] || codec=.gpu/init-codec
if [ "$M1" != 0 ]; then  # REFINE1_MIN 0: the codec alone
timeout $($PY -c "print(int($M1*60+60))") $PY -m sccdm.train refine1 --preset paper-s --batch "${RBATCH:-32}" --lr 1e-4 \
  --codec $codec --out $RUN/refine1 --minutes "$M1" --init .gpu/init-refiner "${snr[@]}" \
  --val-every 100000 >> "$OUT/train.log" 2>&1
echo "refine1 rc=$? at $(( $(date +%s) - t0 )) s" >> "$OUT/train.log"
timeout $($PY -c "print(int($M2*60+60))") $PY -m sccdm.train refine2 --preset paper-s --batch "${RBATCH:-32}" --lr 1e-4 \
  --codec $codec --out $RUN/refine2 --minutes "$M2" --init $RUN/refine1 "${snr[@]}" \
  --val-every 100000 >> "$OUT/train.log" 2>&1
echo "refine2 rc=$? at $(( $(date +%s) - t0 )) s" >> "$OUT/train.log"
fi
{ [ -f $RUN/codec/model.safetensors ] && $PY scripts/export_fp16.py $RUN/codec "$OUT/codec.safetensors" --config "$OUT/codec.json"
  [ -f $RUN/refine2/model.safetensors ] && $PY scripts/export_fp16.py $RUN/refine2 "$OUT/refiner.safetensors" \
    --config "$OUT/refiner.json" --split 16500000; } >> "$OUT/train.log" 2>&1
# the trip back takes 8 files: logs and configs travel in one tarball
tar -czf "$OUT/meta.tgz" -C "$RUN" --exclude='*.safetensors' --exclude='*.pt' . "$OUT"/*.json 2>/dev/null; rm -f "$OUT"/*.json
ls -la "$OUT" >> "$OUT/train.log"
