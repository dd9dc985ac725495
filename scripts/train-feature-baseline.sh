#!/usr/bin/env bash
# The learned digital baseline of remote classification (issue 18 item 3; paper Sec. V-B, eqs. 31-32):
# one base feature compression network at a small lambda, then one fine-tune per lambda from it
# (jscec baseline-classify train --init), then accuracy against SNR per modulation/rate (Fig. 9).
# Every step resumes: run it again after an interruption and it goes on from <out>.last.pt.
# The defaults are the run reported in the issue-18 note (base 3000 steps, five fine-tunes of 600 steps):
#   OUT=runs/feature-compression BASE_LAM=0.0001 BASE_STEPS=3000 LAMS="2e-5 3e-4 1e-3 3e-3 1e-2" FT_STEPS=600 \
#   THREADS=1 IMAGES=6000 scripts/train-feature-baseline.sh
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-runs/feature-compression}
BASE_LAM=${BASE_LAM:-0.0001}
BASE_STEPS=${BASE_STEPS:-3000}
LAMS=${LAMS:-"2e-5 3e-4 1e-3 3e-3 1e-2"}
FT_STEPS=${FT_STEPS:-600}
THREADS=${THREADS:-1}
IMAGES=${IMAGES:-6000}
J=".venv/bin/jscec baseline-classify"

base="$OUT/lam-$BASE_LAM.pt"
$J train --lam "$BASE_LAM" --max-steps "$BASE_STEPS" --threads "$THREADS" --out "$base" --resume
models=()
for lam in $LAMS; do
  $J train --lam "$lam" --init "$base" --max-steps "$FT_STEPS" --threads "$THREADS" --out "$OUT/lam-$lam.pt" --resume
  models+=("$OUT/lam-$lam.pt")
done
models+=("$base")
$J eval --models "${models[@]}" --images "$IMAGES" --threads "$THREADS" --json "$OUT/eval.json"
