#!/usr/bin/env bash
# One accelerator call for issue 10's rate goal on photos: from one fixed-rate photo codec, train side by
# side, with the same recipe and the same number of steps, a rate-adaptive codec (--rates 8,16,32) and a
# single-CBR codec for each of its rates (--channels 8|16|32: 1/48, 1/24, 1/12). The runs share the card,
# so the budget is counted in steps (--steps), not minutes. Each comes back as fp16 (< 16 MiB each);
# `benchmarks/rate_cifar.py --data data/photos/test/kodak --rate DIR/rate --singles DIR/c{c} ...` then compares
# them on Kodak.
#
#   bash scripts/gpu_rate_refs.sh OUT_DIR [STEPS] [MINUTES_CAP]
#
# Carried in .gpu/: init-codec-2/ (model.safetensors + config.json: the start codec, sc-cdm-paper-photo's)
# and photos/. Env: RUNS ("rate c8 c16 c32"), CROP (128), BATCH (64), LR (2e-4), LIMIT (photos, for a
# smoke run), INIT (.gpu/init-codec-2; a "{r}" in it names each run's own start, e.g. to continue all four:
# INIT='checkpoints/rate-photo-h100/{r}' carried), RATE_FLAGS (more flags for the rate run, e.g.
# "--rate-weights 1,1,2"), DATA (.gpu/photos/train).
# First call (2026-11-28, one H100, 298 s): 1,600 steps each; results in benchmarks/results/photos/rate_kodak.md.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:?OUT dir}"); STEPS=${2:-1500}; CAP=${3:-8.5}
INIT=${INIT:-.gpu/init-codec-2}; DATA=${DATA:-.gpu/photos/train}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 SCCDM_CACHE=${SCCDM_CACHE:-/tmp/sccdm-cache}
(nvidia-smi -L 2>&1 || true) > "$OUT/train.log"
init_of() { echo "${INIT//\{r\}/$1}"; }  # run r's start folder
for r in ${RUNS:-rate c8 c16 c32}; do
  echo "$r init $(init_of $r) $(sha256sum "$(init_of $r)/model.safetensors" | cut -c1-64) steps $STEPS" >> "$OUT/train.log"
done
pids=()
for r in ${RUNS:-rate c8 c16 c32}; do
  case $r in rate) flag=(--rates 8,16,32 ${RATE_FLAGS:-});; c*) flag=(--channels "${r#c}");; esac
  # --max-minutes: a run that would overrun the call stops at a checkpoint (its plan then unfinished: said in
  # the log) instead of being killed with nothing to bring back
  python3 -m sccdm.train codec --preset paper --out "/tmp/rr-$r" --steps "$STEPS" --warmup 0.03 \
    --batch "${BATCH:-64}" --lr "${LR:-2e-4}" --init "$(init_of $r)" --channel awgn --data "$DATA" \
    --crop "${CROP:-128}" "${flag[@]}" --val 24 --val-every 100000 --log-every 100 --ckpt-every 250 \
    --max-minutes "$CAP" ${LIMIT:+--limit "$LIMIT"} > "$OUT/$r.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; echo "run pid $p rc=$?" >> "$OUT/train.log"; done
for r in ${RUNS:-rate c8 c16 c32}; do  # a run stopped by --max-minutes is exported from its last checkpoint
  python3 scripts/export_fp16.py "/tmp/rr-$r" "$OUT/$r/model.safetensors" --from-ckpt >> "$OUT/train.log" 2>&1 \
    || echo "$r: no weights" >> "$OUT/train.log"
done
tail -n 5 "$OUT"/*.log
# the trip back takes 8 files: four models, and the logs and configs in one tarball
(cd "$OUT" && tar -czf meta.tgz ./*.log ./*/config.json && rm -f ./*.log ./*/config.json)
ls -la "$OUT" "$OUT"/*/
