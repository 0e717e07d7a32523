#!/usr/bin/env bash
# The CPU training behind the shipped `cpu` weights, in the order it ran (2026-11-25 and -26, 2 shared
# cores). Every stage resumes from runs/<name>/ckpt.pt when re-run; the plan (steps or minutes) is
# stored in the checkpoint, so a resume continues it. See sccdm/zoo/README.md for wall times.
# For a fresh model in one command use the recipe instead: sccdm train recipe --preset cpu --minutes N.
set -euo pipefail
cd "$(dirname "$0")/.."
T="${THREADS:-1}"

# --- 2026-11-25: the first weights (AWGN + Rayleigh mix, refiner v1) -------------------------------
sccdm train codec    --preset cpu --data data --out runs/codec-cpu    --epochs 7.5 --batch 64 --threads "$T"
sccdm train deepjscc --preset cpu --data data --out runs/deepjscc-cpu --epochs 6 --batch 64 --threads "$T"

# --- 2026-11-26: AWGN fine-tune of that codec, refiner v2, the converged DeepJSCC baseline ----------
# (runs/codec-cpu-shipped and runs/deepjscc-paper-awgn-gpu hold the zoo files as model.safetensors +
#  config.json: the shipped sc-cdm-cpu codec and the H100-trained deepjscc-paper-awgn)
sccdm train codec --preset cpu --data data --init runs/codec-cpu-shipped --channel awgn --minutes 75 \
  --batch 64 --lr 3e-4 --warmup 0.01 --threads "$T" --val 500 --val-every 400 --out runs/codec-cpu-awgn
# refiner stage 1: 12 min on the shipped codec, then 18 min more on a snapshot of the fine-tuned one
sccdm train refine1 --preset cpu --data data --codec runs/codec-cpu-shipped --channel awgn --minutes 12 \
  --batch 32 --lr 5e-4 --threads "$T" --val 200 --val-every 200 --out runs/exp-refine1-cpu
sccdm train refine1 --preset cpu --data data --codec runs/codec-cpu-awgn-snap --init runs/exp-refine1-cpu \
  --channel awgn --minutes 18 --batch 32 --lr 3e-4 --threads "$T" --val 500 --val-every 300 --out runs/refine1-cpu-v2
# refiner stage 2: student from the teacher, restorer frozen
sccdm train refine2 --preset cpu --data data --codec runs/codec-cpu-awgn-snap --init runs/refine1-cpu-v2 \
  --channel awgn --minutes 8 --batch 32 --lr 5e-4 --threads "$T" --val 500 --val-every 200 --stage2 frozen \
  --out runs/refine2-cpu-v2
# DeepJSCC: the H100 run (70 s, still rising) continued on the CPU with batch 64
sccdm train deepjscc --preset paper --data data --init runs/deepjscc-paper-awgn-gpu --channel awgn --minutes 48 \
  --batch 64 --lr 2e-4 --warmup 0.02 --threads "$T" --val 1000 --val-every 1000 --out runs/deepjscc-paper-awgn-cpuft

# --- 2026-11-26/27: the Rayleigh models (sc-cdm-cpu-rayleigh) ---------------------------------------
# (runs/codec-cpu-awgn-final: the shipped sc-cdm-cpu codec)
sccdm train codec --preset cpu --data data --init runs/codec-cpu-awgn-final --channel rayleigh --minutes 28 \
  --batch 64 --lr 1.5e-4 --warmup 0.02 --threads "$T" --val 500 --val-every 400 --log-every 100 --out runs/codec-cpu-rayleigh
# its own refiner (2026-11-27): sc-cdm-cpu's refiner, stage 1 then stage 2 on this codec's Rayleigh outputs
sccdm train refine1 --preset cpu --data data --codec runs/codec-cpu-rayleigh --init runs/refine2-cpu-v2 \
  --channel rayleigh --minutes 50 --batch 32 --lr 3e-4 --threads "$T" --val 500 --val-every 300 --out runs/refine1-cpu-rayleigh
sccdm train refine2 --preset cpu --data data --codec runs/codec-cpu-rayleigh --init runs/refine1-cpu-rayleigh \
  --channel rayleigh --minutes 15 --batch 32 --lr 5e-4 --threads "$T" --val 500 --val-every 300 --out runs/refine2-cpu-rayleigh

# --- 2026-11-27: the Rayleigh codec on per-symbol fading (sc-cdm-cpu-rayleigh-fast), first made for
#     benchmarks/delay_spread_bound.py (now the zoo's sc-cdm-cpu-rayleigh-fast codec, sha256 6332640d...)
sccdm train codec --preset cpu --data data --init runs/codec-cpu-rayleigh --channel rayleigh --fading fast --minutes 35 \
  --batch 64 --lr 1.5e-4 --warmup 0.02 --threads "$T" --val 500 --val-every 400 --log-every 100 --out runs/codec-cpu-fast

# --- 2026-11-27: DeepJSCC, one model per SNR (benchmarks/deepjscc_per_snr.py; fp16 copies in
#     checkpoints/deepjscc-per-snr/snrS): the converged SNR-adaptive baseline fine-tuned at one fixed SNR each
for s in 0 3 6 9 12 15; do
  sccdm train deepjscc --preset paper --data data --init runs/deepjscc-paper-awgn-cpuft --channel awgn --snr-min $s \
    --snr-max $s --minutes 11 --batch 64 --lr 1e-4 --warmup 0.02 --threads "$T" --val 1000 --val-every 2000 \
    --log-every 500 --out runs/deepjscc-snr$s
done

