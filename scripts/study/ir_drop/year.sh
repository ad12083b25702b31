#!/bin/bash
# The default ResNet (zoo/resnet_hwa.h5, 5 trials, t = 1 s, 1 h, 1 d, 1 y, GDC on) on the first
# 1000 test images, without and with IR drop at 1 ohm per segment (rows and columns), each under
# /usr/bin/time -v (docs/ir-drop.md, "Cost").
#   scripts/study/ir_drop/year.sh BUILD_DIR OUT_DIR
set -euo pipefail
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
bin="$(realpath "${1:-build}")/bin/pcmsim"
out="$(realpath -m "${2:-ir_drop_year}")"
mkdir -p "$out"
for r in 0 1; do
  /usr/bin/time -v "$bin" run --model "$src/zoo/resnet_hwa.h5" --limit 1000 \
    --r-row "$r" --r-col "$r" --out "$out/year_r$r.h5" > "$out/year_r$r.log" 2> "$out/year_r$r.time"
done
