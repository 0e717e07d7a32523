#!/usr/bin/env bash
# The training that produced the shipped `cpu` weights (sccdm/zoo/weights), in order.
# On 2 shared CPU cores; see sccdm/zoo/README.md for wall times. Every stage resumes from
# runs/<name>/ckpt.pt when re-run, and --max-minutes stops a stage (and exports) on a budget.
set -euo pipefail
cd "$(dirname "$0")/.."
T="${THREADS:-1}"
# Swin JSCC codec (was started with --epochs 14 and resumed at step 4200 with --epochs 7.5,
# which shortened its cosine schedule; the command below reproduces the final schedule).
sccdm train codec    --preset cpu --data data --out runs/codec-cpu    --epochs 7.5 --batch 64 --threads "$T"
# CNN DeepJSCC baseline, same SNR range and channel mix (started with --epochs 14, resumed at 2200 with 6)
sccdm train deepjscc --preset cpu --data data --out runs/deepjscc-cpu --epochs 6 --batch 64 --threads "$T"
# Refinement, stage 1 (teacher N1 + N2, L1) and stage 2 (diffusion + student, teacher frozen)
sccdm train refine1 --preset cpu --data data --out runs/refine1-cpu --codec runs/codec-cpu --epochs 0.5 \
  --batch 32 --threads "$T" --max-minutes 16
sccdm train refine2 --preset cpu --data data --out runs/refine2-cpu --codec runs/codec-cpu \
  --init runs/refine1-cpu --epochs 0.5 --batch 32 --threads "$T" --max-minutes 16
python -m sccdm.zoo.publish sc-cdm-cpu codec=runs/codec-cpu refiner=runs/refine2-cpu \
  --description "SC-CDM, cpu preset: Swin JSCC (C=32, CBR 1/12 on 32x32) + compact diffusion refiner"
python -m sccdm.zoo.publish deepjscc-cpu codec=runs/deepjscc-cpu \
  --description "CNN DeepJSCC baseline, c=8 (CBR 1/12 on 32x32), trained over 1-13 dB"