# --- 2026-11-27: the first CIFAR model for CBR 1/48, 1/24, 1/12 (sc-cdm-cpu-rate) and the single-CBR models it was
#     measured against (benchmarks/rate_cifar.py; their fp16 copies were checkpoints/rate-cpu/cC until commit
#     ad748c3): same init (the then sc-cdm-cpu codec as runs/cpu-codec), same recipe and time; --channels C keeps
#     the init's first C latent channels. The --rate-weights 1,1,2 run (runs/cpu-rate-w) was the one shipped.
rate=(--preset cpu --data data --init runs/cpu-codec --channel awgn --minutes 25 --batch 64 --lr 3e-4 --warmup 0.02
      --threads "$T" --val 500 --val-every 400 --log-every 100)
sccdm train codec "${rate[@]}" --rates 8,16,32 --out runs/cpu-rate
for c in 8 16; do sccdm train codec "${rate[@]}" --channels $c --out runs/cpu-c$c; done

# --- 2026-11-27, for the next sc-cdm-cpu (the 1/12 reference above was +0.11..+0.14 dB over it): that codec
#     27 min more (now sc-cdm-cpu's codec), and sc-cdm-cpu's refiner through stage 1 on its outputs
sccdm train codec --preset cpu --data data --init runs/cpu-c32 --channel awgn --minutes 27 --batch 64 --lr 2e-4 \
  --warmup 0.02 --threads "$T" --val 500 --val-every 400 --log-every 100 --out runs/cpu-c32b
sccdm train refine1 --preset cpu --data data --codec runs/cpu-c32 --init runs/cpu-refiner --channel awgn --minutes 27 \
  --batch 32 --lr 3e-4 --threads "$T" --val 500 --val-every 300 --out runs/refine1-c32

# --- 2026-11-27 (later): the new sc-cdm-cpu = runs/cpu-c32b's codec + this refiner (stage 2 on that codec)
sccdm train refine2 --preset cpu --data data --codec runs/cpu-c32b --init runs/refine1-c32 --channel awgn --minutes 18 \
  --batch 32 --lr 5e-4 --threads "$T" --val 500 --val-every 300 --out runs/refine2-c32b
# and the new sc-cdm-cpu-rayleigh from it: the codec on Rayleigh block fading (served), then the former Rayleigh
# refiner through stage 1 and stage 2 on its outputs (not served: sc-cdm-cpu's new refiner does as well there)
sccdm train codec --preset cpu --data data --init runs/cpu-c32b --channel rayleigh --minutes 28 \
  --batch 64 --lr 1.5e-4 --warmup 0.02 --threads "$T" --val 500 --val-every 400 --log-every 100 --out runs/ray-next-codec
sccdm train refine1 --preset cpu --data data --codec runs/ray-next-codec --init runs/refine2-cpu-rayleigh \
  --channel rayleigh --minutes 20 --batch 32 --lr 3e-4 --threads "$T" --val 500 --val-every 300 --out runs/ray-next-refine1
sccdm train refine2 --preset cpu --data data --codec runs/ray-next-codec --init runs/ray-next-refine1 \
  --channel rayleigh --minutes 12 --batch 32 --lr 5e-4 --threads "$T" --val 500 --val-every 300 --out runs/ray-next-refine2

# --- 2026-11-27 (later): the new sc-cdm-cpu-rate and its single-CBR references, all from the new sc-cdm-cpu codec
#     (runs/cpu-c32b), same recipe, the same 8,400 steps each (fp16 copies of c8, c16 in checkpoints/rate-cpu/;
#     checkpoints/rate-cpu/c32 is the start codec itself); benchmarks/rate_cifar.py compares them
rate=(--preset cpu --data data --init runs/cpu-c32b --channel awgn --steps 8400 --batch 64 --lr 3e-4 --warmup 0.02
      --threads "$T" --val 500 --val-every 1400 --log-every 100)
sccdm train codec "${rate[@]}" --rates 8,16,32 --rate-weights 1,1,2 --out runs/rate-next
for c in 8 16; do sccdm train codec "${rate[@]}" --channels $c --out runs/rate-next-c$c; done

# --- 2026-11-27 (last): the next sc-cdm-cpu-rayleigh-fast: the new Rayleigh codec on per-symbol fading
#     (its fp16 copy, checkpoints/fast-next/, is in git history at b2e9649)
sccdm train codec --preset cpu --data data --init runs/ray-next-codec --channel rayleigh --fading fast --minutes 33 \
  --batch 64 --lr 1.5e-4 --warmup 0.02 --threads "$T" --val 500 --val-every 400 --log-every 100 --out runs/fast-next

# --- 2026-11-27 (fifth session): the CSI map. From runs/fast-next (checkpoints/fast-next), the same 9,000 steps
#     twice on the two cores: with the per-symbol SNR input (now the zoo's sc-cdm-cpu-rayleigh-fast codec) and
#     without it (the control, fp16 in checkpoints/fast-control/); benchmarks/csi_map.py compares them
fast=(--preset cpu --data data --init runs/fast-next --channel rayleigh --fading fast --steps 9000 --batch 64
      --lr 1.5e-4 --warmup 0.02 --threads "$T" --val 500 --val-every 1000 --log-every 100)
sccdm train codec "${fast[@]}" --csi-map --out runs/fast-csi
sccdm train codec "${fast[@]}" --out runs/fast-control

# --- 2026-11-27 (fifth session): sc-cdm-cpu-rate's codec 8,400 more steps with the same recipe (now the zoo's;
#     with its first 8,400 steps it had the two single-CBR references' steps together)
sccdm train codec --preset cpu --data data --init runs/rate-next --rates 8,16,32 --rate-weights 1,1,2 --channel awgn \
  --steps 8400 --batch 64 --lr 3e-4 --warmup 0.02 --threads "$T" --val 500 --val-every 1400 --log-every 100 --out runs/rate-more

