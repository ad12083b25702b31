#!/bin/bash
# The IR-drop study of docs/ir-drop.md on the zoo's lenet5_hwa: first 1000 test images, 2 trials,
# t = 1 h, the same r per segment on rows and columns, 256 and 512 tiles, GDC on and off.
#   scripts/study/ir_drop/run_lenet5.sh BUILD_DIR OUT_DIR   (then plot.py --lenet5 OUT_DIR)
set -euo pipefail
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
bin="$(realpath "${1:-build}")/bin/pcmsim"
out="$(realpath -m "${2:-ir_drop_study}")"
mkdir -p "$out"
for r in 0 0.5 1 2 5; do
  "$bin" sweep --model "$src/zoo/lenet5_hwa.h5" --limit 1000 --trials 2 --t-inference 3600 \
    --tile 256x256,512x512 --gdc on,off --r-row "$r" --r-col "$r" \
    --out "$out/lenet5_r_$r.h5" > "$out/lenet5_r_$r.log" 2>&1
done
