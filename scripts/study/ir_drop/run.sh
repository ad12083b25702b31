#!/bin/bash
# The IR-drop study of docs/ir-drop.md: zoo resnet_hwa, first 500 test images, 1 trial, t = 1 h,
# wire resistance r per segment on rows and columns, 256 and 512 tiles, GDC on and off.
#   scripts/study/ir_drop/run.sh BUILD_DIR OUT_DIR   (then plot.py OUT_DIR/results.txt)
set -euo pipefail
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
bin="$(realpath "${1:-build}")/bin/pcmsim"
out="$(realpath -m "${2:-ir_drop_study}")"
mkdir -p "$out"
: > "$out/results.txt"
for tile in 256x256 512x512; do
  for gdc in true false; do
    for r in 0 0.5 1 2 5; do
      name="$out/r_${tile}_${gdc}_${r}"
      start=$(date +%s.%N)
      "$bin" run --model "$src/zoo/resnet_hwa.h5" --limit 500 --t-inference 3600 --trials 1 \
        --tile "$tile" --gdc "$gdc" --r-row "$r" --r-col "$r" --out "$name.h5" > "$name.log"
      end=$(date +%s.%N)
      acc=$(awk '$1 == "1" && $2 == "h" {print $3}' "$name.log")
      echo "$tile $gdc $r $acc $(echo "$end - $start" | bc)" >> "$out/results.txt"
    done
  done
done