# --- 2026-11-27 (fifth session): the served codec 70 min more (held-out 25.95 dB vs 25.81; now sc-cdm-cpu's codec,
#     shipped in the sixth session; runs/cpu-served-codec held the zoo's codec then, i.e. runs/cpu-c32b)
sccdm train codec --preset cpu --data data --init runs/cpu-c32b --channel awgn --minutes 70 --batch 64 --lr 2e-4 \
  --warmup 0.02 --threads "$T" --val 500 --val-every 1000 --log-every 100 --out runs/awgn-next
# and sc-cdm-cpu's refiner re-fitted on it: stage 1 (22 min) and stage 2 (7 min), 2 threads (now sc-cdm-cpu-rayleigh's
#     refiner; sc-cdm-cpu kept its own, which refines photographs better: sccdm/zoo/README.md)
sccdm train refine1 --preset cpu --data data --codec runs/awgn-next --init runs/refine2-c32b --channel awgn --minutes 22 \
  --batch 32 --lr 3e-4 --threads 2 --val 500 --val-every 600 --out runs/refine1-next
sccdm train refine2 --preset cpu --data data --codec runs/awgn-next --init runs/refine1-next --channel awgn --minutes 7 \
  --batch 32 --lr 5e-4 --threads 2 --val 500 --val-every 600 --out runs/refine2-next

# --- 2026-11-27 (sixth session): the campaign goes on: sc-cdm-cpu's codec (runs/awgn-next) 95 min more at lr 1.5e-4
#     (fp16 in checkpoints/awgn-next2/; sc-cdm-cpu's codec since 2026-11-28, with the refiner 2ccf00b5 kept)
sccdm train codec --preset cpu --data data --init runs/awgn-next --channel awgn --minutes 95 --batch 64 --lr 1.5e-4 \
  --warmup 0.02 --threads "$T" --val 500 --val-every 1000 --log-every 100 --out runs/awgn-next2
# and the new sc-cdm-cpu-rayleigh codec (shipped the same session; refiner: sc-cdm-cpu's, by path): the served
# sc-cdm-cpu codec (runs/awgn-next) 28 min on Rayleigh block fading, the recipe of runs/ray-next-codec above
sccdm train codec --preset cpu --data data --init runs/awgn-next --channel rayleigh --minutes 28 --batch 64 --lr 1.5e-4 \
  --warmup 0.02 --threads "$T" --val 500 --val-every 400 --log-every 100 --out runs/ray-next2
# then sc-cdm-cpu's refiner of the session before (runs/refine2-next, 4f6271a0) re-fitted on it: stage 1 on a snapshot
# of runs/awgn-next2 at 79 % (runs/awgn-next2-snap: scripts/export_fp16.py --from-ckpt), stage 2 on the final codec
# (fp16 in checkpoints/awgn-next2-refiner/; not shipped: check it on photographs first, see sccdm/zoo/README.md)
sccdm train refine1 --preset cpu --data data --codec runs/awgn-next2-snap --init runs/refine2-next --channel awgn \
  --minutes 25 --batch 32 --lr 3e-4 --threads "$T" --val 500 --val-every 600 --out runs/refine1-next2
sccdm train refine2 --preset cpu --data data --codec runs/awgn-next2 --init runs/refine1-next2 --channel awgn --minutes 8 \
  --batch 32 --lr 5e-4 --threads "$T" --val 500 --val-every 600 --out runs/refine2-next2

# --- 2026-11-28: and on: the shipped codec (runs/awgn-next2) 75 min more at lr 1e-4 (sc-cdm-cpu's codec since 2026-11-28,
#     seventh session; runs/cpu-served-refiner held the zoo's refiner then, 2ccf00b5)
sccdm train codec --preset cpu --data data --init runs/awgn-next2 --channel awgn --minutes 75 --batch 64 --lr 1e-4 \
  --warmup 0.02 --threads "$T" --val 500 --val-every 1000 --log-every 100 --out runs/awgn-next3
# and the Rayleigh sibling remade from the shipped codec, the recipe of runs/ray-next2 (sc-cdm-cpu-rayleigh's codec since
# 2026-11-28; refiner kept, 4f6271a0; log benchmarks/results/training_logs/codec-cpu-rayleigh-4.jsonl)
sccdm train codec --preset cpu --data data --init runs/awgn-next2 --channel rayleigh --minutes 28 --batch 64 --lr 1.5e-4 \
  --warmup 0.02 --threads "$T" --val 500 --val-every 400 --log-every 100 --out runs/ray-next3

# --- 2026-11-28 (seventh session): sc-cdm-cpu's refiner (2ccf00b5) re-fitted on runs/awgn-next3 (shipped with it), and
#     its twin on CIFAR-10 + 25,000 photo crops (not shipped: 0.01-0.04 dB lower on CIFAR-10, the same on Kodak); the two
#     ran side by side, one core each
python scripts/mix_photo_crops.py --cifar data --photos data/photos/train --out data/mix --n 25000
for d in data data/mix; do
  n=$([ "$d" = data ] && echo cif3 || echo mix3)
  sccdm train refine1 --preset cpu --data "$d" --codec runs/awgn-next3 --init runs/cpu-served-refiner --channel awgn \
    --minutes 35 --batch 32 --lr 3e-4 --threads "$T" --val 500 --val-every 600 --out runs/$n-r1
  sccdm train refine2 --preset cpu --data "$d" --codec runs/awgn-next3 --init runs/$n-r1 --channel awgn --minutes 8 \
    --batch 32 --lr 5e-4 --threads "$T" --val 500 --val-every 600 --out runs/$n-r2
