#!/usr/bin/env bash
# Follow-up runs for the hardware-aware ResNet (docs/accuracy.md, "What it takes"): which of the
# two small layers (stem: 9 rows, fc: 64 rows) costs the drift accuracy, and what p = 4 needs.
# Same output layout as run_study.sh. env: PCMSIM, OUT, LIMIT (1000), TRIALS (3), SEED (1).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PCMSIM="${PCMSIM:-$ROOT/build-study/bin/pcmsim}"
OUT="${OUT:-$ROOT/study-results}"
LIMIT="${LIMIT:-1000}"
TRIALS="${TRIALS:-3}"
SEED="${SEED:-1}"
MODEL="${MODEL:-$ROOT/zoo/resnet_hwa.h5}"
name="$(basename "$MODEL" .h5)"
mkdir -p "$OUT"

run_one() {  # tag times args...
  local tag="$1" times="$2"; shift 2
  local base="$OUT/${name}__${tag}"
  if [ -s "$base.csv" ]; then echo "skip $name $tag (done)"; return; fi
  echo "run  $name $tag: $*"
  local start; start=$(date +%s)
  if "$PCMSIM" run --model "$MODEL" --limit "$LIMIT" --trials "$TRIALS" --seed "$SEED" \
      --t-inference "$times" --format csv --out "$base.h5" "$@" > "$base.log" 2>&1; then
    echo "     $name $tag: $(( $(date +%s) - start )) s" | tee -a "$base.log"
  else
    echo "FAIL $name $tag (see $base.log)"; rm -f "$base.csv"
  fi
}

CAL=(--calibrate on --noise-management static_range --calibration-statistic percentile
     --calibration-percentile 99.9)
# Calibrated ADC ranges only; inputs keep the abs-max scaling (per input vector).
ADC=(--calibrate on --calibration-statistic percentile --calibration-percentile 99.9)
# Drift at p = 8: the stem alone digital, the fc alone digital.
run_one abl_digital_first 86400,31536000 --digital-layers first
run_one abl_digital_last  86400,31536000 --digital-layers last
# p = 4 at t = 1 s: which layers, which converter.
run_one fu_p4_cal          1 --p-in 4 --p-out 4 "${CAL[@]}"
run_one fu_am_p4_stem_dig  1 --p-in 4 --p-out 4 "${ADC[@]}" --digital-layers first
run_one fu_am_p4_stem_8    1 --p-in 4 --p-out 4 "${ADC[@]}" --layer-precision stem:8:8
run_one fu_am_pin8_pout4   1 --p-in 8 --p-out 4 "${ADC[@]}"
run_one fu_am_pin4_pout8   1 --p-in 4 --p-out 8 "${ADC[@]}"
run_one fu_am_p4_first_last_dig 1 --p-in 4 --p-out 4 "${ADC[@]}" --digital-layers first,last
run_one fu_pin4_pout8      1 --p-in 4 --p-out 8 "${CAL[@]}"
