#!/usr/bin/env bash
# The accuracy study of docs/accuracy.md: `pcmsim run` for each zoo model over drift time, GDC
# on/off, converter precision and calibrated ranges. Each configuration writes
# $OUT/<model>__<tag>.h5 and .csv (the CSV columns of `pcmsim run --format csv`) and a log with
# its wall time; a configuration whose CSV already exists is skipped, so the script resumes.
#
# usage: scripts/study/run_study.sh [MODEL.h5 ...]          (default: every zoo/*.h5)
# env:   PCMSIM (default build-study/bin/pcmsim), OUT (default study-results), LIMIT (2000 test
#        images; 0 = all 10000), TRIALS (3), SEED (1), SETS (which groups: "base prec cal")
# Then: python3 scripts/study/summarise.py $OUT > tables.md
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PCMSIM="${PCMSIM:-$ROOT/build-study/bin/pcmsim}"
OUT="${OUT:-$ROOT/study-results}"
LIMIT="${LIMIT:-2000}"
TRIALS="${TRIALS:-3}"
SEED="${SEED:-1}"
SETS="${SETS:-base prec cal}"
ALL_TIMES="1,3600,86400,31536000"
mkdir -p "$OUT"

models=("$@")
if [ ${#models[@]} -eq 0 ]; then models=("$ROOT"/zoo/*.h5); fi

run_one() {  # model tag times args...
  local model="$1" tag="$2" times="$3"; shift 3
  local name; name="$(basename "$model" .h5)"
  local base="$OUT/${name}__${tag}"
  if [ -s "$base.csv" ]; then echo "skip $name $tag (done)"; return; fi
  echo "run  $name $tag: $*"
  local start; start=$(date +%s)
  if "$PCMSIM" run --model "$model" --limit "$LIMIT" --trials "$TRIALS" --seed "$SEED" \
      --t-inference "$times" --format csv --out "$base.h5" "$@" > "$base.log" 2>&1; then
    echo "     $name $tag: $(( $(date +%s) - start )) s" | tee -a "$base.log"
  else
    echo "FAIL $name $tag (see $base.log)"; rm -f "$base.csv"
  fi
}

for model in "${models[@]}"; do
  hwa=0; case "$(basename "$model")" in *_hwa.h5) hwa=1;; esac
  for set in $SETS; do
    case "$set" in
      base)  # the headline: 8-bit converters, drift times, GDC on and off
        run_one "$model" p8_gdc_on  "$ALL_TIMES" --p-in 8 --p-out 8 --gdc on
        run_one "$model" p8_gdc_off "$ALL_TIMES" --p-in 8 --p-out 8 --gdc off ;;
      prec)  # converter precision with the default (abs-max input, fixed ADC range) converters
        run_one "$model" p6_gdc_on "$ALL_TIMES" --p-in 6 --p-out 6 --gdc on
        run_one "$model" p4_gdc_on "$ALL_TIMES" --p-in 4 --p-out 4 --gdc on ;;
      cal)   # p = 4 with calibrated converter ranges (training images), and what else it takes
        run_one "$model" p4_cal_max "1,86400" --p-in 4 --p-out 4 --gdc on \
          --calibrate on --noise-management static_range
        run_one "$model" p4_cal_pct "1,86400" --p-in 4 --p-out 4 --gdc on \
          --calibrate on --noise-management static_range --calibration-statistic percentile \
          --calibration-percentile 99.9
        run_one "$model" p4_absmax_cal "1,86400" --p-in 4 --p-out 4 --gdc on \
          --calibrate on --calibration-statistic percentile --calibration-percentile 99.9
        run_one "$model" p4_cal_pct_dig "1,86400" --p-in 4 --p-out 4 --gdc on \
          --calibrate on --noise-management static_range --calibration-statistic percentile \
          --calibration-percentile 99.9 --digital-layers first,last ;;
      *) echo "unknown set '$set'" >&2; exit 2 ;;
    esac
  done
done