done
# and sc-cdm-cpu-rayleigh's refiner (runs/refine2-next, 4f6271a0) and sc-cdm-cpu's new one (runs/cif3-r2) re-fitted on
# its Rayleigh codec's outputs, side by side (not shipped: -0.03..+0.02 dB against the served pair, 2,000 images)
for r in rayA:runs/refine2-next rayB:runs/cif3-r2; do
  sccdm train refine1 --preset cpu --data data --codec runs/ray-next3 --init "${r#*:}" --channel rayleigh --minutes 28 \
    --batch 32 --lr 3e-4 --threads "$T" --val 500 --val-every 600 --out runs/${r%%:*}-r1
  sccdm train refine2 --preset cpu --data data --codec runs/ray-next3 --init runs/${r%%:*}-r1 --channel rayleigh \
    --minutes 7 --batch 32 --lr 5e-4 --threads "$T" --val 500 --val-every 600 --out runs/${r%%:*}-r2
done

# --- 2026-11-28 (eighth session): sc-cdm-paper-photo's refiner, re-fitted on CPU. sc-cdm-cpu's refiner (runs/cif3-r2,
#     a812e25e) through both stages on the photo codec's outputs (its zoo files copied to runs/photo-served-codec as
#     model.safetensors + config.json), 128 px crops of the half-size training photos, held-out CBSD68 crops; one
#     thread each, side by side with a 64 px-crop twin (pr1b/pr2b: --crop 64 --batch 48; not shipped)
mkdir -p runs/s27/photos && ln -sfn "$PWD/.gpu/photos/train" runs/s27/photos/train \
  && ln -sfn "$PWD/data/photos/test/cbsd68" runs/s27/photos/test
sccdm train refine1 --preset cpu --data runs/s27/photos/train --crop 128 --codec runs/photo-served-codec \
  --init runs/cif3-r2 --channel awgn --snr-min -1 --snr-max 16 --minutes 50 --batch 12 --lr 3e-4 --threads 1 \
  --val 24 --val-every 150 --log-every 25 --out runs/s27/pr1
sccdm train refine2 --preset cpu --data runs/s27/photos/train --crop 128 --codec runs/photo-served-codec \
  --init runs/s27/pr1 --channel awgn --snr-min -1 --snr-max 16 --minutes 10 --batch 12 --lr 5e-4 --threads 1 \
  --val 24 --val-every 150 --log-every 25 --out runs/s27/pr2
python -m sccdm.zoo.publish sc-cdm-paper-photo refiner=runs/s27/pr2 --update --fp16

# --- 2026-11-28 (ninth session): sc-cdm-paper-photo's refiner continued from runs/s27/pr1 (stage 1, 50 more min,
#     lr 2e-4) with an MSE image loss (--pixel-loss mse: PSNR scores the posterior mean, L1 fits its median), then
#     its stage 2 (15 min); side by side with an L1 control (l1-r1/l1-r2: the same commands with --pixel-loss l1;
#     held-out CBSD68 crops, served prior: +0.225 vs +0.233 dB for MSE; not shipped)
for loss in mse l1; do
  sccdm train refine1 --preset cpu --data runs/s27/photos/train --crop 128 --codec runs/photo-served-codec \
    --init runs/s27/pr1 --channel awgn --snr-min -1 --snr-max 16 --minutes 50 --batch 12 --lr 2e-4 --threads 1 \
    --pixel-loss $loss --val 24 --val-every 150 --log-every 25 --out runs/s28/$loss-r1
  sccdm train refine2 --preset cpu --data runs/s27/photos/train --crop 128 --codec runs/photo-served-codec \
    --init runs/s28/$loss-r1 --channel awgn --snr-min -1 --snr-max 16 --minutes 15 --batch 12 --lr 5e-4 --threads 1 \
    --pixel-loss $loss --val 24 --val-every 150 --log-every 25 --out runs/s28/$loss-r2
done
python -m sccdm.zoo.publish sc-cdm-paper-photo refiner=runs/s28/mse-r2 --update --fp16
# stage 2 for 30 min instead of 15 (held-out +0.235 vs +0.233 dB; not shipped):
sccdm train refine2 --preset cpu --data runs/s27/photos/train --crop 128 --codec runs/photo-served-codec \
  --init runs/s28/mse-r1 --channel awgn --snr-min -1 --snr-max 16 --minutes 30 --batch 12 --lr 5e-4 --threads 1 \
  --pixel-loss mse --val 24 --val-every 150 --log-every 25 --out runs/s28/mse-r2long

# --- 2026-11-28 (tenth session). (1) sc-cdm-paper-photo's stage 2 with the restorer trained too (the paper's stage 2
#     freezes only N1-S1): --stage2 joint / anchored from runs/s28/mse-r1, 15 min each, side by side. Held-out CBSD68
#     crops +0.237 / +0.238 vs +0.233 (frozen, shipped); on Kodak (same draws) anchored moved the gain from 0/5 dB to
#     10/15 dB (+0.212/+0.297/+0.350/+0.369 vs +0.219/+0.299/+0.346/+0.354): not shipped.
for m in joint anchored; do
  sccdm train refine2 --preset cpu --data runs/s27/photos/train --crop 128 --codec runs/photo-served-codec \
    --init runs/s28/mse-r1 --channel awgn --snr-min -1 --snr-max 16 --minutes 15 --batch 12 --lr 5e-4 --threads 1 \
    --pixel-loss mse --stage2 $m --val 24 --val-every 150 --log-every 25 --out runs/s29/$m-r2
