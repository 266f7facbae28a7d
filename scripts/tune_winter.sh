#!/usr/bin/env bash
# Tracker tuning on a held-out synthetic domain (docs/TUNING.md): the shipped summer-trained model,
# thresholds tuned on one winter sequence, tested on two other winter sequences (other seeds).
#   bash scripts/tune_winter.sh [OUT] [TRIALS]
set -euo pipefail
OUT=${1:-runs/tune_winter}
TRIALS=${2:-100}
IB=${IBNTRACK:-.venv/bin/ibntrack}
W=ibntrack/assets/synth_summer_resnet18_ibn.pt
common=(--domain winter --frames 150 --objects 12 --size 640x352)
"$IB" synth "${common[@]}" --seed 9 --name winter-tune-9 --out "$OUT/tune"
"$IB" synth "${common[@]}" --seed 7 --name winter-test-7 --out "$OUT/test"
"$IB" synth "${common[@]}" --seed 11 --name winter-test-11 --out "$OUT/test"
time "$IB" tune "$OUT/tune" --weights "$W" --trials "$TRIALS" --seed 0 --out "$OUT/tuned.pt"
"$IB" tune "$OUT/tune" --weights "$W" --trials "$TRIALS" --seed 0 --out "$OUT/tracker.yaml" >/dev/null
for name in shipped tuned; do
  weights=$W; [ "$name" = tuned ] && weights=$OUT/tuned.pt
  "$IB" track "$OUT/test" --weights "$weights" --out "$OUT/$name" >/dev/null
  "$IB" track "$OUT/tune" --weights "$weights" --out "$OUT/$name-on-tune" >/dev/null
  echo "== $name settings, held-out winter sequences"
  "$IB" eval --gt "$OUT/test" --results "$OUT/$name" --json "$OUT/$name.json"
  echo "== $name settings, the tuning sequence"
  "$IB" eval --gt "$OUT/tune" --results "$OUT/$name-on-tune"
done
