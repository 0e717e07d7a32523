#!/usr/bin/env bash
# One accelerator call: training-speed benchmark, then the whole `paper` recipe, then the weights
# packed for the trip back (fp16 zoo entries, files split below 16 MiB, logs in one tarball).
#
#   bash scripts/gpu_recipe.sh OUT_DIR [MINUTES] [DATA_TGZ]
#
# Made for the device tool (nothing but the repo travels, so the CIFAR-10 archive is carried
# in .gpu/); after the call: bash scripts/gpu_unpack.sh FILES_DIR unpacks them (then publish --merge).
# Env: DATA (a data folder carried as is, instead of DATA_TGZ), PRESET (paper), SKIP_SPEED=1, RECIPE_ARGS (extra recipe flags), RECIPE_TIMEOUT (seconds).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:?OUT dir}"); MIN=${2:-7}; TGZ=${3:-.gpu/cifar10-jpeg.tar.gz}
PRESET=${PRESET:-paper}; SPEED_S=${SPEED_S:-3}; RECIPE_TIMEOUT=${RECIPE_TIMEOUT:-480}
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 SCCDM_CACHE=${SCCDM_CACHE:-/tmp/sccdm-cache}
RUN=/tmp/gpu-run
mkdir -p "$OUT" /tmp/gpu-data "$RUN"
log() { echo "[gpu_recipe $(date +%T)] $*" | tee -a "$OUT/steps.log"; }
(nvidia-smi -L 2>&1 || true) | tee -a "$OUT/steps.log"
DATA=${DATA:-/tmp/gpu-data}
[ -d "$DATA/train" ] || tar -xzf "$TGZ" -C /tmp/gpu-data
log "data ready"
[ "${SKIP_SPEED:-0}" = 1 ] || timeout 60 $PY benchmarks/training_speed.py --preset "$PRESET" --data "$DATA" --seconds "$SPEED_S" \
  --warmup 3 --out "$RUN/training_speed_$PRESET" > "$RUN/speed.log" 2>&1
log "speed benchmark rc=$?"
timeout "$RECIPE_TIMEOUT" $PY -m sccdm.train recipe --preset "$PRESET" --minutes "$MIN" --out $RUN \
  --data "$DATA" --channel awgn --val 1000 --val-every 500 ${RECIPE_ARGS:-} > "$RUN/recipe.log" 2>&1
log "recipe rc=$?"
if [ ! -f $RUN/zoo/registry.json ]; then
  # cut short: publish whatever stages finished, so the trip is not wasted
  for s in codec refine1 refine2 deepjscc; do
    [ -f "$RUN/$s/model.safetensors" ] && $PY -c "
from pathlib import Path; from sccdm.zoo.publish import publish
z = Path('$RUN/zoo'); publish('partial-$s', {'$s': Path('$RUN/$s')}, 'unfinished recipe stage',
    weights_dir=z, registry=z / 'registry.json', fp16=True)" && log "published partial $s"
  done
fi
# Pack (the trip back takes 8 files of at most 16 MiB): weights split below that, the rest in one tarball.
mkdir -p "$OUT/w"
(cd $RUN/zoo 2>/dev/null && find . -name '*.safetensors' | while read -r f; do
   flat=$(echo "${f#./}" | sed 's|/|__|')  # returned names may hold letters, digits, . _ - only
   split -b 16500000 -d "$f" "$OUT/w/$flat.part"
 done)
tar -czf "$OUT/meta.tgz" -C $RUN --exclude='*.safetensors' --exclude='*.pt' . 2>/dev/null
log "packed: $(ls "$OUT/w" | tr '\n' ' ')"