done
# the same on sc-cdm-cpu's refiner (CIFAR, 8 min as the shipped stage 2, 500 held-out images): anchored (L1) +0.141,
# frozen with MSE +0.135, joint with MSE +0.147 (prior-swap cost 0.004), against +0.137 for the shipped one; not
# shipped (+0.01 dB; logs refine2-cpu-{anchored,mse,mse-joint}-cif3.jsonl)
sccdm train refine2 --preset cpu --data data --codec runs/awgn-next3 --init runs/cif3-r1 --channel awgn --minutes 8 \
  --batch 32 --lr 5e-4 --threads 1 --val 500 --val-every 600 --stage2 anchored --out runs/s29/cif-anch-r2
for m in frozen joint; do
  sccdm train refine2 --preset cpu --data data --codec runs/awgn-next3 --init runs/cif3-r1 --channel awgn --minutes 8 \
    --batch 32 --lr 5e-4 --threads 1 --val 500 --val-every 600 --stage2 $m --pixel-loss mse --out runs/s29/cif-mse-$m-r2
done
# (2) sc-cdm-paper-photo-rayleigh's refiner, re-fitted on its own codec's Rayleigh outputs (the zoo codec copied to
#     runs/photo-rayleigh-codec as model.safetensors + config.json), from the AWGN photo refiner's MSE stage 1
mkdir -p runs/photo-rayleigh-codec && cp sccdm/zoo/weights/sc-cdm-paper-photo-rayleigh/codec.json runs/photo-rayleigh-codec/config.json \
  && cp sccdm/zoo/weights/sc-cdm-paper-photo-rayleigh/codec.safetensors runs/photo-rayleigh-codec/model.safetensors
sccdm train refine1 --preset cpu --data runs/s27/photos/train --crop 128 --codec runs/photo-rayleigh-codec \
  --init runs/s28/mse-r1 --channel rayleigh --snr-min -1 --snr-max 16 --minutes 35 --batch 12 --lr 2e-4 --threads 1 \
  --pixel-loss mse --val 24 --val-every 150 --log-every 25 --out runs/s29/ray-r1
sccdm train refine2 --preset cpu --data runs/s27/photos/train --crop 128 --codec runs/photo-rayleigh-codec \
  --init runs/s29/ray-r1 --channel rayleigh --snr-min -1 --snr-max 16 --minutes 12 --batch 12 --lr 5e-4 --threads 1 \
  --pixel-loss mse --val 24 --val-every 150 --log-every 25 --out runs/s29/ray-r2
python -m sccdm.zoo.publish sc-cdm-paper-photo-rayleigh refiner=runs/s29/ray-r2 --update --fp16

# --- 2026-11-28 (eleventh session). Restorer capacity: the cpu preset grown deeper at its coarse levels (preset
#     cpu-deep, blocks (1, 2, 4, 6): 2.6x the restorer's parameters for about +20 % time per step; the new blocks start
#     as the identity, sccdm.models.refine.grow_state_dict). (1) sc-cdm-paper-photo's refiner from runs/s28/mse-r1:
#     held-out teacher-prior gain +0.320 vs +0.298 after stage 1.
sccdm train refine1 --preset cpu-deep --data runs/s27/photos/train --crop 128 --codec runs/photo-served-codec \
  --init runs/s28/mse-r1 --channel awgn --snr-min -1 --snr-max 16 --minutes 68 --batch 12 --lr 3e-4 --threads 1 \
  --pixel-loss mse --val 24 --val-every 150 --log-every 25 --out runs/s30/deep-r1
sccdm train refine2 --preset cpu-deep --data runs/s27/photos/train --crop 128 --codec runs/photo-served-codec \
  --init runs/s30/deep-r1 --channel awgn --snr-min -1 --snr-max 16 --minutes 18 --batch 12 --lr 5e-4 --threads 1 \
  --pixel-loss mse --val 24 --val-every 150 --log-every 25 --out runs/s30/deep-r2
# held-out student gain +0.250 vs +0.233 (shipped, runs/s28/mse-r2), chosen before Kodak was measured
python -m sccdm.zoo.publish sc-cdm-paper-photo refiner=runs/s30/deep-r2 --update --fp16
# (2) sc-cdm-cpu's CIFAR refiner from runs/cif3-r1, side by side: stage 1 teacher-prior gain +0.683 vs +0.578, but
#     the student after stage 2 only +0.150 vs +0.137 (500 held-out images; the student, not the restorer, limits it
#     on CIFAR); not shipped (logs refine{1,2}-cpu-deep-cif3.jsonl)
sccdm train refine1 --preset cpu-deep --data data --codec runs/awgn-next3 --init runs/cif3-r1 --channel awgn \
  --minutes 40 --batch 32 --lr 3e-4 --threads 1 --val 500 --val-every 600 --out runs/s30/cdeep-r1
sccdm train refine2 --preset cpu-deep --data data --codec runs/awgn-next3 --init runs/s30/cdeep-r1 --channel awgn \
  --minutes 8 --batch 32 --lr 5e-4 --threads 1 --val 500 --val-every 600 --out runs/s30/cdeep-r2

# --- 2026-11-28 (twelfth session). At 0 dB the served prior lost to one that knows only the SNR; and 0 dB is where
#     the refinement is smallest. (1) Stage 1 continued from runs/s30/deep-r1 with low SNRs drawn more often
#     (--snr-skew 1.6: 52 % of draws below 5 dB), on 128 and on 192 px crops side by side:
for c in "128 12 skew-r1" "192 6 skew192-r1"; do set -- $c
  sccdm train refine1 --preset cpu-deep --data runs/s27/photos/train --codec runs/photo-served-codec \
    --init runs/s30/deep-r1 --channel awgn --snr-min -1 --snr-max 16 --snr-skew 1.6 --lr 2e-4 --threads 1 \
    --pixel-loss mse --val 24 --val-every 150 --log-every 25 --crop $1 --batch $2 --minutes 45 --out runs/s31/$3
