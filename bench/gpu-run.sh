#!/usr/bin/env bash
# Every matmul check of a GPU session in one device call (shared/gpu/README.md):
#   on the work machine: npm ci && bash ../shared/gpu/pack.sh
#   device tool: run(carry [".gpu"], timeout_s 590,
#                    command "bash .gpu/enter.sh bash bench/gpu-run.sh")
# Writes into $OUT: device.txt, shapes.json, torch.jsonl (cuBLAS fp32 and TF32 on the same
# shapes), sweep.jsonl (our variants in ONE process over every shape: the crash check), tfjs.jsonl
# (TF.js beside our picked kernel), isolated.jsonl (only if the sweep died: the remaining shapes
# one process each), crash.txt (the lavapipe reproducer run on the GPU), train_step.json/.err
# (training steps of WRN-40-2 at batch 128 and the fmnist WRN-10-1 beside PyTorch on the same GPU,
# fp32, TF32 off, with host time per step and one profiled step: issue 19), and summary.txt.
# Budget: at most ~9.5 minutes of the 15 (timeouts 100 + 200 + 90 + 60 + 120 s); each step has its own timeout so one hang cannot eat it all.
set -uo pipefail
OUT=${OUT:-/tmp/goe-out}
mkdir -p "$OUT"
log() { echo "== $(date +%T) $*" | tee -a "$OUT/summary.txt"; }

# Issue 16's GPU rows instead: `bash bench/gpu-run.sh vit` (device tool: command
# "bash .gpu/enter.sh bash bench/gpu-run.sh vit", timeout_s 590). ViT-B/16 forward (batch 1, 8) and
# training step, ResNet-101 forward and training step, at --train-batch 64, beside PyTorch on the
# same GPU (fp32, TF32 off; python3 there has CUDA torch), then BigGAN-deep-128 sampling (ours only:
# the BigGAN peer runs on the CPU). Writes vit_resnet.json/.err, biggan.json/.err, summary.txt.
# Then, in the time left, bench/train_step.ts's ViT-B/16 and ResNet-101 training steps and
# BigGAN-deep-128 sampling at batch 64 with host, record-only and dispatch columns, each beside
# PyTorch on the same GPU (fp32, TF32 off): train_step16.json/.err.
if [ "${1:-}" = vit ]; then
  { nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; node --version; } > "$OUT/device.txt" 2>&1
  log "device: $(head -1 "$OUT/device.txt")"
  log "vit_resnet (ours and PyTorch cuda)"
  timeout 360 node bench/vit_resnet.ts --json --cases=vit_fwd1,vit_fwd8,vit_train,resnet101_fwd1,resnet101_train --train-batch=64 --steps=3 \
    --python=python3 --torch-device=cuda --torch-steps=3 --torch-warmup=1 --torch-cases=vit_fwd1,vit_fwd8,vit_train,resnet101_fwd1,resnet101_train \
    > "$OUT/vit_resnet.json" 2> "$OUT/vit_resnet.err"
  log "vit_resnet rc=$?"
  grep -v '^Warning' "$OUT/vit_resnet.err" | tail -8 >> "$OUT/summary.txt"
  log "biggan-deep-128 sampling (ours)"
  timeout 150 node bench/biggan_deep_sample.ts --json --batches=1,8,32 --steps=2 --no-torch > "$OUT/biggan.json" 2> "$OUT/biggan.err"
  log "biggan rc=$?"
  grep -v '^Warning' "$OUT/biggan.err" | tail -5 >> "$OUT/summary.txt"
  # issue 16 item 5's rows in train_step.ts's columns; the timeout is what is left of ~575 s (at most 180)
  left=$((575 - SECONDS)); [ "$left" -gt 180 ] && left=180
  if [ "$left" -ge 45 ]; then
    log "train_step vit,resnet101,biggan128 batch 64 (ours and PyTorch cuda, ${left} s)"
    timeout "$left" node bench/train_step.ts --json --models vit,resnet101,biggan128 --batch 64 --steps 3 \
      --python=python3 --torch-device=cuda > "$OUT/train_step16.json" 2> "$OUT/train_step16.err"
    log "train_step16 rc=$?"
    grep -v '^Warning' "$OUT/train_step16.err" | tail -12 >> "$OUT/summary.txt"
  else
    log "train_step16 skipped: ${left} s left"
  fi
  log "done"
  exit 0
