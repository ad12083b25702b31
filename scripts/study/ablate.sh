#!/usr/bin/env bash
# Where does the accuracy go? One model at p = 8, GDC on, with one non-ideality at a time
# switched off (or one remedy switched on), at 1 s, 1 day and 1 year. Same output layout as
# run_study.sh (<model>__<tag>.csv under $OUT), so summarise.py tabulates it.
#
# usage: scripts/study/ablate.sh MODEL.h5        env: PCMSIM, OUT, LIMIT, TRIALS, SEED as run_study.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PCMSIM="${PCMSIM:-$ROOT/build-study/bin/pcmsim}"
OUT="${OUT:-$ROOT/study-results}"
LIMIT="${LIMIT:-2000}"
TRIALS="${TRIALS:-3}"
SEED="${SEED:-1}"
TIMES="${TIMES:-1,86400,31536000}"
mkdir -p "$OUT"
model="$1"
name="$(basename "$model" .h5)"

run_one() {  # tag args...
  local tag="$1"; shift
  local base="$OUT/${name}__${tag}"
  if [ -s "$base.csv" ]; then echo "skip $name $tag (done)"; return; fi
  echo "run  $name $tag: $*"
  local start; start=$(date +%s)
  if "$PCMSIM" run --model "$model" --limit "$LIMIT" --trials "$TRIALS" --seed "$SEED" \
      --t-inference "$TIMES" --format csv --out "$base.h5" "$@" > "$base.log" 2>&1; then
    echo "     $name $tag: $(( $(date +%s) - start )) s" | tee -a "$base.log"
  else
    echo "FAIL $name $tag (see $base.log)"; rm -f "$base.csv"
  fi
}

run_one abl_baseline                                      # all defaults (p = 8, GDC on)
run_one abl_digital_first_last --digital-layers first,last
run_one abl_no_read_noise      --read-noise-scale 0
run_one abl_no_drift           --drift-scale 0
run_one abl_no_prog_noise      --prog-noise-scale 0
run_one abl_gdc_per_column     --gdc-granularity per_column
run_one abl_no_out_noise       --out-noise 0
run_one abl_no_converters      --p-in 0 --p-out 0 --out-bound inf
run_one abl_weight_per_column  --weight-scaling per_column
run_one abl_ideal_device       --device ideal              # converters and output noise only