done
# (2) stage 2 with a prior that also reads the SNR (--snr-prior: RefinerConfig.snr_prior), from each:
for r in skew skew192; do
  sccdm train refine2 --preset cpu-deep --data runs/s27/photos/train --crop 128 --codec runs/photo-served-codec \
    --channel awgn --snr-min -1 --snr-max 16 --snr-skew 1.6 --minutes 18 --batch 12 --lr 5e-4 --threads 1 \
    --pixel-loss mse --val 24 --val-every 150 --log-every 25 --snr-prior --init runs/s31/$r-r1 --out runs/s31/$r-snr-r2
done
# chosen on CBSD68 256 px crops at 0 and 10 dB (scripts/compare_refiners.py --codec runs/photo-served-codec --snr 0 10) before Kodak: skew192-snr-r2
python -m sccdm.zoo.publish sc-cdm-paper-photo refiner=runs/s31/skew192-snr-r2 --update --fp16
# (3) the ablation of the SNR input: the same stage 2 from the same stage 1, the same 227 steps, without --snr-prior
sccdm train refine2 --preset cpu-deep --data runs/s27/photos/train --crop 128 --codec runs/photo-served-codec \
  --channel awgn --snr-min -1 --snr-max 16 --snr-skew 1.6 --steps 227 --batch 12 --lr 5e-4 --threads 1 \
  --pixel-loss mse --val 24 --val-every 150 --log-every 25 --init runs/s31/skew192-r1 --out runs/s31/skew192-plain-r2
# (the stage 1 of the shipped refiner, for a next session's continuation: fp16 in checkpoints/photo-refine1-skew192,
#  python scripts/export_fp16.py runs/s31/skew192-r1 checkpoints/photo-refine1-skew192/model.safetensors \
#    --config checkpoints/photo-refine1-skew192/config.json)

# --- 2026-11-28 (thirteenth session). Stage 1 continued 50 more min from the shipped refiner's stage 1
#     (checkpoints/photo-refine1-skew192 as committed at b1eb166: `git checkout b1eb166 -- checkpoints/photo-refine1-skew192`
#     to re-run this; the export at the end of this block overwrites it), skew 1.6 and skew 2.5 side by side; then
#     stage 2 with the SNR prior, 18 min.
for c in "1.6 a" "2.5 b"; do set -- $c
  sccdm train refine1 --preset cpu-deep --data runs/s27/photos/train --codec runs/photo-served-codec \
    --init checkpoints/photo-refine1-skew192 --channel awgn --snr-min -1 --snr-max 16 --snr-skew $1 --lr 1.5e-4 \
    --threads 1 --pixel-loss mse --val 24 --val-every 150 --log-every 25 --crop 192 --batch 6 --minutes 50 \
    --out runs/s32/$2-r1
  sccdm train refine2 --preset cpu-deep --data runs/s27/photos/train --crop 128 --codec runs/photo-served-codec \
    --channel awgn --snr-min -1 --snr-max 16 --snr-skew $1 --minutes 18 --batch 12 --lr 5e-4 --threads 1 \
    --pixel-loss mse --val 24 --val-every 150 --log-every 25 --snr-prior --init runs/s32/$2-r1 --out runs/s32/$2-snr-r2
done
# held-out (24 CBSD68 128 px crops, 1/7/13 dB) student gain: a +0.2717, b +0.2654, shipped before +0.2662;
# CBSD68 256 px crops at 0 / 10 dB (scripts/compare_refiners.py): a +0.216 / +0.288, b +0.218 / +0.277,
# shipped before +0.210 / +0.285; chosen before Kodak: a (logs refine{1,2}-photo-cpu-deep-skew{192,250}-cont*.jsonl)
python -m sccdm.zoo.publish sc-cdm-paper-photo refiner=runs/s32/a-snr-r2 --update --fp16
# its stage 1 replaces checkpoints/photo-refine1-skew192 (the next continuation starts there):
python scripts/export_fp16.py runs/s32/a-r1 checkpoints/photo-refine1-skew192/model.safetensors \
  --config checkpoints/photo-refine1-skew192/config.json

# --- 2026-11-29 (fourteenth session). Stage 2 continued from the shipped refiner (runs/s32/a-snr-r2, 93f51cf5):
#     refine2 --init from a refine2 export now keeps its student and SNR input. The restorer trained too, on the
#     served (diffusion) prior (joint) or on both priors (anchored), 192 px crops, low SNRs drawn more often
#     (skew 2.0), 55 min, one thread each, side by side. Held-out (24 CBSD68 192 px crops, 1/7/13 dB) student gain:
#     joint +0.298, anchored +0.293, the shipped refiner +0.2865 on the same crops.
for m in joint anchored; do
  sccdm train refine2 --preset cpu-deep --data runs/s27/photos/train --crop 192 --batch 6 --codec runs/photo-served-codec \
    --channel awgn --snr-min -1 --snr-max 16 --snr-skew 2.0 --minutes 55 --lr 1.5e-4 --threads 1 --pixel-loss mse \
    --val 24 --val-every 100 --log-every 25 --stage2 $m --init runs/s32/a-snr-r2 --out runs/s33/$m-r2
