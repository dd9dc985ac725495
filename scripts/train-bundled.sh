#!/usr/bin/env bash
# How the bundled checkpoints in models/checkpoints/ were made (CIFAR-10 JPEG copy, ρ = 1/6, SNR_train 10 dB,
# `small` width), on this project's 2-core CPU machine: Bob's models in lwe (lp-192) and mask mode trained side by
# side, one thread each, then Eve's chosen-plaintext-attack decoders, then the evaluation JSON and plots.
# On a CUDA machine drop --threads and the time budget, and add --width paper for the paper's 256-wide model.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES="${MINUTES:-85}"
OUT="${OUT:-models/checkpoints}"  # train elsewhere, then copy in, to keep tests off half-written files
mkdir -p "$OUT" logs
for mode in lwe mask; do
  .venv/bin/jscec train --mode "$mode" --params lp-192 --width small --epoch-size 8000 --time-budget "$MINUTES" \
    --threads 1 --resume --out "$OUT/cifar10-$mode.pt" > "logs/train-$mode.log" 2>&1 &
done
wait
for mode in lwe mask; do
  .venv/bin/jscec attack --model "$OUT/cifar10-$mode.pt" --epochs 8 --epoch-size 8000 --threads 1 \
    > "logs/attack-$mode.log" 2>&1 &
done
wait
for mode in lwe mask; do
  .venv/bin/jscec eval --model "$OUT/cifar10-$mode.pt" --threads 2 --snr 0 5 10 15 20 25 --json "$OUT/cifar10-$mode.eval.json" \
    --png "$OUT/cifar10-$mode.eval.png"
done
# Then the mask model alone went on for 105 more minutes (its lwe counterpart already met its target), with its
# attack and evaluation on both cores:
#   .venv/bin/jscec train --mode mask --params lp-192 --width small --epoch-size 8000 --time-budget 105 --threads 1 \
#     --resume --out "$OUT/cifar10-mask.pt"
#   .venv/bin/jscec attack --model "$OUT/cifar10-mask.pt" --epochs 8 --epoch-size 8000 --threads 2
#   .venv/bin/jscec eval --model "$OUT/cifar10-mask.pt" --threads 2 --snr 0 5 10 15 20 25 --json … --png …