fi

{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader; node --version; } > "$OUT/device.txt" 2>&1
log "device: $(head -1 "$OUT/device.txt")"
node bench/matmul.ts --list-shapes > "$OUT/shapes.json"

# 1. PyTorch first (it needs no Dawn; if Node dies below, the peer numbers are already there)
log "torch"
timeout 100 python3 bench/torch_matmul.py "$OUT/shapes.json" --budget 0.25 > "$OUT/torch.jsonl" 2> "$OUT/torch.err"
log "torch rc=$? rows=$(grep -c '"status"' "$OUT/torch.jsonl")"

# 2. Our variants over every shape in one process: does the process survive a full sweep?
log "sweep (one process, all shapes, our variants)"
timeout 200 node bench/matmul.ts --json --all --no-tfjs --budget 0.15 --variants naive,tiled,reg4x4,reg8x8,reg16x8,skinny,auto > "$OUT/sweep.jsonl" 2> "$OUT/sweep.err"
rc=$?
log "sweep rc=$rc rows=$(grep -c '"status"' "$OUT/sweep.jsonl") (one per shape and variant that applies)"
tail -3 "$OUT/sweep.err" >> "$OUT/summary.txt"

# 4. TF.js beside our picked kernel (its own process: TF.js shares our device)
log "tfjs"
timeout 90 node bench/matmul.ts --json --all --budget 0.15 --variants auto,tfjs --shapes sq1024,sq2048,sq4096,sq8192,wrn-g2,wrn-g3,tf-qkv,tf-attn,gru-step-b32,head-c100 > "$OUT/tfjs.jsonl" 2> "$OUT/tfjs.err"
log "tfjs rc=$?"

# 4b. The lavapipe reproducer of the ProcessEvents abort, on the GPU (2048: long dispatches)
log "crash reproducer"
for i in 1 2; do
  NOREAD=1 REPS=6 timeout 30 node bench/crash/lavapipe-two-pipelines.mjs 2048 e1:8:64 e1:8:64 > "$OUT/crash-$i.txt" 2>&1
  echo "two-pipelines 2048 run $i rc=$?" | tee -a "$OUT/crash.txt"
done
# 4c. Training steps beside PyTorch on the same GPU (issue 19: does the host keep the GPU busy?)
log "train_step (ours and PyTorch cuda)"
timeout 120 node bench/train_step.ts --json --models wrn40,wrn10 --steps 5 --profile --python=python3 --torch-device=cuda > "$OUT/train_step.json" 2> "$OUT/train_step.err"
log "train_step rc=$?"
grep -v '^Warning' "$OUT/train_step.err" | tail -40 >> "$OUT/summary.txt"

# 5. If the sweep died: the shapes without a row, one process each, while time is left
if [ "$rc" -ne 0 ]; then
  for name in $(python3 -c "import json;print(' '.join(p['name'] for p in json.load(open('$OUT/shapes.json'))))"); do
    grep -q "\"problem\":\"$name\"" "$OUT/sweep.jsonl" && continue
    [ "$SECONDS" -gt 540 ] && { echo "out of time before $name" >> "$OUT/summary.txt"; break; }
    timeout 40 node bench/matmul.ts --json --all --no-tfjs --budget 0.25 --variants reg4x4,reg8x8,auto --exact --shapes "$name" >> "$OUT/isolated.jsonl" 2>> "$OUT/isolated.err"
    echo "$name rc=$?" >> "$OUT/summary.txt"
  done
fi
log "done"