done
# CBSD68 256 px crops at 0 / 10 dB (scripts/compare_refiners.py): joint +0.225 / +0.297, anchored +0.221 / +0.292,
# shipped before +0.216 / +0.288; chosen before Kodak: joint
python -m sccdm.zoo.publish sc-cdm-paper-photo refiner=runs/s33/joint-r2 --update --fp16
# (a next continuation can start from the shipped refiner itself: copy the zoo's refiner.json / refiner.safetensors to
#  a folder as config.json / model.safetensors and pass it to refine2 --init)
# stage 2 continued once more, 45 min at lr 1e-4, from the shipped refiner (a zoo copy as above in runs/s33/shipped):
# held-out +0.3007 vs +0.298; not measured on CBSD68 / Kodak this session. Its fp16 is kept in
# checkpoints/photo-refine2-joint2 (compare it next with scripts/compare_refiners.py; it is a refine2 export, so
# refine2 --init continues it)
sccdm train refine2 --preset cpu-deep --data runs/s27/photos/train --crop 192 --batch 6 --codec runs/photo-served-codec \
  --channel awgn --snr-min -1 --snr-max 16 --snr-skew 2.0 --minutes 45 --lr 1e-4 --threads 1 --pixel-loss mse \
  --val 24 --val-every 100 --log-every 25 --stage2 joint --init runs/s33/shipped --out runs/s33/joint2-r2
python scripts/export_fp16.py runs/s33/joint2-r2 checkpoints/photo-refine2-joint2/model.safetensors \
  --config checkpoints/photo-refine2-joint2/config.json
# CBSD68 256 px crops at 0 / 10 dB (scripts/compare_refiners.py, fp16): +0.229 / +0.298 (shipped +0.225 / +0.297)

# --- 2026-11-29 (fifteenth session). sc-cdm-paper-photo's stage 2 continued a third time, 50 min at lr 1e-4 from the
#     run above (runs/s33/joint2-r2): CBSD68 256 px crops at 0 / 10 dB +0.232 / +0.299 (shipped +0.225 / +0.297).
#     Shipped for both photo models (below); refine2 --init continues it from a zoo copy of the refiner.
sccdm train refine2 --preset cpu-deep --data runs/s27/photos/train --crop 192 --batch 6 --codec runs/photo-served-codec \
  --channel awgn --snr-min -1 --snr-max 16 --snr-skew 2.0 --minutes 50 --lr 1e-4 --threads 1 --pixel-loss mse \
  --val 24 --val-every 100 --log-every 25 --stage2 joint --init runs/s33/joint2-r2 --out runs/s34/joint3-r2
# sc-cdm-paper-photo-rayleigh's refiner. Tried: the shipped AWGN photo refiner (a zoo copy in runs/s33/shipped) fine-tuned
# on this codec's Rayleigh block-fading outputs, stage 2 joint, 50 min, one thread beside the run above (runs/photo-rayleigh-codec
# = the zoo's sc-cdm-paper-photo-rayleigh codec.json / codec.safetensors as config.json / model.safetensors;
# log training_logs/refine2-photo-rayleigh-cpu-deep-joint.jsonl):
sccdm train refine2 --preset cpu-deep --data runs/s27/photos/train --crop 192 --batch 6 --codec runs/photo-rayleigh-codec \
  --channel rayleigh --snr-min -1 --snr-max 16 --snr-skew 2.0 --minutes 50 --lr 1.5e-4 --threads 1 --pixel-loss mse \
  --val 24 --val-every 100 --log-every 25 --stage2 joint --init runs/s33/shipped --out runs/s34/ray-joint-r2
# Rayleigh, this codec, gain over NSF: CBSD68 256 px crops at 0 / 10 dB (compare_refiners.py --channel rayleigh) and
# held-out 128 px crops at 1 / 7 / 13 dB (holdout_refiner.py --channel rayleigh):
#   shipped before (d696ddc0, cpu preset, Rayleigh-fitted)   +0.118 / +0.206   +0.186
#   AWGN photo refiner 8573ffff, unchanged                    +0.160 / +0.257   +0.214
#   the Rayleigh fine-tune above                              +0.166 / +0.231   +0.217
#   joint3 (AWGN-trained, above), unchanged                   +0.167 / +0.260   +0.217   <- shipped
python -m sccdm.zoo.publish sc-cdm-paper-photo-rayleigh refiner=runs/s34/joint3-r2 --update --fp16
python -m sccdm.zoo.publish sc-cdm-paper-photo refiner=runs/s34/joint3-r2 --update --fp16
# (then the Rayleigh entry's refiner was pointed at ../sc-cdm-paper-photo/refiner.safetensors: one file for both)

# --- 2026-11-29 (sixteenth session). sc-cdm-cpu's CIFAR refiner with the photo refiner's recipe: grown to cpu-deep,
#     an SNR input to the prior (--snr-prior), stage 2 training the restorer on the served prior (--stage2 joint, MSE),
#     low SNRs drawn more often; 75 min on one thread from the shipped refiner (runs/s35/cif-ref = the zoo's sc-cdm-cpu
#     refiner.json / refiner.safetensors as config.json / model.safetensors; runs/s35/cif-codec likewise its codec).
#     Held-out gain (500 test images) +0.196 vs +0.137 for the shipped one; shipped (log refine2-cpu-deep-snr-joint.jsonl)
sccdm train refine2 --preset cpu-deep --data data --codec runs/s35/cif-codec --init runs/s35/cif-ref --channel awgn \
  --snr-prior --stage2 joint --pixel-loss mse --snr-skew 1.6 --minutes 75 --batch 32 --lr 3e-4 --threads 1 --val 500 \
  --val-every 600 --out runs/s35/cif-deep-snrj-r2
python -m sccdm.zoo.publish sc-cdm-cpu refiner=runs/s35/cif-deep-snrj-r2 --update --fp16
# beside it, a bigger restorer: sc-cdm-paper-awgn's paper-s refiner (10 M parameters) re-fitted on this codec, stage 1
# 35 min then the same stage 2, 32 min (stopped in its final validation): held-out teacher gain +0.34, served +0.132
# at step 600 of 700; not shipped (logs refine1-cpu-paper-s.jsonl, refine2-cpu-paper-s-snr-joint.jsonl)
sccdm train refine1 --preset paper-s --data data --codec runs/s35/cif-codec --init runs/s35/paper-ref --channel awgn \
  --minutes 35 --batch 32 --lr 3e-4 --threads 1 --val 500 --val-every 400 --out runs/s35/ps-r1
sccdm train refine2 --preset paper-s --data data --codec runs/s35/cif-codec --init runs/s35/ps-r1 --channel awgn \
  --snr-prior --stage2 joint --pixel-loss mse --snr-skew 1.6 --minutes 32 --batch 32 --lr 3e-4 --threads 1 --val 500 \
  --val-every 300 --out runs/s35/ps-snrj-r2

# --- 2026-11-29 (seventeenth session). That refiner's stage 2 continued 70 min at half the learning rate (it was still
#     rising): held-out gain +0.209 vs +0.196 (log refine2-cpu-deep-snr-joint-2.jsonl); shipped, and served by the two
#     Rayleigh entries too (their refiner parts name ../sc-cdm-cpu/refiner.*): on their fading outputs it beats their
#     former refiners and a twin trained 65 min on Rayleigh from the same start (held-out, 500 test images, 1/7/13 dB):
#                                          block fading (sc-cdm-cpu-rayleigh)   fast fading (-fast, CSI map)
#       former refiners (4f6271a0 / 2ccf00b5)      +0.102                            +0.129
#       runs/s35/cif-deep-snrj-r2, unchanged       +0.158                              -
#       the Rayleigh twin (runs/s36/ray-r1)        +0.163                            +0.184
#       runs/s36/cif-r3 (AWGN)                     +0.167                            +0.195   <- shipped
#     (runs/s36/ray-codec = sc-cdm-cpu-rayleigh's codec as a run folder; log refine2-cpu-deep-snr-joint-rayleigh.jsonl)
sccdm train refine2 --preset cpu-deep --data data --codec runs/s35/cif-codec --init runs/s35/cif-deep-snrj-r2 --channel awgn \
  --snr-prior --stage2 joint --pixel-loss mse --snr-skew 1.6 --minutes 70 --batch 32 --lr 1.5e-4 --threads 1 --val 500 \
  --val-every 600 --out runs/s36/cif-r3
sccdm train refine2 --preset cpu-deep --data data --codec runs/s36/ray-codec --init runs/s35/cif-deep-snrj-r2 \
  --channel rayleigh --snr-prior --stage2 joint --pixel-loss mse --minutes 65 --batch 32 --lr 1.5e-4 --threads 1 \
  --val 500 --val-every 600 --out runs/s36/ray-r1
python -m sccdm.zoo.publish sc-cdm-cpu refiner=runs/s36/cif-r3 --update --fp16

# --- 2026-11-29 (eighteenth session). Is sc-cdm-cpu's codec plateau capacity? Grown to cpu-deep (depths 2,4, new blocks
#     the identity) against a control restarted on the same plan, 115 min each on one thread, side by side
#     (benchmarks/results/core/codec_growth/README.md): NSF on 2,000 test images at 10 dB 28.10 -> 28.16 (control)
#     / 28.18 (grown). fp16 of the grown one in checkpoints/cpu-deep-codec (not shipped: its refiner is re-fitted next)
sccdm train codec --preset cpu-deep --data data --init runs/s35/cif-codec --channel awgn --minutes 115 --batch 64 \
  --lr 1e-4 --warmup 0.02 --threads 1 --val 500 --val-every 1000 --log-every 100 --out runs/s37/grow-deep
sccdm train codec --preset cpu --data data --init runs/s35/cif-codec --channel awgn --minutes 115 --batch 64 \
  --lr 1e-4 --warmup 0.02 --threads 1 --val 500 --val-every 1000 --log-every 100 --out runs/s37/grow-control
# sc-cdm-cpu's refiner re-fitted on the grown codec (stage 2 continued from runs/s36/cif-r3, 33 min)
sccdm train refine2 --preset cpu-deep --data data --codec runs/s37/grow-deep --init runs/s36/cif-r3 --channel awgn \
  --snr-prior --stage2 joint --pixel-loss mse --snr-skew 1.6 --minutes 33 --batch 32 --lr 1.5e-4 --threads 1 --val 500 \
  --val-every 300 --out runs/s37/deep-r1

# --- 2026-11-29 (nineteenth session). The grown codec (runs/s37/grow-deep) 70 min more at half the learning rate, and
#     the same growth for sc-cdm-cpu-rayleigh's codec (runs/s36/ray-codec = its zoo files as a run folder), side by side
#     on one thread each
sccdm train codec --preset cpu-deep --data data --init runs/s37/grow-deep --channel awgn --minutes 70 --batch 64 \
  --lr 5e-5 --warmup 0.02 --threads 1 --val 500 --val-every 1000 --log-every 100 --out runs/s38/deep2
sccdm train codec --preset cpu-deep --data data --init runs/s36/ray-codec --channel rayleigh --minutes 70 --batch 64 \
  --lr 1e-4 --warmup 0.02 --threads 1 --val 500 --val-every 1000 --log-every 100 --out runs/s38/ray-deep
